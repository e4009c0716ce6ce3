package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyhold/keyhold/auth"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/projections"
)

type target struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Tags  []string `json:"tags"`
}

func TestDecodeJSONReasons(t *testing.T) {
	tests := []struct {
		name, body string
		want       error
	}{
		{"too large", `{"name":"` + strings.Repeat("a", khttp.MaxBodyBytes) + `"}`, khttp.ErrBodyTooLarge},
		{"lone surrogate", `{"name":"\udfff"}`, khttp.ErrLoneSurrogate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			var v target
			err := khttp.DecodeJSON(httptest.NewRecorder(), r, &v)
			if !errors.Is(err, tt.want) || !errors.Is(err, khttp.ErrBadRequest) {
				t.Fatalf("err = %v, want %v and ErrBadRequest", err, tt.want)
			}
		})
	}
}

func TestQuery(t *testing.T) {
	tests := []struct {
		name, query string
		allowed     []string
		wantField   string
		wantErr     string
	}{
		{"known", "limit=1&cursor=x", []string{"limit", "cursor"}, "", ""},
		{"none", "", nil, "", ""},
		{"unknown on a write", "dryRun=true", nil, "dryRun", "this endpoint takes none"},
		{"unknown beside known", "limit=1&foo=2", []string{"limit"}, "foo", "known: limit"},
		{"semicolon separator", "limit=1;foo=2", []string{"limit"}, "limit", "not ;"},
		{"semicolon alone", ";", []string{"limit"}, ";", "not ;"},
		{"repeated", "limit=1&limit=2", []string{"limit"}, "limit", "once"},
		{"malformed escape", "limit=%zz", []string{"limit"}, "limit", "malformed %-escape"},
		{"NUL", "q=a%00b", []string{"q"}, "q", "without control characters"},
		{"invalid UTF-8", "q=%c3%28", []string{"q"}, "q", "UTF-8"},
		{"text", "q=caf%C3%A9", []string{"q"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/x?"+tt.query, nil)
			_, err := khttp.Query(r, tt.allowed...)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var fe *khttp.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField || !strings.Contains(fe.Message, tt.wantErr) {
				t.Fatalf("err = %#v, want field %q mentioning %q", err, tt.wantField, tt.wantErr)
			}
		})
	}
}

func TestRepeatedAuthHeaderIs400(t *testing.T) {
	kit, err := khttp.NewKit(refuseAll{}, projections.NewProgress(), nil, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := kit.Authenticated(khttp.WriteProblem)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Fatal("handler reached") }))
	for _, name := range []string{"Authorization", khttp.TenantHeader} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Add(name, "Bearer a")
			req.Header.Add(name, "Bearer b")
			h.ServeHTTP(rec, req)
			var p khttp.Problem
			_ = json.Unmarshal(rec.Body.Bytes(), &p)
			if rec.Code != 400 || p.Field != name {
				t.Fatalf("got %d %s", rec.Code, rec.Body)
			}
		})
	}
}

