package uplink

import (
	"maps"
	"net/http"
	"strings"
	"testing"
)

func TestSetRequestHeaders(t *testing.T) {
	call := &Call{
		Method: "m",
		Headers: map[string]string{
			"trace-id":  "abc",
			"bad key":   "dropped: space in name",
			"":          "dropped: empty name",
			"bad-value": "dropped\r\nX-Injected: 1",
			"colon:":    "dropped: colon in name",
		},
		Identity: Identity{UserID: "u1", SessionID: "s1", ClientAddress: "127.0.0.1:5555", Seq: 42},
	}
	h := http.Header{}
	if err := setRequestHeaders(h, call); err != nil {
		t.Fatal(err)
	}
	want := http.Header{
		"X-Tcpgw-User":           {"u1"},
		"X-Tcpgw-Session":        {"s1"},
		"X-Tcpgw-Device":         {""},
		"X-Tcpgw-Client-Address": {"127.0.0.1:5555"},
		"X-Tcpgw-Seq":            {"42"},
		"X-Tcpgw-Method":         {"m"},
		"Content-Type":           {"application/octet-stream"},
		"User-Agent":             {userAgent},
		"X-Tcpgw-Meta-Trace-Id":  {"abc"},
	}
	if !maps.EqualFunc(h, want, func(a, b []string) bool { return strings.Join(a, "|") == strings.Join(b, "|") }) {
		t.Errorf("headers = %v\nwant      %v", h, want)
	}
}

func TestSetRequestHeadersRefusesUnsendableIdentity(t *testing.T) {
	for _, id := range []Identity{
		{UserID: "u\n"},
		{SessionID: "s\r\nX-Tcpgw-User: admin"},
		{DeviceID: "d\x00"},
		{ClientAddress: "a\x7f"},
	} {
		if err := setRequestHeaders(http.Header{}, &Call{Method: "m", Identity: id}); err == nil {
			t.Errorf("identity %+v accepted, want error", id)
		}
	}
}

func TestMetaHeaders(t *testing.T) {
	tests := []struct {
		name     string
		in       http.Header
		want     map[string]string
		wantCost int
	}{
		{"none", http.Header{"Content-Type": {"x"}}, nil, 0},
		{"prefix only is not a key", http.Header{"X-Tcpgw-Meta-": {"v"}}, nil, 0},
		{
			"prefix removed, key lower-cased",
			http.Header{"X-Tcpgw-Meta-Trace-Id": {"abc"}, "X-Tcpgw-User": {"not meta"}},
			map[string]string{"trace-id": "abc"}, len("trace-id") + len("abc") + metaEntryOverhead,
		},
		{
			"non-canonical name still matched",
			http.Header{"x-tcpgw-meta-a b": {"v"}},
			map[string]string{"a b": "v"}, len("a b") + len("v") + metaEntryOverhead,
		},
		{
			"repeated values joined",
			http.Header{"X-Tcpgw-Meta-Tag": {"a", "b"}},
			map[string]string{"tag": "a, b"}, len("tag") + len("a, b") + metaEntryOverhead,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cost := metaHeaders(tt.in)
			if !maps.Equal(got, tt.want) || (got == nil) != (tt.want == nil) || cost != tt.wantCost {
				t.Errorf("metaHeaders = %v, %d; want %v, %d", got, cost, tt.want, tt.wantCost)
			}
		})
	}
}
