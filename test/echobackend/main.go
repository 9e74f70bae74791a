// Command echobackend is the example uplink backend for demos and end-to-end tests: it
// answers every call with its payload, prefixed by the caller's identity as the gateway
// forwarded it.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/uplink"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	flag.Parse()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set(uplink.HeaderMetaPrefix+"Served-By", "echobackend")
		fmt.Fprintf(w, "%s %s from user %s (session %s): %s", r.Method, r.URL.Path,
			r.Header.Get(uplink.HeaderUser), r.Header.Get(uplink.HeaderSession), body)
	})
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	log.Printf("echobackend listening on %s", *addr)
	log.Fatal(srv.ListenAndServe())
}
