package uplink

import (
	"net"
	"net/http"
	"time"
)

// Transport tuning. A gateway makes many concurrent keep-alive calls to a few hosts, the
// opposite of what http.DefaultTransport is sized for (2 idle connections per host).
const (
	// maxIdleConnsPerHost keeps enough warm connections that bursts do not pay for new dials.
	maxIdleConnsPerHost = 256
	idleConnTimeout     = 90 * time.Second
	dialTimeout         = 5 * time.Second
	tcpKeepAlive        = 30 * time.Second
	// maxResponseHeaderBytes bounds what a backend can make the gateway buffer before the body;
	// meta headers must fit in a frame anyway.
	maxResponseHeaderBytes = 64 << 10
	// h2cPingAfter: an idle-looking HTTP/2 connection is pinged after this long, so a backend
	// that vanished without a FIN fails one connection's health check instead of timing out
	// every call multiplexed onto it.
	h2cPingAfter   = 15 * time.Second
	h2cPingTimeout = 10 * time.Second
)

// newHTTP1Transport returns the pooled HTTP/1.1 transport shared by all non-H2C routes.
//
// Proxy is nil on purpose: a gateway must not send backend calls through HTTP_PROXY /
// HTTPS_PROXY just because the pod environment happens to set them.
// DisableCompression keeps the payload the backend's bytes: no Accept-Encoding is added and
// nothing is decompressed (and so inflated past the size limit) behind the router's back.
func newHTTP1Transport() *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: tcpKeepAlive}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		MaxIdleConns:           0, // no global cap; bounded per host instead
		MaxIdleConnsPerHost:    maxIdleConnsPerHost,
		IdleConnTimeout:        idleConnTimeout,
		TLSHandshakeTimeout:    dialTimeout,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		DisableCompression:     true,
	}
}

// newH2CTransport returns the transport for H2C routes: HTTP/2 over cleartext TCP via the
// standard library's Protocols (no golang.org/x/net/http2). Calls multiplex over a few
// connections; a new one opens only when the backend's stream limit is reached.
func newH2CTransport() *http.Transport {
	t := newHTTP1Transport()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true) // and not HTTP1: http:// URLs then speak h2c with prior knowledge
	t.Protocols = &p
	t.HTTP2 = &http.HTTP2Config{SendPingTimeout: h2cPingAfter, PingTimeout: h2cPingTimeout}
	return t
}
