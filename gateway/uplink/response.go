package uplink

import (
	"context"
	"errors"
	"io"
	"net/url"
)

var errTooLarge = errors.New("response too large")

// failure classifies an error from the round trip or the body read. The context decides, not
// the error's type: a deadline (the route's, the call's or the caller's) is a timeout, whatever
// layer noticed it first.
func failure(ctx context.Context, err error) Result {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return Result{Code: CodeTimeout, Message: "backend did not answer in time"}
	case ctx.Err() != nil:
		return Result{Code: CodeBackendError, Message: "call canceled"}
	}
	// url.Error prefixes `Post "<backend url>": `; the URL is internal and stays out of a
	// message that goes to clients.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return Result{Code: CodeBackendError, Message: "backend failed: " + err.Error()}
}

// readBody reads at most limit bytes of body. A Content-Length above limit fails before
// reading anything; an unknown length is read up to limit+1 to detect an overflow.
func readBody(body io.Reader, contentLength int64, limit int) ([]byte, error) {
	if limit < 0 || contentLength > int64(limit) {
		return nil, errTooLarge
	}
	if contentLength == 0 {
		return nil, nil
	}
	if contentLength > 0 {
		buf := make([]byte, contentLength)
		if _, err := io.ReadFull(body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	buf, err := io.ReadAll(io.LimitReader(body, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(buf) > limit {
		return nil, errTooLarge
	}
	return buf, nil
}
