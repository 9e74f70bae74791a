package uplink

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestReadBody(t *testing.T) {
	tests := []struct {
		name          string
		body          string
		contentLength int64
		limit         int
		want          string
		wantErr       error
	}{
		{"empty known", "", 0, 10, "", nil},
		{"empty unknown", "", -1, 10, "", nil},
		{"known at limit", "0123456789", 10, 10, "0123456789", nil},
		{"unknown at limit", "0123456789", -1, 10, "0123456789", nil},
		{"known over limit fails before reading", "", 11, 10, "", errTooLarge},
		{"unknown over limit", "0123456789X", -1, 10, "", errTooLarge},
		{"negative budget (headers used it all)", "", 0, -1, "", errTooLarge},
		{"short body", "abc", 5, 10, "", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readBody(strings.NewReader(tt.body), tt.contentLength, tt.limit)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Errorf("body = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFailure(t *testing.T) {
	expired, cancel1 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel1()
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	urlErr := &url.Error{Op: "Post", URL: "http://backend.internal:8080/secret", Err: errors.New("connection refused")}

	tests := []struct {
		name     string
		ctx      context.Context
		err      error
		wantCode Code
		wantMsg  string
	}{
		{"deadline wins over the error's type", expired, urlErr, CodeTimeout, "backend did not answer in time"},
		{"caller canceled", canceled, urlErr, CodeBackendError, "call canceled"},
		{"transport error without the url", context.Background(), urlErr, CodeBackendError,
			"backend failed: connection refused"},
		{"plain error", context.Background(), io.ErrUnexpectedEOF, CodeBackendError,
			"backend failed: unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := failure(tt.ctx, tt.err)
			if got.Code != tt.wantCode || got.Message != tt.wantMsg {
				t.Errorf("failure = %q %q, want %q %q", got.Code, got.Message, tt.wantCode, tt.wantMsg)
			}
		})
	}
}
