package http

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	principalKey
	errorSlotKey
)

// errorSlot holds the error writer of the dialect a request reached, for
// the outermost middleware, which runs before any dialect's.
type errorSlot struct{ write ErrorWriter }

// ErrorsAs makes onErr the writer of the errors the outermost middleware
// answers for requests that reach the routes it wraps (a recovered
// panic), so a dialect's routes answer every error in its own shape.
func ErrorsAs(onErr ErrorWriter) mux.MiddlewareFunc {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if slot, ok := r.Context().Value(errorSlotKey).(*errorSlot); ok {
				slot.write = onErr
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RequestIDHeader carries the request id in and out.
const RequestIDHeader = "X-Request-Id"

// RequestID returns the request id stored in ctx, or "".
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

// PrincipalFrom returns the authenticated principal stored in ctx.
func PrincipalFrom(ctx context.Context) (auth.Principal, bool) {
	p, ok := ctx.Value(principalKey).(auth.Principal)
	return p, ok
}

// WithPrincipal returns ctx carrying p (used by authentication middleware).
func WithPrincipal(ctx context.Context, p auth.Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyhold_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "keyhold_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// observe is the outermost middleware: it assigns the request id, recovers
// panics, logs one line per request (never headers or bodies, which may
// hold secrets) and records metrics.
func observe(log *slog.Logger, m *metrics) mux.MiddlewareFunc {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			id := r.Header.Get(RequestIDHeader)
			if !validRequestID(id) {
				id = events.NewID()
			}
			w.Header().Set(RequestIDHeader, id)
			slot := &errorSlot{write: WriteProblem}
			ctx := context.WithValue(r.Context(), requestIDKey, id)
			r = r.WithContext(context.WithValue(ctx, errorSlotKey, slot))
			rec := &statusRecorder{ResponseWriter: w}
			route := "unmatched"
			if cur := mux.CurrentRoute(r); cur != nil {
				if tpl, err := cur.GetPathTemplate(); err == nil {
					route = tpl
				}
			}
			defer func() {
				if v := recover(); v != nil {
					log.Error("panic in handler", "request_id", id, "route", route, "panic", v)
					if rec.status == 0 {
						slot.write(rec, r, http.StatusInternalServerError, "", "internal error; quote the request id when reporting it")
					}
				}
				code := rec.status
				if code == 0 {
					code = http.StatusOK
				}
				elapsed := time.Since(start)
				m.requests.WithLabelValues(route, methodLabel(r.Method), strconv.Itoa(code)).Inc()
				m.duration.WithLabelValues(route).Observe(elapsed.Seconds())
				if code >= 500 {
					log.Warn("request", "request_id", id, "method", methodLabel(r.Method), "route", route, "status", code, "duration_ms", elapsed.Milliseconds())
				} else if log.Enabled(r.Context(), slog.LevelDebug) {
					log.Debug("request", "request_id", id, "method", methodLabel(r.Method), "route", route, "status", code, "duration_ms", elapsed.Milliseconds())
				}
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

// methodLabel is the method as a metric label and in logs: a client may
// send any token as a method, and each one would be a metric series of
// its own, kept until restart.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}
