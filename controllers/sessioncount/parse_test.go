package sessioncount

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	const head = "# HELP tcpgw_sessions Registered (handshaken) sessions.\n# TYPE tcpgw_sessions gauge\n"
	for _, tc := range []struct {
		name string
		body string
		max  int64
		want Sample
		err  Reason
	}{
		{name: "sessions", body: head + "tcpgw_sessions 42\n", want: Sample{Sessions: 42}},
		{name: "draining", body: head + "tcpgw_sessions 7\n# TYPE tcpgw_draining gauge\ntcpgw_draining 1\n", want: Sample{Sessions: 7, Draining: true}},
		{name: "rebalancing", body: head + "tcpgw_sessions 7\n# TYPE tcpgw_rebalancing gauge\ntcpgw_rebalancing 1\n", want: Sample{Sessions: 7, Rebalancing: true}},
		{name: "not draining", body: head + "tcpgw_sessions 0\ntcpgw_draining 0\n", want: Sample{}},
		{name: "untyped", body: "tcpgw_sessions 3\n", want: Sample{Sessions: 3}},
		{name: "among others", body: "# TYPE go_goroutines gauge\ngo_goroutines 12\n" + head + "tcpgw_sessions 5\n# TYPE tcpgw_connections gauge\ntcpgw_connections 9\n", want: Sample{Sessions: 5}},
		{name: "empty", body: "", err: Missing},
		{name: "no sessions gauge", body: "# TYPE tcpgw_connections gauge\ntcpgw_connections 9\n", err: Missing},
		{name: "garbage", body: "\x00\x01 not metrics {{{\n", err: Malformed},
		{name: "html", body: "<html><body>hello</body></html>\n", err: Malformed},
		{name: "counter", body: "# TYPE tcpgw_sessions counter\ntcpgw_sessions 3\n", err: Malformed},
		{name: "labelled", body: head + "tcpgw_sessions{pod=\"a\"} 3\n", err: Malformed},
		{name: "twice", body: head + "tcpgw_sessions{a=\"1\"} 3\ntcpgw_sessions{a=\"2\"} 4\n", err: Malformed},
		{name: "negative", body: head + "tcpgw_sessions -1\n", err: Malformed},
		{name: "fraction", body: head + "tcpgw_sessions 1.5\n", err: Malformed},
		{name: "NaN", body: head + "tcpgw_sessions NaN\n", err: Malformed},
		{name: "infinite", body: head + "tcpgw_sessions +Inf\n", err: Malformed},
		{name: "incredible", body: head + "tcpgw_sessions 1e12\n", err: Malformed},
		{name: "draining labelled", body: head + "tcpgw_sessions 1\ntcpgw_draining{x=\"y\"} 1\n", err: Malformed},
		{name: "over the limit", body: head + "tcpgw_sessions 1\n" + strings.Repeat("# padding\n", 20), max: 100, err: TooLarge},
		{name: "at the limit", body: head + "tcpgw_sessions 1\n", max: int64(len(head + "tcpgw_sessions 1\n")), want: Sample{Sessions: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			max := tc.max
			if max == 0 {
				max = DefaultMaxBytes
			}
			got, err := Parse(strings.NewReader(tc.body), max)
			if tc.err != "" {
				var e *Error
				if !errors.As(err, &e) || e.Reason != tc.err {
					t.Fatalf("Parse = %+v, %v; want reason %s", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Parse = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
