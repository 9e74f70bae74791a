package uplink

import (
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

func TestValidMethod(t *testing.T) {
	tests := []struct {
		method string
		want   bool
	}{
		{"Echo", true},
		{"v1/users.get", true},
		{"a-b_c.d/E9", true},
		{"...", true}, // a segment of three dots is a name, not a parent reference
		{"", false},
		{"..", false},
		{".", false},
		{"a/../b", false},
		{"a/./b", false},
		{"/lead", false},
		{"trail/", false},
		{"a//b", false},
		{"sp ace", false},
		{"q?x=1", false},
		{"frag#x", false},
		{"pct%2e", false},
		{"new\nline", false},
		{"ünïcode", false},
		{strings.Repeat("a", maxMethodLen), true},
		{strings.Repeat("a", maxMethodLen+1), false},
	}
	for _, tt := range tests {
		if got := validMethod(tt.method); got != tt.want {
			t.Errorf("validMethod(%q) = %v, want %v", tt.method, got, tt.want)
		}
	}
}

func TestCompileRouteDefaultsAndPrefix(t *testing.T) {
	tests := []struct {
		name        string
		in          config.Route
		wantPrefix  string
		wantTimeout time.Duration
		wantMax     int
	}{
		{
			name:       "zero fields get defaults",
			in:         config.Route{Service: "s", URL: "http://127.0.0.1:8080"},
			wantPrefix: "http://127.0.0.1:8080/", wantTimeout: defaultRouteTimeout, wantMax: defaultMaxInFlight,
		},
		{
			name: "explicit values kept, trailing slashes trimmed",
			in: config.Route{Service: "s", URL: "http://127.0.0.1:8080/api//",
				Timeout: config.Duration{Duration: time.Second}, MaxInFlight: 3},
			wantPrefix: "http://127.0.0.1:8080/api/", wantTimeout: time.Second, wantMax: 3,
		},
		{
			name:       "h2c on http",
			in:         config.Route{Service: "s", URL: "http://127.0.0.1:8080/p", H2C: true},
			wantPrefix: "http://127.0.0.1:8080/p/", wantTimeout: defaultRouteTimeout, wantMax: defaultMaxInFlight,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, err := compileRoute(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if rt.prefix != tt.wantPrefix || rt.timeout != tt.wantTimeout || cap(rt.sem) != tt.wantMax {
				t.Errorf("got prefix %q timeout %v max %d, want %q %v %d",
					rt.prefix, rt.timeout, cap(rt.sem), tt.wantPrefix, tt.wantTimeout, tt.wantMax)
			}
		})
	}
}

func TestNewRouterRejects(t *testing.T) {
	ok := config.Route{Service: "ok", URL: "http://127.0.0.1:1"}
	tests := []struct {
		name    string
		routes  []config.Route
		opts    Options
		wantErr string
	}{
		{"empty service", []config.Route{{URL: "http://127.0.0.1:1"}}, Options{}, "service is empty"},
		{"duplicate", []config.Route{ok, ok}, Options{}, "duplicate service"},
		{"unparsable url", []config.Route{{Service: "s", URL: "http://[::1"}}, Options{}, "parsing url"},
		{"relative url", []config.Route{{Service: "s", URL: "/just/a/path"}}, Options{}, "scheme"},
		{"ftp", []config.Route{{Service: "s", URL: "ftp://127.0.0.1"}}, Options{}, "scheme"},
		{"no host", []config.Route{{Service: "s", URL: "http:///x"}}, Options{}, "no host"},
		{"credentials", []config.Route{{Service: "s", URL: "http://u:p@127.0.0.1"}}, Options{}, "credentials"},
		{"query", []config.Route{{Service: "s", URL: "http://127.0.0.1/?a=1"}}, Options{}, "query"},
		{"fragment", []config.Route{{Service: "s", URL: "http://127.0.0.1/#f"}}, Options{}, "fragment"},
		{"h2c over https", []config.Route{{Service: "s", URL: "https://127.0.0.1", H2C: true}}, Options{}, "h2c"},
		{"negative timeout", []config.Route{{Service: "s", URL: "http://127.0.0.1",
			Timeout: config.Duration{Duration: -time.Second}}}, Options{}, "negative"},
		{"negative max in flight", []config.Route{{Service: "s", URL: "http://127.0.0.1", MaxInFlight: -1}},
			Options{}, "negative"},
		{"response budget too small", []config.Route{ok}, Options{MaxResponseBytes: responseOverhead}, "MaxResponseBytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRouter(tt.routes, tt.opts)
			if err == nil {
				r.Close()
				t.Fatalf("NewRouter succeeded, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestRoutesSortedAndInFlightUnknown(t *testing.T) {
	r, err := NewRouter([]config.Route{
		{Service: "zeta", URL: "http://127.0.0.1:1"},
		{Service: "alpha", URL: "http://127.0.0.1:2", H2C: true},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := r.Routes()
	if strings.Join(got, ",") != "alpha,zeta" {
		t.Errorf("Routes() = %v, want [alpha zeta]", got)
	}
	got[0] = "mutated"
	if r.Routes()[0] != "alpha" {
		t.Error("Routes() returned the router's own slice")
	}
	if n := r.InFlight("nope"); n != 0 {
		t.Errorf("InFlight(unknown) = %d, want 0", n)
	}
	if len(r.owned) != 2 {
		t.Errorf("router owns %d transports, want one HTTP/1 and one h2c", len(r.owned))
	}
}
