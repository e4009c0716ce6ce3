package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

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

// ErrBodyTooLarge is returned (wrapped with ErrBadRequest) for a body
// longer than MaxBodyBytes; dialects answer it 413.
var ErrBodyTooLarge = errors.New("body is larger than " + strconv.Itoa(MaxBodyBytes) + " bytes")

// ErrLoneSurrogate is returned (as a *FieldError naming the field) for a
// JSON string escaping half of a UTF-16 surrogate pair ("\ud800"), which
// decoders silently turn into U+FFFD.
var ErrLoneSurrogate = errors.New("lone UTF-16 surrogate")

// FieldError is a bad request about one body field or query parameter.
// It matches ErrBadRequest with errors.Is.
type FieldError struct {
	// Field names the field as the client sent it ("scope.level", "limit").
	Field string
	// Message says what to fix, naming the field.
	Message string
	// Reason, if set, is a sentinel the error also matches with errors.Is.
	Reason error
}

func (e *FieldError) Error() string { return e.Message }

// Is makes a FieldError match ErrBadRequest and its Reason.
func (e *FieldError) Is(target error) bool {
	return target == ErrBadRequest || e.Reason != nil && target == e.Reason
}

// BadField returns a FieldError about field whose message is the field's
// name followed by msg ("limit must be ...").
func BadField(field, msg string) error {
	return &FieldError{Field: field, Message: field + " " + msg}
}

// DecodeJSON decodes the request body into v: exactly one JSON object of
// valid UTF-8, no unknown fields (names match exactly, not ignoring case),
// no name twice in one object, no string escaping a lone UTF-16
// surrogate, at most MaxBodyBytes (else ErrBodyTooLarge). Errors wrap
// ErrBadRequest and name the byte offset at fault, or are a *FieldError
// naming the field (or the Content-Type header).
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Values("Content-Type"); len(ct) > 0 {
		mt, params, err := mime.ParseMediaType(ct[0])
		if len(ct) > 1 || err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &FieldError{Field: "Content-Type", Message: "Content-Type must be application/json, given once"}
		}
		// JSON is UTF-8 (RFC 8259 8.1): a body announced otherwise would be
		// read as something it is not.
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return &FieldError{Field: "Content-Type", Message: "Content-Type's charset must be utf-8, if given"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return fmt.Errorf("%w: %w", ErrBadRequest, ErrBodyTooLarge)
	}
	if err != nil {
		return fmt.Errorf("%w: %s", ErrBadRequest, describeOther(err))
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("%w: %w", ErrBadRequest, ErrEmptyBody)
	}
	// Decoders would replace invalid bytes with U+FFFD and store that.
	if !utf8.Valid(body) {
		return fmt.Errorf("%w: body is not valid UTF-8", ErrBadRequest)
	}
	// A decoder takes null for an empty object; the body must be one.
	if trimmed := bytes.TrimSpace(body); trimmed[0] != '{' {
		return fmt.Errorf("%w: body must be a JSON object", ErrBadRequest)
	}
	// Decoders would store U+FFFD for a lone surrogate escape; the raw
	// text is the only place to see one.
	if err := loneSurrogate(body); err != nil {
		return err
	}
	// segmentio's Parse decodes from the buffer without a Decoder's
	// per-call allocations; its error types are encoding/json's.
	rest, err := fastjson.Parse(body, v, fastjson.DisallowUnknownFields|fastjson.DontMatchCaseInsensitiveStructFields)
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) && syntax.Offset == 0 && len(rest) > 0 {
		// The parser reports where it stopped through what is left.
		syntax.Offset = int64(len(body) - len(rest))
	}
	if err != nil {
		if field, msg := describe(err); field != "" {
			return &FieldError{Field: field, Message: msg}
		}
		return fmt.Errorf("%w: %s", ErrBadRequest, describeOther(err))
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return fmt.Errorf("%w: body must hold a single JSON object", ErrBadRequest)
	}
	// Decoders keep the last of repeated names; another reader of the same
	// body (a proxy, an audit tool) may keep the first.
	if name, ok := duplicateName(body[:len(body)-len(rest)]); ok {
		field := name
		if len(field) > 64 {
			field = ""
		}
		return &FieldError{Field: field, Message: "field " + boundedName(strconv.Quote(name)) + " appears more than once"}
	}
	return nil
}

// duplicateName returns the first member name that appears twice in one
// object of b, which must be valid JSON. Names compare unescaped.
func duplicateName(b []byte) (string, bool) {
	// One entry per open object or array; an array's is nil.
	var open []*[]string
	expectName := false
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			open = append(open, new([]string))
			expectName = true
		case '[':
			open = append(open, nil)
			expectName = false
		case '}', ']':
			open = open[:len(open)-1]
			expectName = false
		case ',':
			expectName = len(open) > 0 && open[len(open)-1] != nil
		case '"':
			start, escaped := i, false
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					escaped = true
					i++
				}
			}
			if !expectName {
				continue
			}
			expectName = false
			name := string(b[start+1 : i])
			if escaped {
				if err := json.Unmarshal(b[start:i+1], &name); err != nil {
					continue
				}
			}
			names := open[len(open)-1]
			for _, n := range *names {
				if n == name {
					return name, true
				}
			}
			*names = append(*names, name)
		}
	}
	return "", false
}

