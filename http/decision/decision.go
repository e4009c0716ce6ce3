// Package decision serves the decision API: resource servers and tools
// ask whether a principal may do an action, and get the evaluator's
// answer with its reason. POST /v1/authz/check answers one question,
// /v1/authz/check/bulk up to query.MaxChecks, in order. Callers need a
// valid credential and may ask only about their own tenant.
package decision

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/query"
)

// Paths of the decision API.
const (
	CheckPath = "/v1/authz/check"
	BulkPath  = "/v1/authz/check/bulk"
)

// Register adds the decision routes to r.
func Register(r *mux.Router, kit *khttp.Kit, d *query.Decisions) {
	h := handlers{kit: kit, d: d}
	for path, fn := range map[string]http.HandlerFunc{CheckPath: h.check, BulkPath: h.bulk} {
		s := r.Path(path).Subrouter()
		s.Use(kit.Authenticated(khttp.WriteProblem))
		s.Handle("", khttp.Methods{http.MethodPost: fn})
	}
}

type handlers struct {
	kit *khttp.Kit
	d   *query.Decisions
}

// subjectJSON names whom the question is about: a principal id, a token
// (access or personal API token), or neither for the caller itself.
type subjectJSON struct {
	PrincipalID string `json:"principalId,omitempty"`
	Token       string `json:"token,omitempty"`
}

type checkJSON struct {
	Tenant   string `json:"tenant,omitempty"`
	Scope    string `json:"scope,omitempty"`
	Action   string `json:"action"`
	Resource string `json:"resource,omitempty"`
}

type decisionJSON struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

func (c checkJSON) query() query.Check {
	return query.Check{Tenant: c.Tenant, Node: c.Scope, Action: c.Action, Resource: c.Resource}
}

func (h handlers) check(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	var body struct {
		subjectJSON
		checkJSON
	}
	if !decode(w, r, &body) {
		return
	}
	// The single form has no checks list: fields are named as sent.
	out, ok := h.decide(w, r, body.subjectJSON, []query.Check{body.query()}, "checks[0].")
	if ok {
		khttp.WriteJSON(w, http.StatusOK, out[0])
	}
}

func (h handlers) bulk(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	var body struct {
		subjectJSON
		Checks []checkJSON `json:"checks"`
	}
	if !decode(w, r, &body) {
		return
	}
	checks := make([]query.Check, len(body.Checks))
	for i, c := range body.Checks {
		checks[i] = c.query()
	}
	out, ok := h.decide(w, r, body.subjectJSON, checks, "")
	if ok {
		khttp.WriteJSON(w, http.StatusOK, struct {
			Results []decisionJSON `json:"results"`
		}{out})
	}
}

// decide resolves the subject and answers; on error it has written the
// response and ok is false.
func (h handlers) decide(w http.ResponseWriter, r *http.Request, s subjectJSON, checks []query.Check, fieldPrefix string) (out []decisionJSON, ok bool) {
	caller, _ := khttp.PrincipalFrom(r.Context())
	subject := &caller
	switch {
	case s.PrincipalID != "" && s.Token != "":
		khttp.WriteProblem(w, r, http.StatusBadRequest, "token", "give principalId or token, not both")
		return nil, false
	case s.PrincipalID != "":
		subject = nil
		if p, ok := h.d.Principal(s.PrincipalID, caller.Tenant); ok {
			subject = &p
		}
	case s.Token != "":
		p, err := h.kit.Principal(r.Context(), s.Token, caller.Tenant)
		if errors.Is(err, khttp.ErrAuthUnavailable) {
			w.Header().Set("Retry-After", "1")
			khttp.WriteProblem(w, r, http.StatusServiceUnavailable, "", "the server is starting; retry in a moment")
			return nil, false
		}
		subject = nil
		if err == nil {
			subject = &p
		}
	}
	ds, err := h.d.Decide(caller, subject, checks)
	var fe *query.FieldError
	switch {
	case errors.As(err, &fe):
		khttp.WriteProblem(w, r, http.StatusBadRequest, strings.TrimPrefix(fe.Field, fieldPrefix), strings.ReplaceAll(fe.Message, fieldPrefix, ""))
		return nil, false
	case errors.Is(err, query.ErrForbidden):
		khttp.WriteProblem(w, r, http.StatusForbidden, "tenant", err.Error())
		return nil, false
	case err != nil:
		khttp.WriteProblem(w, r, http.StatusInternalServerError, "", "the decision failed")
		return nil, false
	}
	out = make([]decisionJSON, len(ds))
	for i, d := range ds {
		out[i] = decisionJSON{Allowed: d.Allowed, Reason: d.Reason}
	}
	return out, true
}

// noQuery refuses any query parameter: the question is in the body.
func noQuery(w http.ResponseWriter, r *http.Request) bool {
	if _, err := khttp.Query(r); err != nil {
		var fe *khttp.FieldError
		if errors.As(err, &fe) {
			khttp.WriteProblem(w, r, http.StatusBadRequest, fe.Field, fe.Message)
		} else {
			khttp.WriteProblem(w, r, http.StatusBadRequest, "", err.Error())
		}
		return false
	}
	return true
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	err := khttp.DecodeJSON(w, r, v)
	var fe *khttp.FieldError
	switch {
	case err == nil:
		return true
	case errors.As(err, &fe):
		khttp.WriteProblem(w, r, http.StatusBadRequest, fe.Field, fe.Message)
	case errors.Is(err, khttp.ErrBodyTooLarge):
		khttp.WriteProblem(w, r, http.StatusRequestEntityTooLarge, "", err.Error())
	default:
		khttp.WriteProblem(w, r, http.StatusBadRequest, "", err.Error())
	}
	return false
}
