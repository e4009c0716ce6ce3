// Package kestra serves the IAM API of Kestra EE 0.24 (roles, groups and
// their members, bindings, service accounts and their API tokens, tenant
// access, invitations) under /api/v1 and /v1/api, with the tenant named in
// the path (invitation/... and me/invitations name none), in the shapes of
// Kestra's OpenAPI document and its JSON error body. Handlers decode, call
// a command or a query, and encode (writes through write, which waits for
// the read side before answering); authorization is the core's (see
// permissions.go for how Kestra permissions become the core's rules).
package kestra

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/mail"
	"github.com/keyhold/keyhold/query"
)

// Prefixes are the path prefixes the dialect is served under: /api/v1 is
// what Kestra's clients call, /v1/api how the 0.24 release notes write it.
var Prefixes = []string{"/api/v1", "/v1/api"}

type handlers struct {
	cmds *commands.Commands
	q    *query.Queries
	kit  *khttp.Kit
	log  *slog.Logger
	mail mail.Settings
}

// route is one path of the dialect, relative to a prefix and a tenant base.
type route struct {
	path    string
	methods khttp.Methods
	// alias: also served under /tenants/{tenant}, as the release notes
	// write role and group paths.
	alias bool
}

// routes are the dialect's paths, with their handlers.
func (h handlers) routes() []route {
	return []route{
		{"/roles", khttp.Methods{http.MethodPost: h.createRole}, true},
		{"/roles/search", khttp.Methods{http.MethodGet: h.searchRoles}, true},
		{"/roles/autocomplete", khttp.Methods{http.MethodPost: h.autocompleteRoles}, true},
		{"/roles/ids", khttp.Methods{http.MethodPost: h.rolesByIDs}, true},
		{"/roles/{id}", khttp.Methods{http.MethodGet: h.getRole, http.MethodPut: h.updateRole, http.MethodDelete: h.deleteRole}, true},
		{"/groups", khttp.Methods{http.MethodPost: h.createGroup}, true},
		{"/groups/search", khttp.Methods{http.MethodGet: h.searchGroups}, true},
		{"/groups/autocomplete", khttp.Methods{http.MethodPost: h.autocompleteGroups}, true},
		{"/groups/ids", khttp.Methods{http.MethodPost: h.groupsByIDs}, true},
		{"/groups/{id}", khttp.Methods{http.MethodGet: h.getGroup, http.MethodPut: h.updateGroup, http.MethodDelete: h.deleteGroup}, true},
		{"/groups/{id}/members", khttp.Methods{http.MethodGet: h.groupMembers}, true},
		{"/groups/{id}/members/membership/{userId}", khttp.Methods{http.MethodPut: h.setMembership}, true},
		{"/groups/{id}/members/{userId}", khttp.Methods{http.MethodPut: h.addMember, http.MethodDelete: h.removeMember}, true},
		{"/users/{id}/groups", khttp.Methods{http.MethodPut: h.setUserGroups}, false},
		{"/bindings", khttp.Methods{http.MethodPost: h.createBinding}, false},
		{"/bindings/bulk", khttp.Methods{http.MethodPost: h.createBindings}, false},
		{"/bindings/search", khttp.Methods{http.MethodGet: h.searchBindings}, false},
		{"/bindings/{id}", khttp.Methods{http.MethodGet: h.getBinding, http.MethodDelete: h.deleteBinding}, false},
		{"/service-accounts", khttp.Methods{http.MethodGet: h.listServiceAccounts, http.MethodPost: h.createServiceAccount}, false},
		{"/service-accounts/{id}", khttp.Methods{http.MethodGet: h.getServiceAccount, http.MethodPut: h.updateServiceAccount, http.MethodDelete: h.deleteServiceAccount}, false},
		{"/invitations", khttp.Methods{http.MethodPost: h.createInvitation}, false},
		{"/invitations/search", khttp.Methods{http.MethodGet: h.searchInvitations}, false},
		{"/invitations/email/{email}", khttp.Methods{http.MethodGet: h.invitationsByEmail}, false},
		{"/invitations/{id}", khttp.Methods{http.MethodGet: h.getInvitation, http.MethodDelete: h.deleteInvitation}, false},
		{"/service-accounts/{id}/api-tokens", khttp.Methods{http.MethodGet: h.listServiceAccountTokens, http.MethodPost: h.createServiceAccountToken}, false},
		{"/service-accounts/{id}/api-tokens/{tokenId}", khttp.Methods{http.MethodDelete: h.deleteServiceAccountToken}, false},
		{"/tenant-access", khttp.Methods{http.MethodGet: h.searchTenantAccess, http.MethodPost: h.createTenantAccess}, false},
		{"/tenant-access/autocomplete", khttp.Methods{http.MethodPost: h.autocompleteTenantAccess}, false},
		{"/tenant-access/{userId}", khttp.Methods{http.MethodGet: h.getTenantAccess, http.MethodPut: h.putTenantAccess, http.MethodDelete: h.deleteTenantAccess}, false},
	}
}

