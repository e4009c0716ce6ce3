package main

// Every response a test receives from the k0rdent dialect is checked against the
// OpenAPI document the server serves: the harness's client goes through
// apiCheck, and a response the document does not describe fails the
// request, and so the test that made it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	khttp "github.com/keyhold/keyhold/http"
)

// errUndocumented wraps every response the document does not describe.
var errUndocumented = errors.New("response not described by the OpenAPI document")

// apiCheck is an http.RoundTripper that validates responses to requests
// of the k0rdent dialect (k0rdentPath) against an OpenAPI document, with kin-openapi: the status
// must be declared for the operation (IncludeResponseStatus), the content
// type and body must match the declared schema, and declared headers their
// schemas. A request the document has no operation for (an unknown path or
// method) must get an error, in the Error schema. It buffers bodies, so
// the caller reads them as usual.
type apiCheck struct {
	next     http.RoundTripper
	router   routers.Router
	errorDoc *openapi3.Schema
	// kestraErrorDoc is the error body of paths no Kestra operation has.
	kestraErrorDoc *openapi3.Schema
}

// newAPICheck loads spec, validates it as a document, and serves it as if
// at baseURL.
func newAPICheck(next http.RoundTripper, spec []byte, baseURL string) (*apiCheck, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("load the OpenAPI document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is invalid: %w", err)
	}
	// Route requests to the test server as the document's server.
	doc.Servers = openapi3.Servers{{URL: baseURL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route the OpenAPI document: %w", err)
	}
	s, ok := doc.Components.Schemas["Error"]
	if !ok || s.Value == nil {
		return nil, errors.New("the OpenAPI document has no Error schema")
	}
	ks, ok := doc.Components.Schemas["KestraError"]
	if !ok || ks.Value == nil {
		return nil, errors.New("the OpenAPI document has no KestraError schema")
	}
	return &apiCheck{next: next, router: router, errorDoc: s.Value, kestraErrorDoc: ks.Value}, nil
}

// RoundTrip implements http.RoundTripper.
func (c *apiCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := c.next.RoundTrip(req)
	if err != nil || !k0rdentPath(req.URL.Path) && !kestraPath(req.URL.Path) {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	if err := c.check(req, res, body); err != nil {
		return nil, fmt.Errorf("%w: %s %s answered %d: %w\nbody: %s", errUndocumented, req.Method, req.URL.RequestURI(), res.StatusCode, err, body)
	}
	return res, nil
}

func (c *apiCheck) check(req *http.Request, res *http.Response, body []byte) error {
	if len(body) == 0 && res.Header.Get("Keyhold-Redacted") != "" {
		// A replay whose recorded body was erased with personal data in
		// it: status and headers only, as the document's introduction and
		// the README say for every keyed request.
		return nil
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		// No operation: only an error in the envelope will do.
		if res.StatusCode < 400 {
			return fmt.Errorf("no operation for the request (%v), yet status %d", err, res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			return fmt.Errorf("no operation for the request (%v); Content-Type %q", err, ct)
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return err
		}
		if kestraPath(req.URL.Path) {
			return c.kestraErrorDoc.VisitJSON(v, openapi3.EnableJSONSchema2020())
		}
		return c.errorDoc.VisitJSON(v, openapi3.EnableJSONSchema2020())
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 res.StatusCode,
		Header:                 res.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(req.Context(), in)
}

// TestAPICheckRefusesUndocumented makes sure the check bites: responses
// the document does not describe fail the request.
func TestAPICheckRefusesUndocumented(t *testing.T) {
	t.Parallel()
	var status int
	var ctype, body string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	defer ts.Close()
	check, err := newAPICheck(http.DefaultTransport, khttp.OpenAPI, ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: check}
	envelope := `{"error":{"code":404,"message":"not found","details":[]}}`
	account := `{"id":"01m8bwn9bmf8bvrrbfke65f19r","uid":"019b1d1a-9d54-7a16-bf1c-5f9c7f1a7c2b","displayName":"x","clientId":"khc-01m8bwn9bmf8bvrrbfke65f19r",` +
		`"scope":"organization","scopeId":"acme","status":"active","createdAt":"2026-12-03T08:00:00.000Z","createdBy":"u"}`
	for _, tc := range []struct {
		name, method, path string
		status             int
		ctype, body        string
		ok                 bool
	}{
		{"a documented account", http.MethodGet, saBase + "/01m8bwn9bmf8bvrrbfke65f19r", 200, "application/json", account, true},
		{"a documented error", http.MethodGet, saBase + "/01m8bwn9bmf8bvrrbfke65f19r", 404, "application/json", envelope, true},
		{"a status the operation does not declare", http.MethodGet, saBase + "/01m8bwn9bmf8bvrrbfke65f19r", 418, "application/json", envelope, false},
		{"a problem instead of the envelope", http.MethodGet, saBase + "/01m8bwn9bmf8bvrrbfke65f19r", 404, "application/problem+json", `{"type":"about:blank","status":404}`, false},
		{"an account without its scope", http.MethodGet, saBase + "/01m8bwn9bmf8bvrrbfke65f19r", 200, "application/json", strings.Replace(account, `"scope":"organization",`, "", 1), false},
		{"a scope outside the draft's", http.MethodGet, saBase + "/01m8bwn9bmf8bvrrbfke65f19r", 200, "application/json", strings.Replace(account, `"organization"`, `"tenant"`, 1), false},
		{"the old list shape", http.MethodGet, saBase, 200, "application/json", `{"items":[],"nextCursor":null}`, false},
		{"an error without details", http.MethodGet, saBase, 400, "application/json", `{"error":{"code":400,"message":"bad"}}`, false},
		{"an undocumented path answered in the envelope", http.MethodGet, iamPrefix + "nothing", 404, "application/json", envelope, true},
		{"an undocumented path answered 200", http.MethodGet, iamPrefix + "nothing", 200, "application/json", `{}`, false},
		{"an undocumented method answered as a problem", http.MethodPut, saBase, 405, "application/problem+json", `{}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, ctype, body = tc.status, tc.ctype, tc.body
			req, err := http.NewRequest(tc.method, ts.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := client.Do(req)
			if err == nil {
				res.Body.Close()
			}
			if tc.ok && err != nil {
				t.Fatalf("refused a documented response: %v", err)
			}
			if !tc.ok && !errors.Is(err, errUndocumented) {
				t.Fatalf("let an undocumented response through (err %v)", err)
			}
		})
	}
}

// TestServedOpenAPIIsTheChecked makes sure the document the checks use is
// the one the server serves.
func TestServedOpenAPIIsTheChecked(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	r := h.do(t, http.MethodGet, "/openapi.json", "", nil)
	expectStatus(t, r, http.StatusOK, "openapi.json")
	if !bytes.Equal(r.Body, khttp.OpenAPI) {
		t.Fatal("/openapi.json is not the embedded document the checks load")
	}
}
