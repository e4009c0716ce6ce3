package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// KESTRA_OPENAPI names Kestra's own OpenAPI document for 0.24
// (kestra-ee.yml of github.com/kestra-io/client-sdk at the commit
// "generate all SDK with 0.24.0 openspec file"). When set, the Kestra
// tests validate every successful exchange against it; the document is
// Kestra's and is not kept in this repository.
const kestraOpenAPIEnv = "KESTRA_OPENAPI"

// kestraExchange is one request to the Kestra dialect and its response.
type kestraExchange struct {
	method, path string
	body         []byte
	resp         httpResp
}

// kestraRecorder keeps the exchanges of one test.
type kestraRecorder struct {
	mu        sync.Mutex
	exchanges []kestraExchange
}

func (r *kestraRecorder) add(e kestraExchange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exchanges = append(r.exchanges, e)
}

var kestraSpec = sync.OnceValues(func() (routers.Router, error) {
	path := os.Getenv(kestraOpenAPIEnv)
	if path == "" {
		return nil, nil
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, err
	}
	doc.Servers = nil
	return gorillamux.NewRouter(doc)
})

// lookahead is the one construct Kestra's patterns use that Go's regexp
// lacks: a leading length check, ^(?=.{1,63}$).
var lookahead = regexp.MustCompile(`^\^\(\?=\.\{(\d+),(\d+)\}\$\)`)

type lengthAndPattern struct {
	min, max int
	re       *regexp.Regexp
}

func (m lengthAndPattern) MatchString(s string) bool {
	n := len([]rune(s))
	return n >= m.min && n <= m.max && m.re.MatchString(s)
}

func compileKestraPattern(expr string) (openapi3.RegexMatcher, error) {
	if sm := lookahead.FindStringSubmatch(expr); sm != nil {
		re, err := regexp.Compile("^" + expr[len(sm[0]):])
		if err != nil {
			return nil, err
		}
		lo, _ := strconv.Atoi(sm[1])
		hi, _ := strconv.Atoi(sm[2])
		return lengthAndPattern{min: lo, max: hi, re: re}, nil
	}
	return regexp.Compile(expr)
}

// kestraCanonical is the path as Kestra's document writes it: /api/v1,
// and the tenant routes rather than their /tenants/{tenant} aliases (the
// role and group routes; /tenants/{id} itself is a route of its own).
func kestraCanonical(path string) string {
	if rest, ok := strings.CutPrefix(path, "/v1/api/"); ok {
		path = "/api/v1/" + rest
	}
	if rest, ok := strings.CutPrefix(path, "/api/v1/tenants/"); ok {
		if parts := strings.SplitN(strings.SplitN(rest, "?", 2)[0], "/", 3); len(parts) >= 2 && (parts[1] == "roles" || parts[1] == "groups") {
			path = "/api/v1/" + rest
		}
	}
	return path
}

// validateKestra checks every successful exchange of rec against Kestra's
// document: the request body and the response (status, body schema). It
// skips when KESTRA_OPENAPI is not set.
func validateKestra(t *testing.T, rec *kestraRecorder) {
	t.Helper()
	router, err := kestraSpec()
	if err != nil {
		t.Fatalf("load %s: %v", os.Getenv(kestraOpenAPIEnv), err)
	}
	if router == nil {
		t.Logf("%s not set: responses not validated against Kestra's OpenAPI document", kestraOpenAPIEnv)
		return
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true,
		RegexCompiler: compileKestraPattern, ExcludeRequestQueryParams: true}
	validated, unknown := 0, map[string]bool{}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.exchanges {
		if e.resp.Status >= 300 {
			continue
		}
		req := httptest.NewRequest(e.method, "http://kestra"+kestraCanonical(e.path), bytes.NewReader(e.body))
		if e.body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			unknown[e.method+" "+strings.SplitN(e.path, "?", 2)[0]] = true
			continue
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
		ctx := context.Background()
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			t.Errorf("%s %s: request does not match Kestra's document: %v", e.method, e.path, err)
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: e.resp.Status, Header: e.resp.Header,
			Body: io.NopCloser(bytes.NewReader(e.resp.Body)), Options: opts}
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s %s: response %d does not match Kestra's document: %v\n%s", e.method, e.path, e.resp.Status, err, e.resp.Body)
		}
		validated++
	}
	for op := range unknown {
		// Keyhold's extensions only.
		if !strings.HasSuffix(strings.Split(op, "?")[0], "/service-accounts") || !strings.HasPrefix(op, http.MethodGet) {
			t.Errorf("%s is not in Kestra's document", op)
		}
	}
	if validated == 0 {
		t.Error("no exchange validated against Kestra's document")
	}
	t.Logf("%d exchanges validated against Kestra's document", validated)
}