// Route is one operation the dialect serves: a method and a full path
// template, such as GET /api/v1/{tenant}/roles/{id} or GET /api/v1/me.
type Route struct {
	Method string
	Path   string
}

// Routes lists every operation Register serves, under every prefix and
// alias: the instance-level ones, then the tenant ones, in route-table
// order (methods sorted within a path). Moved paths answer 404 and are
// not listed.
func Routes() []Route {
	var out []Route
	h := handlers{}
	for _, prefix := range Prefixes {
		instance := append(append(h.openInvitationRoutes(), h.signedInInvitationRoutes()...), h.instanceRoutes()...)
		for _, rt := range instance {
			for _, m := range slices.Sorted(maps.Keys(rt.methods)) {
				out = append(out, Route{Method: m, Path: prefix + rt.path})
			}
		}
		for _, rt := range h.routes() {
			bases := []string{"/{tenant}"}
			if rt.alias {
				bases = append(bases, "/tenants/{tenant}")
			}
			for _, base := range bases {
				for _, m := range slices.Sorted(maps.Keys(rt.methods)) {
					out = append(out, Route{Method: m, Path: prefix + base + rt.path})
				}
			}
		}
	}
	return out
}

// Register adds the dialect's routes to r under every prefix: the
// instance-level ones, the tenant ones, the paths Kestra 0.24 moved (404
// saying where they went), and a fallback answering any other path under
// them with 404 in Kestra's shape.
func Register(r *mux.Router, kit *khttp.Kit, cmds *commands.Commands, q *query.Queries, log *slog.Logger, opts ...Option) {
	h := handlers{cmds: cmds, q: q, kit: kit, log: log}
	for _, o := range opts {
		o(&h)
	}
	for _, prefix := range Prefixes {
		registerMoved(r, prefix, movedFirst)
		h.registerInvitations(r, prefix)
		s := r.PathPrefix(prefix).Subrouter()
		s.Use(khttp.ErrorsAs(writeError), kit.AuthenticatedIn(writeError, pathTenant), kit.Idempotent(writeError))
		// Instance-level routes first (see instanceRoutes).
		for _, rt := range h.instanceRoutes() {
			s.Handle(rt.path, rt.methods.With(writeError))
		}
		for _, rt := range h.routes() {
			m := rt.methods.With(writeError)
			s.Handle("/{tenant}"+rt.path, m)
			if rt.alias {
				s.Handle("/tenants/{tenant}"+rt.path, m)
			}
		}
		registerMoved(r, prefix, movedLast)
		r.PathPrefix(prefix + "/").Handler(khttp.Fallback{OnErr: writeError})
	}
}

func pathTenant(r *http.Request) string { return mux.Vars(r)["tenant"] }

// Wire shapes of errors.