func TestDecodeJSONEmptyBodyIsDistinct(t *testing.T) {
	for _, body := range []string{"", "  \n"} {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		var v target
		err := khttp.DecodeJSON(httptest.NewRecorder(), r, &v)
		if !errors.Is(err, khttp.ErrEmptyBody) || !errors.Is(err, khttp.ErrBadRequest) {
			t.Fatalf("body %q: err = %v, want ErrEmptyBody and ErrBadRequest", body, err)
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, contentType, body, wantErr, wantField string
	}{
		{"valid", "application/json", `{"name":"a","count":1}`, "", ""},
		{"vendor json", "application/merge-patch+json", `{"name":"a"}`, "", ""},
		{"utf-8 charset", "application/json; charset=UTF-8", `{"name":"a"}`, "", ""},
		{"another charset", "application/json; charset=utf-16", `{"name":"a"}`, "charset must be utf-8", "Content-Type"},
		{"no content type", "", `{"name":"a"}`, "", ""},
		{"empty", "application/json", ``, "body is empty", ""},
		{"syntax", "application/json", `{"name":}`, "malformed JSON at byte 8", ""},
		{"trailing garbage", "application/json", `{"name":"a"} x`, "single JSON object", ""},
		{"fraction for a whole number", "application/json", `{"count":1.5}`, `field "count" must be a whole number, not number`, "count"},
		{"object for a string", "application/json", `{"name":{}}`, `field "name" must be a string, not object`, "name"},
		{"truncated", "application/json", `{"name":"a"`, "ends in the middle", ""},
		{"unknown field", "application/json", `{"id":"x"}`, `unknown field "id"`, "id"},
		{"field name in another case", "application/json", `{"NAME":"a"}`, `unknown field "NAME"`, "NAME"},
		{"invalid UTF-8", "application/json", "{\"name\":\"a\xff\"}", "not valid UTF-8", ""},
		{"name twice", "application/json", `{"name":"a","count":1,"name":"b"}`, `field "name" appears more than once`, "name"},
		{"name twice, once escaped", "application/json", `{"name":"a","n\u0061me":"b"}`, `field "name" appears more than once`, "name"},
		{"name as a value", "application/json", `{"name":"name","tags":["name","name"]}`, "", ""},
		{"wrong type", "application/json", `{"count":"x"}`, `field "count" must be a whole number, not string`, "count"},
		{"wrong array type", "application/json", `{"tags":"x"}`, `field "tags" must be an array`, "tags"},
		{"not an object", "application/json", `[1]`, "must be a JSON object", ""},
		{"null", "application/json", ` null `, "must be a JSON object", ""},
		{"a string", "application/json", `"x"`, "must be a JSON object", ""},
		{"two objects", "application/json", `{} {}`, "single JSON object", ""},
		{"form content type", "application/x-www-form-urlencoded", `{}`, "Content-Type must be application/json", "Content-Type"},
		{"too large", "application/json", `{"name":"` + strings.Repeat("a", khttp.MaxBodyBytes) + `"}`, "larger than", ""},
		{"lone high surrogate", "application/json", `{"name":"a\ud800b"}`, "lone UTF-16 surrogate (\\ud800)", "name"},
		{"lone low surrogate in an array", "application/json", `{"tags":["x","\uDC00"]}`, "lone UTF-16 surrogate", "tags"},
		{"high surrogate then another escape", "application/json", `{"name":"\ud800\u0041"}`, "lone UTF-16 surrogate", "name"},
		{"surrogate in a field name", "application/json", `{"tags":{"n\ud800":1}}`, `a field name in "tags" holds a lone UTF-16 surrogate`, "tags"},
		{"surrogate pair", "application/json", `{"name":"\ud83d\ude00"}`, "", ""},
		{"escaped backslash before u", "application/json", `{"name":"\\ud800"}`, "", ""},
		{"integer too large", "application/json", `{"count":99999999999999999999}`, `field "count" is out of range: must be a whole number from -9223372036854775808 to 9223372036854775807`, "count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var v target
			err := khttp.DecodeJSON(httptest.NewRecorder(), r, &v)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			case tt.wantErr != "" && !errors.Is(err, khttp.ErrBadRequest):
				t.Fatalf("err = %v, want it to match ErrBadRequest", err)
			}
			var fe *khttp.FieldError
			if errors.As(err, &fe) != (tt.wantField != "") || fe != nil && fe.Field != tt.wantField {
				t.Fatalf("err = %#v, want a FieldError for %q", err, tt.wantField)
			}
		})
	}
}

type stubChecks map[string]khttp.Check

