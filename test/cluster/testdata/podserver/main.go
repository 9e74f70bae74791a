// Command podserver is the cluster tests' pod: an HTTP server that logs the preStop hook
// and SIGTERM, and can ignore SIGTERM to exercise the grace period.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	ignoreTerm := flag.Bool("ignore-sigterm", false, "keep running after SIGTERM")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("/prestop", func(w http.ResponseWriter, _ *http.Request) {
		log.Printf("preStop hook hit")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "podserver %s\n", os.Getenv("POD_NAME"))
	})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	go func() {
		for range sigs {
			if *ignoreTerm {
				log.Printf("SIGTERM received; ignoring it")
				continue
			}
			log.Printf("SIGTERM received; exiting")
			os.Exit(0)
		}
	}()
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Printf("podserver listening on %s", *addr)
	log.Fatal(srv.ListenAndServe())
}
