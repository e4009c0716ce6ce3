package http_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	khttp "github.com/keyhold/keyhold/http"
)

// FuzzDecodeJSON checks that any body either decodes or fails with
// ErrBadRequest, never panics, and never echoes more than a bounded
// message.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{`{"name":"a","count":1,"tags":["x"]}`, `{"name":}`, `[1]`, `{"id":1}`, `{"count":1e999}`, `{"tags":[[[[[]]]]]}`, "\x00", `{"name":"\ud800"}`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var v target
		err := khttp.DecodeJSON(httptest.NewRecorder(), r, &v)
		if err != nil && !errors.Is(err, khttp.ErrBadRequest) {
			t.Fatalf("error %v does not wrap ErrBadRequest", err)
		}
		if err != nil && len(err.Error()) > 300 {
			t.Fatalf("error message of %d bytes", len(err.Error()))
		}
	})
}
