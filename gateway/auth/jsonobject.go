package auth

import (
	"bytes"
	"io"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
)

// objectReader finds named members of a JSON object without decoding the rest, for the
// token fast path (jwt_compact.go). It accepts only input that encoding/json certainly decodes
// into a map[string]any, as golang-jwt does with a token's header and claims, and then gives
// the same member values; for anything else it reports false and the caller falls back to
// golang-jwt. What it refuses that encoding/json accepts: invalid UTF-8 and unpaired surrogate
// escapes (encoding/json replaces them with U+FFFD), nesting deeper than maxObjectDepth
// (encoding/json allows 10000). What encoding/json refuses, it refuses too: a number
// strconv.ParseFloat cannot hold anywhere in the object (encoding/json fails the whole decode
// into a map), and anything that is not a single JSON object.
//
// The grammar is jsontext's: github.com/go-json-experiment/json/jsontext, the same code as
// Go 1.26's encoding/json/jsontext, which needs GOEXPERIMENT=jsonv2 (the import can switch
// when it does not; test/browser's chromedp already required the module). Duplicate names are
// allowed: a map keeps a name's last value, and so does members. Names match exactly, as map
// keys do. Both follow RFC 8259; that jsontext accepts nothing encoding/json refuses is what
// jwt_differential_test.go and its fuzz target check.
type objectReader struct {
	dec jsontext.Decoder
	in  bytes.Buffer
	// str holds unquoted strings that had escapes; results are sub-slices, valid until reset.
	str []byte
	// bad is set when a string the decoder accepted does not unquote: it cannot happen, and
	// if it did the caller must not decide anything from the values.
	bad bool
}

// readOptions: a map keeps the last of duplicate names, so they are not an error here.
var readOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true)}

// maxObjectDepth bounds nesting inside an object; tokens nest nothing. Deeper input goes to
// golang-jwt, which has its own limit.
const maxObjectDepth = 32

func (o *objectReader) reset() {
	o.str = o.str[:0]
	o.bad = false
}

func (o *objectReader) read(b []byte) {
	o.in = *bytes.NewBuffer(b)
	o.dec.Reset(&o.in, readOptions...)
}

// members reads data, which must be exactly one JSON object with optional whitespace around
// it, and sets vals[i] to the raw bytes of the value of its last member named names[i] (nil
// when there is none). The raw values alias data. It reports false for anything else.
func (o *objectReader) members(data []byte, names []string, vals [][]byte) bool {
	clear(vals)
	o.read(data)
	if tok, err := o.dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return false
	}
	for {
		switch o.dec.PeekKind() {
		case '}':
			if _, err := o.dec.ReadToken(); err != nil {
				return false
			}
			_, err := o.dec.ReadToken()
			return err == io.EOF // nothing but whitespace after the object
		case '"':
		default:
			return false
		}
		rawName, err := o.dec.ReadValue()
		if err != nil {
			return false
		}
		name, ok := o.unquote(rawName)
		if !ok {
			return false
		}
		start := o.dec.InputOffset()
		if !o.skipValue() {
			return false
		}
		// Between the name and the end of the value: whitespace, the colon, whitespace, the value.
		raw := bytes.TrimLeft(data[start:o.dec.InputOffset()], " \t\r\n:")
		for i, n := range names {
			if string(name) == n {
				vals[i] = raw
			}
		}
	}
}

// skipValue reads the next value whole, checking each number as encoding/json converts it
// into an any (strconv.ParseFloat: out of range is an error) and the nesting depth.
func (o *objectReader) skipValue() bool {
	depth := 0
	for {
		if o.dec.PeekKind() == '0' {
			raw, err := o.dec.ReadValue()
			if err != nil {
				return false
			}
			if _, err := strconv.ParseFloat(string(raw), 64); err != nil {
				return false
			}
		} else {
			tok, err := o.dec.ReadToken()
			if err != nil {
				return false
			}
			switch tok.Kind() {
			case '{', '[':
				if depth++; depth > maxObjectDepth {
					return false
				}
			case '}', ']':
				depth--
			}
		}
		if depth == 0 {
			return true
		}
	}
}

// unquote returns the value of raw if it is a JSON string (one members or stringArray read).
func (o *objectReader) unquote(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], true // the decoder checked it is valid UTF-8
	}
	start := len(o.str)
	var err error
	if o.str, err = jsontext.AppendUnquote(o.str, raw); err != nil {
		o.bad = true
		return nil, false
	}
	return o.str[start:], true
}

// stringArray appends the strings of raw, a JSON array that members returned, to dst; all
// reports whether every item is a string (dst is then complete).
func (o *objectReader) stringArray(raw []byte, dst [][]byte) (items [][]byte, all bool) {
	o.read(raw)
	if tok, err := o.dec.ReadToken(); err != nil || tok.Kind() != '[' {
		o.bad = true
		return dst, false
	}
	for {
		switch o.dec.PeekKind() {
		case ']':
			return dst, true
		case '"':
		default:
			return dst, false
		}
		v, err := o.dec.ReadValue()
		if err != nil {
			o.bad = true
			return dst, false
		}
		s, ok := o.unquote(v)
		if !ok {
			return dst, false
		}
		dst = append(dst, s)
	}
}
