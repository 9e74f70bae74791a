package uplink

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Header names sent to backends. Backends must accept these only from the gateway.
const (
	HeaderUser          = "X-Tcpgw-User"
	HeaderSession       = "X-Tcpgw-Session"
	HeaderDevice        = "X-Tcpgw-Device"
	HeaderClientAddress = "X-Tcpgw-Client-Address"
	HeaderSeq           = "X-Tcpgw-Seq"
	HeaderMethod        = "X-Tcpgw-Method"
	// HeaderMetaPrefix carries Call.Headers to the backend and Result.Headers back. Client
	// keys live under it, so they can never overwrite an identity header.
	HeaderMetaPrefix = "X-Tcpgw-Meta-"
)

const userAgent = "tcpgateway-uplink"

// setRequestHeaders writes the identity and meta headers of c onto h. It fails only when an
// identity value cannot be sent in HTTP (e.g. a device id with a newline): dropping it would
// let the backend mistake the caller for someone with no device or user, so the call is refused.
// Invalid meta keys and values are dropped instead: they are the app's own data.
func setRequestHeaders(h http.Header, c *Call) error {
	id := &c.Identity
	for _, kv := range [...]struct{ name, value string }{
		{HeaderUser, id.UserID},
		{HeaderSession, id.SessionID},
		{HeaderDevice, id.DeviceID},
		{HeaderClientAddress, id.ClientAddress},
	} {
		if !httpguts.ValidHeaderFieldValue(kv.value) {
			return fmt.Errorf("identity header %s has a value HTTP cannot carry", kv.name)
		}
		h[kv.name] = []string{kv.value}
	}
	h[HeaderSeq] = []string{strconv.FormatUint(id.Seq, 10)}
	h[HeaderMethod] = []string{c.Method}
	h["Content-Type"] = []string{"application/octet-stream"}
	h["User-Agent"] = []string{userAgent}
	for k, v := range c.Headers {
		if k == "" || !httpguts.ValidHeaderFieldName(k) || !httpguts.ValidHeaderFieldValue(v) {
			continue
		}
		// Add, not Set: keys differing only in case are one HTTP header, and keeping both
		// values is deterministic where "last wins" would depend on map order.
		h.Add(HeaderMetaPrefix+k, v)
	}
	return nil
}

// Frame room reserved when checking a response against Options.MaxResponseBytes. Protobuf
// overhead is a few bytes per field; these are generous upper bounds.
const (
	// responseOverhead covers the Frame and Response envelope: kind, seq, code, status, tags.
	responseOverhead = 256
	// metaEntryOverhead covers one map entry: entry tag and length, key and value tags and lengths.
	metaEntryOverhead = 16
)

// metaHeaders extracts the backend's meta headers: prefix removed, key lower-cased (HTTP names
// are case-insensitive, HTTP/2 sends them lower-case and Go canonicalises HTTP/1 ones, so the
// case "as sent" is not recoverable anyway), repeated values joined with ", " as HTTP lists are.
// cost is the number of frame bytes the headers take, counted against the response budget.
func metaHeaders(h http.Header) (meta map[string]string, cost int) {
	for k, vs := range h {
		// Go canonicalises received names, but not those with bytes outside a token, so the
		// prefix is matched case-insensitively.
		if len(k) <= len(HeaderMetaPrefix) || !strings.EqualFold(k[:len(HeaderMetaPrefix)], HeaderMetaPrefix) {
			continue
		}
		key := strings.ToLower(k[len(HeaderMetaPrefix):])
		v := strings.Join(vs, ", ")
		if meta == nil {
			meta = make(map[string]string)
		}
		meta[key] = v
		cost += len(key) + len(v) + metaEntryOverhead
	}
	return meta, cost
}
