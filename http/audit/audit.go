// Package audit serves the audit trail, read straight from the event log:
// GET /v1/audit/events with filters and cursor pagination.
package audit

import (
	"errors"
	"net/http"
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
		f, err := filterOf(req, p.Tenant, time.Now())
		var fe *khttp.FieldError
		if errors.As(err, &fe) {
			khttp.WriteProblem(w, req, http.StatusBadRequest, fe.Field, fe.Message)
			return
		}
		if f.Tenant != p.Tenant {
			khttp.WriteProblem(w, req, http.StatusForbidden, "tenant", "the audit trail over HTTP is that of the tenant the caller acts in ("+p.Tenant+"); act in another tenant with the Keyhold-Tenant header")
			return
		}
		items, next, err := a.Events(req.Context(), p, f)
		var qe *query.FieldError
		switch {
		case errors.As(err, &qe):
			khttp.WriteProblem(w, req, http.StatusBadRequest, qe.Field, qe.Message)
			return
		case errors.Is(err, query.ErrInvalid):
			khttp.WriteProblem(w, req, http.StatusBadRequest, "", err.Error())
			return
		case errors.Is(err, query.ErrBusy):
			w.Header().Set("Retry-After", "1")
			khttp.WriteProblem(w, req, http.StatusServiceUnavailable, "", "too many audit reads are running; retry in a moment")
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

// filterOf reads the query string, with the CLI's filters; tenant
// defaults to the caller's. Over HTTP nothing crosses tenants,
// superadmins included: the handler refuses any other tenant.
func filterOf(r *http.Request, tenant string, now time.Time) (query.AuditFilter, error) {
	f := query.AuditFilter{Tenant: tenant}
	qs, err := khttp.Query(r, "tenant", "aggregate", "actor", "type", "since", "until", "cursor", "limit")
	if err != nil {
		return f, err
	}
	if t := qs.Get("tenant"); t != "" {
		f.Tenant = t
	}
	f.Aggregate, f.Actor, f.Type, f.Cursor = qs.Get("aggregate"), qs.Get("actor"), qs.Get("type"), qs.Get("cursor")
	if f.Since, err = query.ParseAuditTime(qs.Get("since"), now); err != nil {
		return f, khttp.BadField("since", "must be an RFC 3339 date-time such as 2026-01-31T00:00:00Z or a duration back from now such as 24h")
	}
	if f.Until, err = query.ParseAuditTime(qs.Get("until"), now); err != nil {
		return f, khttp.BadField("until", "must be an RFC 3339 date-time such as 2026-01-31T00:00:00Z or a duration back from now such as 24h")
	}
	if s := qs.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > query.MaxAuditLimit {
			return f, khttp.BadField("limit", "must be a whole number from 1 to "+strconv.Itoa(query.MaxAuditLimit))
		}
		f.Limit = n
	}
	return f, nil
}