// loneSurrogate returns a *FieldError when a string in b escapes half of
// a UTF-16 surrogate pair. It looks only at bodies holding such an escape
// and trusts the path it reports only when b is valid JSON; for invalid
// JSON it returns nil and leaves the syntax error to the parser.
func loneSurrogate(b []byte) error {
	if !hasSurrogateEscape(b) || !fastjson.Valid(b) {
		return nil
	}
	// One frame per open object or array: the object's current member
	// name, or nil for an array.
	var path []*string
	expectName := false
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			path = append(path, new(string))
			expectName = true
		case '[':
			path = append(path, nil)
		case '}', ']':
			path = path[:len(path)-1]
			expectName = false
		case ',':
			expectName = len(path) > 0 && path[len(path)-1] != nil
		case '"':
			start, lone := i, -1
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] != '\\' {
					continue
				}
				i++
				if b[i] != 'u' || lone >= 0 {
					continue
				}
				switch r := hex4(b[i+1:]); {
				case r >= 0xd800 && r <= 0xdbff && i+10 < len(b) && b[i+5] == '\\' && b[i+6] == 'u' && hex4(b[i+7:]) >= 0xdc00 && hex4(b[i+7:]) <= 0xdfff:
					i += 10 // a pair: one character
				case r >= 0xd800 && r <= 0xdfff:
					lone = r
					i += 4
				default:
					i += 4
				}
			}
			name := expectName
			if name {
				expectName = false
				var n string
				_ = json.Unmarshal(b[start:i+1], &n)
				*path[len(path)-1] = n
			}
			if lone < 0 {
				continue
			}
			var names []string
			for _, p := range path {
				if p != nil {
					names = append(names, *p)
				}
			}
			if name {
				// The member name itself is at fault: name its object.
				names = names[:len(names)-1]
			}
			field := strings.Join(names, ".")
			what := "field " + boundedName(strconv.Quote(field))
			if len(field) > 64 {
				field = ""
			}
			if name {
				what = "a field name"
				if len(names) > 0 {
					what += " in " + boundedName(strconv.Quote(strings.Join(names, ".")))
				}
			}
			return &FieldError{Field: field, Reason: ErrLoneSurrogate,
				Message: fmt.Sprintf(`%s holds a lone UTF-16 surrogate (\u%04x), which is no character; send a whole surrogate pair or the character itself`, what, lone)}
		}
	}
	return nil
}

// hasSurrogateEscape reports whether b holds the text \uD800 to \uDFFF,
// in either case; most bodies do not, and skip the walk.
func hasSurrogateEscape(b []byte) bool {
	for {
		i := bytes.Index(b, []byte(`\u`))
		if i < 0 || i+2 >= len(b) {
			return false
		}
		if b[i+2] == 'd' || b[i+2] == 'D' {
			return true
		}
		b = b[i+2:]
	}
}

// hex4 returns the value of the four hex digits b starts with, or -1.
func hex4(b []byte) int {
	if len(b) < 4 {
		return -1
	}
	n, err := strconv.ParseUint(string(b[:4]), 16, 16)
	if err != nil {
		return -1
	}
	return int(n)
}

// describe names the field a decoding error is about and says what to
// fix; field is empty for errors about no one field.
func describe(err error) (field, msg string) {
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typ) && typ.Field != "" && isInteger(typ.Type.Kind()) && outOfRange(typ):
		name := boundedName(strconv.Quote(typ.Field))
		min, max := integerRange(typ.Type)
		return typ.Field, fmt.Sprintf("field %s is out of range: must be a whole number from %s to %s", name, min, max)
	case errors.As(err, &typ) && typ.Field != "":
		name := boundedName(strconv.Quote(typ.Field))
		return typ.Field, fmt.Sprintf("field %s must be %s, not %s", name, jsonKind(typ.Type.Kind().String()), valueKind(typ.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		quoted := strings.TrimPrefix(err.Error(), "json: unknown field ")
		name, uerr := strconv.Unquote(quoted)
		if uerr != nil || len(name) > 64 {
			// Too long to echo whole: the message holds the cut name.
			name = ""
		}
		return name, "unknown field " + boundedName(quoted)
	}
	return "", ""
}

// describeOther says what is wrong with a body for errors about no one
// field.
func describeOther(err error) string {
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
		return fmt.Sprintf("body must be a JSON object, not %s", valueKind(typ.Value))
	}
	return "malformed JSON body"
}

func isInteger(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// outOfRange reports whether an integer field's error is about a whole
// number the type cannot hold: the decoder reports an overflow as
// "number <text> overflows" and a negative number for an unsigned type as
// the number's text.
func outOfRange(typ *json.UnmarshalTypeError) bool {
	if strings.HasPrefix(typ.Value, "number ") && strings.HasSuffix(typ.Value, " overflows") {
		return true
	}
	raw, err := strconv.Unquote(typ.Value)
	if err != nil {
		raw = typ.Value
	}
	raw = strings.TrimRight(strings.TrimSpace(raw), "}], \t\r\n")
	if _, err := strconv.ParseInt(raw, 10, 64); err == nil {
		return true // a whole number, but not one of this type
	}
	return strings.HasPrefix(raw, "-") && strings.Trim(raw[1:], "0123456789") == "" && len(raw) > 1
}

// integerRange returns the bounds of an integer type as text.
func integerRange(t reflect.Type) (min, max string) {
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "0", strconv.FormatUint(1<<t.Bits()-1, 10)
	}
	return strconv.FormatInt(-1<<(t.Bits()-1), 10), strconv.FormatInt(1<<(t.Bits()-1)-1, 10)
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