type link struct {
	Href      string `json:"href"`
	Templated bool   `json:"templated"`
}

type links struct {
	Self link `json:"self"`
}

type fieldErrorJSON struct {
	Message string `json:"message"`
	Path    string `json:"path,omitempty"`
}

type embeddedErrors struct {
	Errors []fieldErrorJSON `json:"errors"`
}

type errorJSON struct {
	Message  string          `json:"message"`
	Links    links           `json:"_links"`
	Embedded *embeddedErrors `json:"_embedded,omitempty"`
}

// writeError writes Kestra's JSON error body: a message, a link to the
// request's path (escaped as a URI path, as the client sent it) and, for
// invalid input (400, 422), the field at fault. It is the dialect's
// khttp.ErrorWriter.
func writeError(w http.ResponseWriter, r *http.Request, status int, field, detail string) {
	body := errorJSON{Message: detail, Links: links{Self: link{Href: r.URL.EscapedPath()}}}
	if status == http.StatusUnprocessableEntity || status == http.StatusBadRequest {
		body.Embedded = &embeddedErrors{Errors: []fieldErrorJSON{{Message: detail, Path: field}}}
	}
	khttp.WriteJSON(w, status, body)
}

// bodyError is input refused in a request body: 422.
type bodyError struct {
	field, message string
}

func (e *bodyError) Error() string { return e.message }

func badBody(field, message string) error { return &bodyError{field: field, message: message} }

// conflictError is a request the resource's state refuses: 409.
type conflictError struct {
	field, message string
}

func (e *conflictError) Error() string { return e.message }

// fail maps an error to Kestra's error body: the dialect's one place for it.
func (h handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ce *commands.Error
	var be *bodyError
	var pe *permissionError
	var ke *conflictError
	var fe *khttp.FieldError
	var qe *query.FieldError
	status, field, detail := http.StatusInternalServerError, "", err.Error()
	switch {
	case errors.As(err, &be):
		status, field, detail = http.StatusUnprocessableEntity, be.field, be.message
	case errors.As(err, &pe):
		status, field, detail = http.StatusUnprocessableEntity, pe.field, pe.message
	case errors.As(err, &ke):
		status, field, detail = http.StatusConflict, ke.field, ke.message
	case errors.Is(err, khttp.ErrBodyTooLarge):
		status = http.StatusRequestEntityTooLarge
		detail = strings.TrimPrefix(detail, khttp.ErrBadRequest.Error()+": ")
	case errors.As(err, &fe):
		status, field, detail = http.StatusBadRequest, fe.Field, fe.Message
	case errors.As(err, &qe):
		status, field, detail = http.StatusBadRequest, qe.Field, qe.Message
	case errors.As(err, &ce):
		field, detail = wireField(ce.Field), ce.Message
		status = commandStatus(ce)
		if errors.Is(err, commands.ErrNotMember) {
			// Kestra refuses changing a non-member as a conflict.
			status = http.StatusConflict
		}
		if status == http.StatusUnprocessableEntity && field != "" && !strings.HasPrefix(detail, field) {
			// The core's messages leave the field to the error's field.
			detail = field + ": " + detail
		}
	case errors.Is(err, query.ErrNotFound):
		status = http.StatusNotFound
		detail = strings.TrimPrefix(detail, query.ErrNotFound.Error()+": ") + " not found"
	case errors.Is(err, query.ErrForbidden):
		status = http.StatusForbidden
		detail = strings.TrimPrefix(detail, query.ErrForbidden.Error()+": ")
	case errors.Is(err, commands.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, query.ErrBusy):
		status, detail = http.StatusServiceUnavailable, "the server is busy or the event log unavailable; retry later"
	}
	if status == http.StatusInternalServerError {
		h.log.Error("request failed", "request_id", khttp.RequestID(r.Context()), "err", err)
		detail = "internal error; quote the request id (X-Request-Id) when reporting it"
	}
	writeError(w, r, status, field, detail)
}

