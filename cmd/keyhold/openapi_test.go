package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/internal/testenv"
)

// TestOpenAPIDescribesEveryRoute walks the router of a running server and
// compares the operations it serves with those http/openapi.json
// documents, both ways: an undocumented route fails the test, and so does
// a documented operation no route serves any more.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	router, ok := h.srv.handler.(*mux.Router)
	if !ok {
		t.Fatalf("the server's handler is a %T, not the *mux.Router this test walks", h.srv.handler)
	}

	served := map[string]bool{}
	err := router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		handler := route.GetHandler()
		if handler == nil {
			return nil // a subrouter's prefix; its routes are walked too
		}
		if _, ok := handler.(khttp.Fallback); ok {
			return nil // a dialect's 404 for unknown paths, no endpoint
		}
		tmpl, err := route.GetPathTemplate()
		if err != nil {
			t.Errorf("a route without a path template: %v", err)
			return nil
		}
		if re, err := route.GetPathRegexp(); err == nil && !strings.HasSuffix(re, "$") {
			return nil // a prefix's catch-all, answering paths under it that name nothing
		}
		path := pathVarPattern.ReplaceAllString(tmpl, "{$1}")
		for _, m := range routeMethods(t, route, handler, path) {
			served[m+" "+path] = true
		}
		return nil
	})
	testenv.Must(t, err, "walk the router")

	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	testenv.Must(t, json.Unmarshal(khttp.OpenAPI, &doc), "parse openapi.json")
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for key := range item {
			if m := strings.ToUpper(key); slices.Contains(probeMethods, m) || m == http.MethodOptions || m == http.MethodTrace {
				documented[m+" "+path] = true
			}
		}
	}

	for _, op := range sortedKeys(served) {
		if !documented[op] {
			t.Errorf("%s is served but not in http/openapi.json", op)
		}
	}
	for _, op := range sortedKeys(documented) {
		if !served[op] {
			t.Errorf("%s is in http/openapi.json but no route serves it", op)
		}
	}
}

// pathVarPattern matches a mux path variable with a pattern, {id:[0-9]+},
// which OpenAPI writes {id}.
var pathVarPattern = regexp.MustCompile(`\{([^}:]+):[^}]*\}`)

// probeMethods are the methods a route is asked about when it does not
// declare its own.
var probeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// routeMethods returns the methods route serves: those of its mux method
// matcher, else those of a khttp.Methods handler, else those its handler
// answers with anything but 405 (handlers that refuse other methods in
// their own error shape, such as the OAuth2 endpoints).
func routeMethods(t *testing.T, route *mux.Route, handler http.Handler, path string) []string {
	t.Helper()
	if ms, err := route.GetMethods(); err == nil {
		return ms
	}
	if ms, ok := handler.(khttp.Methods); ok {
		return sortedKeys(ms)
	}
	if ms, ok := handler.(khttp.MethodsIn); ok {
		return sortedKeys(ms.Methods)
	}
	target := strings.NewReplacer("{", "", "}", "").Replace(path)
	var out []string
	for _, m := range probeMethods {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(m, target, nil))
		if rec.Code != http.StatusMethodNotAllowed {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		t.Errorf("%s answers every method with 405", path)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
