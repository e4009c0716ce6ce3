// Package http holds what Keyhold's HTTP dialects share: the server and
// router, middleware (request ids, logging, metrics, body limits,
// authentication, idempotency), JSON decoding with clear errors, RFC 9457
// problem responses and read-your-writes waiting. Each dialect lives in a
// package of its own below this one and maps its errors to HTTP once.
package http

import (
	"encoding/json"
	"net/http"

	fastjson "github.com/segmentio/encoding/json"
)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// WriteProblem writes a problem+json response. detail must say what to fix
// and must never contain a secret.
func WriteProblem(w http.ResponseWriter, r *http.Request, status int, field, detail string) {
	p := Problem{
		Type:      "about:blank",
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    detail,
		Instance:  r.URL.Path,
		Field:     field,
		RequestID: RequestID(r.Context()),
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// WriteJSON writes v as a JSON response with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// segmentio's encoder writes what encoding/json's would (HTML escaped,
	// map keys sorted, a final newline) with a pooled buffer, in about 60%
	// of the time for a service account.
	_ = fastjson.NewEncoder(w).Encode(v)
}