// commandStatus maps a command error's code to Kestra's status codes.
func commandStatus(ce *commands.Error) int {
	switch ce.Code() {
	case "invalid_input":
		return http.StatusUnprocessableEntity
	case "not_found":
		return http.StatusNotFound
	case "forbidden":
		return http.StatusForbidden
	case "already_exists", "limit_exceeded", "concurrent_change", "duplicate_request":
		return http.StatusConflict
	case "unavailable":
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// wireFields names the commands' domain fields as Kestra's bodies do; a
// field not listed keeps its domain name.
var wireFields = map[string]string{
	"display_name":                "name",
	"role":                        "roleId",
	"subject_id":                  "externalId",
	"subject_kind":                "type",
	"scope.target":                "namespaceId",
	"scope.level":                 "namespaceId",
	"rules":                       "permissions",
	"member_id":                   "userId",
	"role_name":                   "name",
	"group_name":                  "name",
	"old_password":                "oldPassword",
	"superadmin":                  "superAdmin",
	"api_token_default_lifetime":  "apiTokenDefaultLifetime",
	"api_token_max_lifetime":      "apiTokenMaxLifetime",
	"credential_default_lifetime": "credentialDefaultLifetime",
	"credential_max_lifetime":     "credentialMaxLifetime",
	"scope_levels":                "serviceAccountScopeLevels",
}

// wireField maps a domain field name, possibly under an item of a bulk
// request ("bindings[2].role" is "[2].roleId"), to this dialect's name.
func wireField(field string) string {
	if rest, ok := strings.CutPrefix(field, "bindings["); ok {
		if i := strings.Index(rest, "]"); i >= 0 {
			idx, inner := rest[:i], strings.TrimPrefix(rest[i+1:], ".")
			if inner == "" {
				return "[" + idx + "]"
			}
			return "[" + idx + "]." + wireField(inner)
		}
	}
	if f, ok := wireFields[field]; ok {
		return f
	}
	return field
}

// Request helpers.

func caller(r *http.Request) auth.Principal {
	p, _ := khttp.PrincipalFrom(r.Context())
	return p
}

func meta(r *http.Request) commands.Meta {
	return commands.Meta{Caller: caller(r), RequestID: khttp.RequestID(r.Context()),
		IdempotencyKey: r.Header.Get(khttp.IdempotencyKeyHeader), IDSeed: khttp.IDSeed(r.Context())}
}

// stepMeta is the Meta of a further command a request runs after its
// first (the members of a new group, say): its Idempotency-Key is the
// request's with the step's name, so that a retried request repeats each
// step at most once and no step is taken for a repetition of another.
func stepMeta(r *http.Request, step string) commands.Meta {
	m := meta(r)
	if m.IdempotencyKey != "" {
		m.IdempotencyKey += "\x00" + step
	}
	m.IDSeed = ""
	return m
}

// decode reads a write's JSON object body after refusing query
// parameters (writes take none, unless listed in allowed). Body errors
// are 422, query errors 400.
func decode(w http.ResponseWriter, r *http.Request, v any, allowed ...string) (url.Values, error) {
	qs, err := khttp.Query(r, allowed...)
	if err != nil {
		return nil, err
	}
	return qs, bodyErr(khttp.DecodeJSON(w, r, v))
}

// decodeArray reads a JSON array body into the items of v, a pointer to a
// struct whose only field is tagged "items".
func decodeArray(w http.ResponseWriter, r *http.Request, v any) error {
	if _, err := khttp.Query(r); err != nil {
		return err
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, khttp.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return fmt.Errorf("%w: %w", khttp.ErrBadRequest, khttp.ErrBodyTooLarge)
	}
	if err != nil {
		return badBody("", "the body could not be read")
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return badBody("", "body must be a JSON array")
	}
	// The shared decoder takes objects: wrap the array in one.
	wrapped := append(append([]byte(`{"items":`), trimmed...), '}')
	r.Body = io.NopCloser(bytes.NewReader(wrapped))
	err = khttp.DecodeJSON(w, r, v)
	var fe *khttp.FieldError
	if errors.As(err, &fe) {
		return badBody(strings.TrimPrefix(fe.Field, "items."), strings.ReplaceAll(fe.Message, `"items.`, `"`))
	}
	return bodyErr(err)
}

// bodyErr turns a body decoding error into a 422 (a too-large body stays
// 413).
func bodyErr(err error) error {
	if err == nil || errors.Is(err, khttp.ErrBodyTooLarge) {
		return err
	}
	var fe *khttp.FieldError
	if errors.As(err, &fe) {
		return badBody(fe.Field, fe.Message)
	}
	return badBody("", strings.TrimPrefix(err.Error(), khttp.ErrBadRequest.Error()+": "))
}

// search reads Kestra's paging parameters (page from 1, size, sort as
// field:asc or field:desc, repeatable, q) and the extra filters named.
func search(r *http.Request, extra ...string) (query.Search, url.Values, error) {
	qs, err := khttp.QueryRepeating(r, []string{"sort"}, append([]string{"page", "size", "sort", "q"}, extra...)...)
	if err != nil {
		return query.Search{}, nil, err
	}
	s := query.Search{Text: qs.Get("q")}
	for _, p := range []struct {
		name string
		to   *int
		max  int
	}{{"page", &s.Page, 1_000_000}, {"size", &s.Size, query.MaxPageSize}} {
		v := qs.Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > p.max {
			return s, nil, khttp.BadField(p.name, "must be a whole number from 1 to "+strconv.Itoa(p.max))
		}
		*p.to = n
	}
	for _, v := range qs["sort"] {
		field, dir, _ := strings.Cut(v, ":")
		by := query.SortBy{Field: field}
		switch strings.ToLower(dir) {
		case "", "asc":
		case "desc":
			by.Desc = true
		default:
			return s, nil, khttp.BadField("sort", "must be field:asc or field:desc, not "+strconv.Quote(v))
		}
		s.Sort = append(s.Sort, by)
	}
	return s, qs, nil
}

// inBody reports a query's refusal of input that came in the body (too
// many ids, too long a q) as the body's: 422 rather than 400.
func inBody(err error) error {
	var qe *query.FieldError
	if errors.As(err, &qe) {
		return badBody(qe.Field, qe.Message)
	}
	return err
}

// noQuery refuses query parameters on endpoints that take none.
func noQuery(r *http.Request) error {
	_, err := khttp.Query(r)
	return err
}

// paged is Kestra's page of results.
type paged[T any] struct {
	Results []T `json:"results"`
	Total   int `json:"total"`
}

// idsRequest is Kestra's ApiIds body.
type idsRequest struct {
	IDs []string `json:"ids"`
}

// autocompleteRequest is Kestra's ApiAutocomplete body.
type autocompleteRequest struct {
	Q   *string  `json:"q"`
	IDs []string `json:"ids"`
}

// refused are body fields Kestra 0.24 no longer accepts on role and group
// writes; a body holding one is refused naming it.
type refused struct {
	ID       *jsonValue `json:"id"`
	TenantID *jsonValue `json:"tenantId"`
	Deleted  *jsonValue `json:"deleted"`
}

// jsonValue accepts any JSON value, so that a refused field is reported
// as refused whatever its type.
type jsonValue struct{}

// UnmarshalJSON implements json.Unmarshaler.
func (*jsonValue) UnmarshalJSON([]byte) error { return nil }

func (f refused) check() error {
	for name, v := range map[string]*jsonValue{"id": f.ID, "tenantId": f.TenantID, "deleted": f.Deleted} {
		if v != nil {
			return badBody(name, name+" is not accepted in the body since Kestra 0.24: the id is the path's, the tenant the path's {tenant}, and deletion is DELETE")
		}
	}
	return nil
}
