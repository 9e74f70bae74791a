// Command tcpgwctl is the tcpgateway client CLI: connect interactively, send one request,
// watch pushes, mint development tokens, and drive load (bench).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `tcpgwctl — talk to a tcpgateway

  tcpgwctl connect -addr HOST:PORT -token T     interactive session: "<service> <method> [payload]", "ping", "quit"
  tcpgwctl request -addr HOST:PORT -token T SERVICE METHOD [PAYLOAD]
  tcpgwctl watch   -addr HOST:PORT -token T     print pushes as JSON lines (acks them)
  tcpgwctl token   -secret-file F -user U [-groups a,b] [-ttl 24h]   mint an HS256 token for development
  tcpgwctl push    -brokers B -topic T (-user U | -session S | -group G | -all) [-ack | -reply] [-receipts T] PAYLOAD
                   [-kafka-tls] [-kafka-ca F] [-kafka-cert F -kafka-key F] [-kafka-server-name N]
                   [-sasl-username U [-sasl-mechanism M] [-sasl-password-file F]]
                   publish a downlink message through Kafka, optionally waiting for the app's ack or reply;
                   TLS and SASL (SASL_SSL) to the brokers; the SASL password may come from $TCPGW_KAFKA_PASSWORD
  tcpgwctl bench   -addr HOST:PORT (-token T | -secret-file F) [-conns N] [-sources IP,IP] [-ramp R]
                   [-rate R] [-payload B] [-duration D] [-procs P] [-json]   open N connections, drive
                   load, print throughput and latency percentiles (tcpgwctl bench -h for all flags)

The token may also come from $TCPGW_TOKEN. connect, request, watch and bench speak TLS with
-tls (system roots), -ca FILE (trust these CA certificates) and -server-name NAME (the name
the certificate must hold; default the host of -addr); -ca and -server-name imply -tls.
connect, request and watch also take for -addr the URL of the gateway's WebSocket listener,
ws://HOST:PORT/tcpgw, or wss://… for WebSocket over TLS (trusting -ca, checking -server-name),
for networks that pass only HTTP(S).
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "connect":
		err = runConnect(ctx, args)
	case "request":
		err = runRequest(ctx, args)
	case "watch":
		err = runWatch(ctx, args)
	case "token":
		err = runToken(args)
	case "push":
		err = runPush(ctx, args)
	case "bench":
		err = runBench(ctx, args)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcpgwctl:", err)
		os.Exit(1)
	}
}
