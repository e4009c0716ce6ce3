package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	fastjson "github.com/segmentio/encoding/json"
)

// MaxBodyBytes bounds every JSON request body.
const MaxBodyBytes = 64 << 10

// ErrBadRequest marks a request that could not be decoded; its message
// says what is wrong in terms the client can act on.
var ErrBadRequest = errors.New("bad request")

// ErrEmptyBody is returned (wrapped with ErrBadRequest) for a request
// without a body, so endpoints whose body is optional can tell.
var ErrEmptyBody = errors.New("body is empty; expected a JSON object")

// DecodeJSON decodes the request body into v: exactly one JSON object,
// no unknown fields, at most MaxBodyBytes. Errors wrap ErrBadRequest and
// name the field or byte offset at fault.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return fmt.Errorf("%w: Content-Type must be application/json", ErrBadRequest)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return fmt.Errorf("%w: %s", ErrBadRequest, describe(err))
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("%w: %w", ErrBadRequest, ErrEmptyBody)
	}
	// segmentio's Parse decodes from the buffer without a Decoder's
	// per-call allocations; its error types are encoding/json's.
	rest, err := fastjson.Parse(body, v, fastjson.DisallowUnknownFields)
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) && syntax.Offset == 0 && len(rest) > 0 {
		// The parser reports where it stopped through what is left.
		syntax.Offset = int64(len(body) - len(rest))
	}
	if err != nil {
		return fmt.Errorf("%w: %s", ErrBadRequest, describe(err))
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return fmt.Errorf("%w: body must hold a single JSON object", ErrBadRequest)
	}
	return nil
}

func describe(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "body ends in the middle of a JSON value"
	case errors.As(err, &tooBig):
		return fmt.Sprintf("body is larger than %d bytes", tooBig.Limit)
	case errors.As(err, &syntax) && strings.Contains(syntax.Error(), "unexpected end"):
		return "body ends in the middle of a JSON value"
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Sprintf("body must be a JSON object, not %s", valueKind(typ.Value))
		}
		return fmt.Sprintf("field %q must be %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), valueKind(typ.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + boundedName(strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return "malformed JSON body"
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "a boolean"
	case "int", "int64", "int32", "uint", "uint64":
		return "a whole number"
	case "float64", "float32":
		return "a number"
	}
	return "of another type"
}

// valueKind names the JSON kind of an offending value, which the decoder
// reports as a kind name or as the quoted raw JSON text.
func valueKind(v string) string {
	switch v {
	case "string", "number", "object", "array", "bool", "null":
		return v
	}
	if raw, err := strconv.Unquote(v); err == nil {
		v = raw
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return "an empty value"
	}
	switch v[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// boundedName quotes a client-sent field name for an error message, cut to
// 64 bytes so a message never echoes an arbitrarily long input.
func boundedName(quoted string) string {
	name, err := strconv.Unquote(quoted)
	if err != nil {
		name = strings.Trim(quoted, `"`)
	}
	if len(name) > 64 {
		return strconv.Quote(name[:64]) + "..."
	}
	return strconv.Quote(name)
}
