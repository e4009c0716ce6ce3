// Package audit serves the audit trail, read straight from the event log:
// GET /v1/audit/events with filters and cursor pagination.
package audit

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/query"
)

// Path is the audit endpoint.
const Path = "/v1/audit/events"

// Register adds the audit route to r.
func Register(r *mux.Router, kit *khttp.Kit, a *query.Audit) {
	s := r.Path(Path).Subrouter()
	s.Use(kit.Authenticated(khttp.WriteProblem))
	s.Methods(http.MethodGet).HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p, _ := khttp.PrincipalFrom(req.Context())
		if p.Tenant == "" {
			khttp.WriteProblem(w, req, http.StatusForbidden, "", "the caller acts in no tenant")
			return
		}
		f, err := filterOf(req.URL.Query(), p.Tenant)
		if err != nil {
			khttp.WriteProblem(w, req, http.StatusBadRequest, "", err.Error())
			return
		}
		items, next, err := a.Events(req.Context(), p, f)
		switch {
		case errors.Is(err, query.ErrInvalid):
			khttp.WriteProblem(w, req, http.StatusBadRequest, "", err.Error())
			return
		case errors.Is(err, query.ErrForbidden):
			khttp.WriteProblem(w, req, http.StatusForbidden, "", "only tenant administrators and auditors can read the audit trail")
			return
		case err != nil:
			khttp.WriteProblem(w, req, http.StatusServiceUnavailable, "", "the event log is unavailable; retry later")
			return
		}
		body := struct {
			Items      []events.Envelope `json:"items"`
			NextCursor *string           `json:"nextCursor"`
		}{Items: items}
		if next != "" {
			body.NextCursor = &next
		}
		khttp.WriteJSON(w, http.StatusOK, body)
	})
}

var known = map[string]bool{"aggregate": true, "actor": true, "type": true, "since": true, "until": true, "cursor": true, "limit": true}

// filterOf reads the query string. The tenant is always the caller's own
// (a user with access to several picks one with the Keyhold-Tenant
// header): nothing crosses tenants over HTTP, superadmins included.
func filterOf(qs url.Values, tenant string) (query.AuditFilter, error) {
	f := query.AuditFilter{Tenant: tenant}
	for k, v := range qs {
		if !known[k] {
			return f, errors.New(k + " is not a known query parameter (known: aggregate, actor, type, since, until, cursor, limit)")
		}
		if len(v) > 1 {
			return f, errors.New(k + " must be given once")
		}
	}
	f.Aggregate, f.Actor, f.Type, f.Cursor = qs.Get("aggregate"), qs.Get("actor"), qs.Get("type"), qs.Get("cursor")
	for _, tf := range []struct {
		name string
		dst  **time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := qs.Get(tf.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return f, errors.New(tf.name + " must be an RFC 3339 date-time such as 2026-01-31T00:00:00Z")
			}
			*tf.dst = &t
		}
	}
	if s := qs.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > query.MaxAuditLimit {
			return f, errors.New("limit must be a whole number from 1 to " + strconv.Itoa(query.MaxAuditLimit))
		}
		f.Limit = n
	}
	return f, nil
}