func TestReadyz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	tests := []struct {
		name       string
		checks     stubChecks
		wantStatus int
		wantBody   string
	}{
		{"all ok", stubChecks{"a": ok, "b": ok}, 200, `"status":"ready"`},
		{"one failing", stubChecks{"a": ok, "b": func(context.Context) error { return io.EOF }}, 503, `"b":"EOF"`},
		{"degraded is still ready", stubChecks{"a": func(context.Context) error { return khttp.Degraded("1 failed event") }, "b": ok}, 200, `"status":"degraded"`},
		{"degraded says why", stubChecks{"a": func(context.Context) error { return khttp.Degraded("1 failed event") }}, 200, `"a":"degraded: 1 failed event"`},
		{"failing wins over degraded", stubChecks{"a": func(context.Context) error { return khttp.Degraded("1 failed event") }, "b": func(context.Context) error { return io.EOF }}, 503, `"status":"not ready"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := khttp.NewRouter(khttp.Config{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), Checks: tt.checks, OpenAPI: khttp.OpenAPI})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Fatalf("got %d %s, want %d containing %s", rec.Code, rec.Body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestUnknownRouteIsProblemWithRequestID(t *testing.T) {
	r, err := khttp.NewRouter(khttp.Config{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), OpenAPI: khttp.OpenAPI})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/nope", nil)
	req.Header.Set(khttp.RequestIDHeader, "client-chosen-1")
	r.ServeHTTP(rec, req)
	var p khttp.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 404 || p.RequestID != "client-chosen-1" || rec.Header().Get(khttp.RequestIDHeader) != "client-chosen-1" ||
		rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("got %d %+v headers %v", rec.Code, p, rec.Header())
	}
}

type refuseAll struct{}

func (refuseAll) Authenticate(context.Context, string, string) (auth.Principal, error) {
	return auth.Principal{}, khttp.ErrUnauthenticated
}

func TestAwaitReadReportsLag(t *testing.T) {
	progress := projections.NewProgress()
	kit, err := khttp.NewKit(refuseAll{}, progress, []string{"iam"}, 20*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	progress.Advance("iam", 5)
	tests := []struct {
		name       string
		seq        uint64
		wantBehind string
	}{
		{"caught up", 5, ""},
		{"behind", 6, "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			kit.AwaitRead(context.Background(), rec, tt.seq)
			if got := rec.Header().Get(khttp.ReadBehindHeader); got != tt.wantBehind {
				t.Fatalf("%s = %q, want %q", khttp.ReadBehindHeader, got, tt.wantBehind)
			}
			if rec.Header().Get(khttp.SequenceHeader) == "" {
				t.Fatal("no sequence header")
			}
		})
	}
}

func TestMissingBearerIs401(t *testing.T) {
	kit, err := khttp.NewKit(refuseAll{}, projections.NewProgress(), nil, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := kit.Authenticated(khttp.WriteProblem)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Fatal("handler reached") }))
	for _, authz := range []string{"", "Basic abc", "Bearer ", "Bearer khpat_x"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		h.ServeHTTP(rec, req)
		if rec.Code != 401 || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("%q: got %d %v", authz, rec.Code, rec.Header())
		}
	}
}

func TestMethodsAnswers405WithAllow(t *testing.T) {
	h := khttp.Methods{http.MethodGet: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }, http.MethodPost: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(201) }}
	tests := []struct {
		method    string
		wantCode  int
		wantAllow string
	}{
		{http.MethodGet, 204, ""},
		{http.MethodPost, 201, ""},
		{http.MethodPut, 405, "GET, POST"},
		{http.MethodDelete, 405, "GET, POST"},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, "/x", nil))
			if rec.Code != tt.wantCode || rec.Header().Get("Allow") != tt.wantAllow {
				t.Fatalf("got %d Allow=%q, want %d Allow=%q", rec.Code, rec.Header().Get("Allow"), tt.wantCode, tt.wantAllow)
			}
		})
	}
}

// A panic is answered in the shape of the dialect whose routes it came
// from (ErrorsAs), and as a problem elsewhere.
func TestPanicAnsweredInTheDialectsShape(t *testing.T) {
	r, err := khttp.NewRouter(khttp.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	dialect := func(w http.ResponseWriter, _ *http.Request, status int, _, detail string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": status, "message": detail}})
	}
	s := r.PathPrefix("/dialect").Subrouter()
	s.Use(khttp.ErrorsAs(dialect))
	boom := func(http.ResponseWriter, *http.Request) { panic("boom") }
	s.HandleFunc("/x", boom)
	r.HandleFunc("/plain", boom)
	for _, tc := range []struct{ path, ctype string }{
		{"/dialect/x", "application/json"},
		{"/plain", "application/problem+json"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if w.Code != http.StatusInternalServerError || w.Header().Get("Content-Type") != tc.ctype {
				t.Fatalf("%d %q: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
			}
			if strings.Contains(w.Body.String(), "boom") {
				t.Errorf("the panic value reached the client: %s", w.Body)
			}
		})
	}
}

// Made-up methods are counted under one label: each would otherwise be a
// metric series of its own, kept until restart.
func TestMadeUpMethodsShareOneSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, err := khttp.NewRouter(khttp.Config{Logger: slog.New(slog.DiscardHandler), Registry: reg, OpenAPI: khttp.OpenAPI})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(fmt.Sprintf("Q%d", i), "/healthz", nil))
	}
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string]bool{}
	for _, f := range families {
		if f.GetName() != "keyhold_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "method" {
					methods[l.GetValue()] = true
				}
			}
		}
	}
	if len(methods) != 2 || !methods["other"] || !methods["GET"] {
		t.Fatalf("method labels %v, want GET and other", methods)
	}
}
