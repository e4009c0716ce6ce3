package http

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness check; nil means ready.
type Check func(ctx context.Context) error

// Config holds what NewRouter needs.
type Config struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Checks are run by /readyz; all must pass.
	Checks map[string]Check
	// OpenAPI is served at /openapi.json.
	OpenAPI []byte
}

// NewRouter returns a router with Keyhold's operational endpoints
// (/healthz, /readyz, /metrics, /openapi.json) and the outermost
// middleware; dialects add their routes to it.
func NewRouter(cfg Config) (*mux.Router, error) {
	if cfg.Logger == nil || cfg.Registry == nil {
		return nil, errors.New("http: logger and registry are required")
	}
	// SkipClean: a path such as /x/../y must reach the id checks (400),
	// not be redirected to another resource.
	// UseEncodedPath: an escaped slash (%2F) in an id must stay inside
	// the id (and fail its checks), not become a path separator that
	// routes the request where a proxy in front would not expect it.
	r := mux.NewRouter().SkipClean(true).UseEncodedPath()
	mw := observe(cfg.Logger, newMetrics(cfg.Registry))
	r.Use(mw)
	// Unmatched requests bypass router middleware, so wrap these directly.
	r.NotFoundHandler = mw(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		WriteProblem(w, req, http.StatusNotFound, "", "no such endpoint: "+req.Method+" "+req.URL.Path)
	}))
	r.MethodNotAllowedHandler = mw(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		WriteProblem(w, req, http.StatusMethodNotAllowed, "", "method "+req.Method+" is not allowed on "+req.URL.Path)
	}))
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", readyz(cfg.Checks)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	r.HandleFunc("/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(cfg.OpenAPI)
	}).Methods(http.MethodGet)
	return r, nil
}

func readyz(checks map[string]Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		var mu sync.Mutex
		var wg sync.WaitGroup
		results := map[string]string{}
		ready, whole := true, true
		for name, check := range checks {
			wg.Add(1)
			go func(name string, check Check) {
				defer wg.Done()
				err := check(ctx)
				mu.Lock()
				defer mu.Unlock()
				var d degraded
				switch {
				case errors.As(err, &d):
					results[name] = "degraded: " + err.Error()
					whole = false
				case err != nil:
					results[name] = err.Error()
					ready = false
				default:
					results[name] = "ok"
				}
			}(name, check)
		}
		wg.Wait()
		body := struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}{Status: "ready", Checks: results}
		status := http.StatusOK
		switch {
		case !ready:
			body.Status, status = "not ready", http.StatusServiceUnavailable
		case !whole:
			// Still serving, so still 200: a load balancer keeps sending
			// traffic, an operator reading the body sees something is off.
			body.Status = "degraded"
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
}

// degraded is a readiness finding worth reporting that does not make the
// server unready.
type degraded string

func (d degraded) Error() string { return string(d) }

// Degraded returns a Check result that /readyz reports without failing.
func Degraded(reason string) error { return degraded(reason) }

// Methods routes one path by method and answers any other method with 405
// and an Allow header. Register paths with it rather than with mux's
// Methods matcher: gorilla/mux subrouters report a wrong method as 404.
type Methods map[string]http.HandlerFunc

// ServeHTTP implements http.Handler, answering a wrong method with a
// problem response.
func (m Methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	MethodsIn{Methods: m, OnErr: WriteProblem}.ServeHTTP(w, r)
}

// With returns m as a handler that answers a wrong method (405, with Allow)
// in a dialect's own error shape: a MethodsIn, whose methods route walkers
// can read.
func (m Methods) With(onErr ErrorWriter) http.Handler { return MethodsIn{Methods: m, OnErr: onErr} }

// MethodsIn is Methods answering other methods with 405 in a dialect's
// error shape.
type MethodsIn struct {
	Methods Methods
	OnErr   ErrorWriter
}

// ServeHTTP implements http.Handler.
func (m MethodsIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := m.Methods[r.Method]; ok {
		h(w, r)
		return
	}
	allowed := make([]string, 0, len(m.Methods))
	for method := range m.Methods {
		allowed = append(allowed, method)
	}
	slices.Sort(allowed)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	m.OnErr(w, r, http.StatusMethodNotAllowed, "", "method "+r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+strings.Join(allowed, ", "))
}

// Fallback answers requests under a dialect's path prefix that match none
// of its routes: 404 in the dialect's shape. It is no endpoint of its own;
// route walkers (the OpenAPI check) skip it.
type Fallback struct{ OnErr ErrorWriter }

// ServeHTTP implements http.Handler.
func (f Fallback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.OnErr(w, r, http.StatusNotFound, "", "no such endpoint: "+r.Method+" "+r.URL.Path)
}
