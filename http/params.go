package http

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Query returns r's query parameters, refusing with a *FieldError any
// parameter not in allowed, any given more than once, and a query string
// that Go's parser would read only in part: one separating parameters
// with ';' or holding a malformed %-escape.
func Query(r *http.Request, allowed ...string) (url.Values, error) {
	return QueryRepeating(r, nil, allowed...)
}

// QueryRepeating is Query for endpoints where the parameters named in
// repeatable may be given more than once (Kestra's sort=a:asc&sort=b:desc).
// repeatable names must be in allowed too.
func QueryRepeating(r *http.Request, repeatable []string, allowed ...string) (url.Values, error) {
	raw := r.URL.RawQuery
	for piece := range strings.SplitSeq(raw, "&") {
		key, _, _ := strings.Cut(piece, "=")
		if strings.Contains(piece, ";") {
			return nil, &FieldError{Field: paramName(key), Message: "the query string must separate parameters with &, not ;"}
		}
		if _, err := url.QueryUnescape(piece); err != nil {
			return nil, &FieldError{Field: paramName(key), Message: "the query string holds a malformed %-escape; escape % as %25"}
		}
	}
	qs, err := url.ParseQuery(raw)
	if err != nil {
		return nil, &FieldError{Message: "the query string is malformed"}
	}
	for k, v := range qs {
		if !slices.Contains(allowed, k) {
			known := "this endpoint takes none"
			if len(allowed) > 0 {
				known = "known: " + strings.Join(allowed, ", ")
			}
			return nil, &FieldError{Field: paramName(k), Message: boundedName(strconv.Quote(k)) + " is not a known query parameter (" + known + ")"}
		}
		if len(v) > 1 && !slices.Contains(repeatable, k) {
			return nil, BadField(k, "must be given once")
		}
		for _, x := range v {
			if !utf8.ValidString(x) || strings.ContainsFunc(x, unicode.IsControl) {
				return nil, BadField(k, "must be UTF-8 text without control characters")
			}
		}
	}
	return qs, nil
}

// paramName is a parameter name fit for an error's field: unescaped when
// it can be, and empty when too long to echo.
func paramName(k string) string {
	if u, err := url.QueryUnescape(k); err == nil {
		k = u
	}
	if len(k) > 64 {
		return ""
	}
	return k
}
