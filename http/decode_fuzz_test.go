package http_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	khttp "github.com/keyhold/keyhold/http"
)

// FuzzDecodeJSON checks that any body either decodes or fails with
// ErrBadRequest, never panics, never echoes more than a bounded message,
// and never lets a lone surrogate escape through as U+FFFD.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{`{"name":"a","count":1,"tags":["x"]}`, `{"name":}`, `[1]`, `{"id":1}`, `{"count":1e999}`, `{"tags":[[[[[]]]]]}`, "\x00", `{"name":"\ud800"}`, `{"tags":["\udc00x"]}`, `{"name":"\ud83d\ude00"}`, `{"\ud800":1}`, `{"name":"\\ud800"}`, `{"count":99999999999999999999}`} {
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
		if err == nil && strings.ContainsRune(v.Name+strings.Join(v.Tags, ""), utf8.RuneError) && !strings.Contains(body, "\uFFFD") && !strings.Contains(body, "\ufffd") && !strings.ContainsRune(body, utf8.RuneError) {
			t.Fatalf("body %q decoded to U+FFFD: a lone surrogate got through", body)
		}
	})
}
