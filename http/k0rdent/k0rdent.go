// Package k0rdent serves the k0rdent IAM service-account API:
// /v1/regions/global/iam/service-accounts and their credentials, following
// k0rdent's published OpenAPI draft ("K0rdent AI API 0.2.0-draft"): its
// camelCase resources, its pageToken/pageSize lists and its
// {"error": {"code", "message", "details"}} envelope for every error under
// /v1/regions/global/iam. The tenant is always the caller's own. Handlers
// decode, call a command or query, and encode.
package k0rdent

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/query"
)

// Base is the path prefix of the service-account API.
const Base = "/v1/regions/global/iam/service-accounts"

// SettingsPath serves the tenant's credential and scope policy (a Keyhold
// extension: k0rdent calls it the org-level policy).
const SettingsPath = "/v1/regions/global/iam/settings"

type handlers struct {
	cmds *commands.Commands
	q    *query.Queries
	kit  *khttp.Kit
	log  *slog.Logger
}

// Register adds the dialect's routes to r.
func Register(r *mux.Router, kit *khttp.Kit, cmds *commands.Commands, q *query.Queries, log *slog.Logger) {
	h := handlers{cmds: cmds, q: q, kit: kit, log: log}
	s := r.PathPrefix("/v1/regions/global/iam").Subrouter()
	s.Use(khttp.ErrorsAs(WriteError), kit.Authenticated(WriteError), kit.Idempotent(WriteError))
	sa := "/service-accounts"
	s.Handle(sa, khttp.Methods{http.MethodGet: h.list, http.MethodPost: h.create}.With(WriteError))
	s.Handle(sa+"/{id}", khttp.Methods{http.MethodGet: h.get, http.MethodPatch: h.update, http.MethodDelete: h.delete}.With(WriteError))
	s.Handle(sa+"/{serviceAccountId}/credentials", khttp.Methods{http.MethodGet: h.listCredentials, http.MethodPost: h.createCredential}.With(WriteError))
	s.Handle(sa+"/{serviceAccountId}/credentials/{id}", khttp.Methods{http.MethodGet: h.getCredential, http.MethodDelete: h.deleteCredential}.With(WriteError))
	s.Handle("/settings", khttp.Methods{http.MethodGet: h.getSettings, http.MethodPatch: h.updateSettings}.With(WriteError))
	// Anything else under the prefix is answered in this dialect's shape,
	// after authentication like every route here. A matched route rather
	// than the subrouter's NotFoundHandler: gorilla/mux runs no middleware
	// (request ids, metrics) for an unmatched request.
	s.PathPrefix("/").HandlerFunc(notFound)
}

// Handlers.

func caller(r *http.Request) auth.Principal {
	p, _ := khttp.PrincipalFrom(r.Context())
	return p
}

func meta(r *http.Request) commands.Meta {
	return commands.Meta{Caller: caller(r), RequestID: khttp.RequestID(r.Context()),
		IdempotencyKey: r.Header.Get(khttp.IdempotencyKeyHeader), IDSeed: khttp.IDSeed(r.Context())}
}

func (h handlers) list(w http.ResponseWriter, r *http.Request) {
	qs, err := khttp.Query(r, "scope", "scopeId", "status", "pageToken", "pageSize")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, err := pageOf(qs)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var f query.ServiceAccountFilter
	switch scope := qs.Get("scope"); {
	case scope == "":
	case !slices.Contains(scopes, scope):
		h.fail(w, r, khttp.BadField("scope", "must be organization, folder or project"))
		return
	default:
		s := domainScope(scope, "")
		f.ScopeLevel, f.ScopeKind = s.Level, s.Kind
	}
	f.ScopeTarget, f.Status = qs.Get("scopeId"), qs.Get("status")
	items, next, err := h.q.ListServiceAccounts(r.Context(), caller(r), f, page)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := serviceAccountListJSON{ServiceAccounts: make([]serviceAccountJSON, len(items)), NextPageToken: next}
	for i, sa := range items {
		out.ServiceAccounts[i] = serviceAccountOf(sa)
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}

// createRequest is the draft's create body. Every field is a pointer so
// that a missing required field and a null are told from an empty value.
type createRequest struct {
	// ID is the draft's client-chosen id: the account's name in Keyhold's
	// terms (commands.CreateServiceAccount.Name), checked by the command.
	ID          *string   `json:"id"`
	DisplayName *string   `json:"displayName"`
	Description *string   `json:"description"`
	Scope       *string   `json:"scope"`
	ScopeID     *string   `json:"scopeId"`
	Roles       *[]string `json:"roles"`
}

// check refuses what the draft's schema refuses: a missing required field,
// a wrong enum value, a length beyond the draft's bounds. Rules the
// command applies (scope-down, policy, text classes) come after.
func (c createRequest) check() error {
	switch {
	case c.ID != nil && *c.ID == "":
		return khttp.BadField("id", "must not be empty: omit it to have the server choose one")
	case c.DisplayName == nil:
		return khttp.BadField("displayName", "is required")
	case c.Scope == nil:
		return khttp.BadField("scope", "is required: organization, folder or project")
	case !slices.Contains(scopes, *c.Scope):
		return khttp.BadField("scope", "must be organization, folder or project")
	case c.ScopeID == nil || *c.ScopeID == "":
		return khttp.BadField("scopeId", "is required: the organization id for scope organization, the folder's or project's path otherwise")
	}
	return checkText(c.DisplayName, c.Description, c.Roles)
}

// checkText checks the lengths the draft declares for the fields a create
// and a PATCH share.
func checkText(displayName, description *string, roles *[]string) error {
	if displayName != nil {
		if n := utf8.RuneCountInString(*displayName); n < 1 || n > maxDisplayName {
			return khttp.BadField("displayName", fmt.Sprintf("must be 1 to %d characters (got %d)", maxDisplayName, n))
		}
	}
	if description != nil {
		if n := utf8.RuneCountInString(*description); n > maxDescription {
			return khttp.BadField("description", fmt.Sprintf("must be at most %d characters (got %d)", maxDescription, n))
		}
	}
	if roles != nil && len(*roles) > commands.MaxRoles {
		return khttp.BadField("roles", fmt.Sprintf("must hold at most %d roles", commands.MaxRoles))
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (h handlers) create(w http.ResponseWriter, r *http.Request) {
	if err := h.cmds.CreateServiceAccount.Authorize(commands.CreateServiceAccount{Meta: meta(r)}); err != nil {
		h.fail(w, r, err)
		return
	}
	var req createRequest
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := req.check(); err != nil {
		h.fail(w, r, err)
		return
	}
	if tenant := caller(r).Tenant; *req.Scope == scopeOrganization && *req.ScopeID != tenant {
		h.fail(w, r, khttp.BadField("scopeId", fmt.Sprintf("must be the caller's organization %q for scope organization", tenant)))
		return
	}
	var roles []string
	if req.Roles != nil {
		roles = *req.Roles
	}
	res, err := h.cmds.CreateServiceAccount.Handle(r.Context(), commands.CreateServiceAccount{
		Meta: meta(r), Name: deref(req.ID), DisplayName: *req.DisplayName, Description: deref(req.Description),
		Scope: domainScope(*req.Scope, *req.ScopeID), Roles: roles,
	})
	var ce *commands.Error
	switch {
	case errors.As(err, &ce) && ce.Field == "scope.level":
		// The policy speaks Keyhold's levels; say it in the draft's.
		err = &commands.Error{Kind: ce.Kind, Field: ce.Field, Reason: ce.Reason,
			Message: fmt.Sprintf("scope %q is not allowed by the organization's policy (%s)", *req.Scope, ce.Message)}
	case errors.As(err, &ce) && errors.Is(err, commands.ErrAlreadyExists) && ce.Field == "service_account_name":
		// The reservation speaks of names; the draft of ids.
		err = &commands.Error{Kind: ce.Kind, Field: ce.Field, Reason: ce.Reason,
			Message: fmt.Sprintf("id %q is already taken in this organization", deref(req.ID))}
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, res.Sequence)
	if res.Replayed {
		khttp.MarkReplayed(w)
	}
	out := serviceAccountOf(res.ServiceAccount.View(h.q.Now()))
	w.Header().Set("Location", out.SelfLink)
	khttp.WriteJSON(w, http.StatusCreated, out)
}

func (h handlers) get(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathRef(w, r, "id")
	if !ok {
		return
	}
	if _, err := khttp.Query(r); err != nil {
		h.fail(w, r, err)
		return
	}
	sa, err := h.q.ServiceAccount(r.Context(), caller(r), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	khttp.WriteJSON(w, http.StatusOK, serviceAccountOf(sa))
}

type updateRequest struct {
	DisplayName *string   `json:"displayName"`
	Description *string   `json:"description"`
	Roles       *[]string `json:"roles"`
	// Status is read-only in the draft's ServiceAccount but the one way
	// its PATCH disables and re-enables an account.
	Status *string `json:"status"`
}

func (h handlers) update(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathRef(w, r, "id")
	if !ok {
		return
	}
	if err := h.cmds.UpdateServiceAccount.Authorize(commands.UpdateServiceAccount{Meta: meta(r), ID: id}); err != nil {
		h.fail(w, r, err)
		return
	}
	var req updateRequest
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if req == (updateRequest{}) {
		// The draft's minProperties: 1.
		h.fail(w, r, khttp.BadField("body", "must name at least one of displayName, description, roles, status: nothing to update"))
		return
	}
	if err := checkText(req.DisplayName, req.Description, req.Roles); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.Status != nil && *req.Status != commands.StatusActive && *req.Status != commands.StatusDisabled {
		h.fail(w, r, khttp.BadField("status", "must be active or disabled"))
		return
	}
	res, err := h.cmds.UpdateServiceAccount.Handle(r.Context(), commands.UpdateServiceAccount{
		Meta: meta(r), ID: id, DisplayName: req.DisplayName, Description: req.Description, Roles: req.Roles, Status: req.Status,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, res.Sequence)
	khttp.WriteJSON(w, http.StatusOK, serviceAccountOf(res.ServiceAccount.View(h.q.Now())))
}

func (h handlers) delete(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathRef(w, r, "id")
	if !ok {
		return
	}
	if _, err := khttp.Query(r); err != nil {
		h.fail(w, r, err)
		return
	}
	seq, err := h.cmds.DeleteServiceAccount.Handle(r.Context(), commands.DeleteServiceAccount{Meta: meta(r), ID: id})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, seq)
	w.WriteHeader(http.StatusNoContent)
}

func (h handlers) listCredentials(w http.ResponseWriter, r *http.Request) {
	saID, ok := h.pathRef(w, r, "serviceAccountId")
	if !ok {
		return
	}
	qs, err := khttp.Query(r, "status", "pageToken", "pageSize")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, err := pageOf(qs)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f := query.CredentialFilter{Status: qs.Get("status")}
	if f.Status != "" && f.Status != query.CredentialActive && f.Status != query.CredentialExpired {
		h.fail(w, r, khttp.BadField("status", "must be active or expired"))
		return
	}
	items, next, err := h.q.ListCredentials(r.Context(), caller(r), saID, f, page)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	now := h.q.Now()
	out := credentialListJSON{Credentials: make([]credentialJSON, len(items)), NextPageToken: next}
	for i, c := range items {
		out.Credentials[i] = credentialOf(c, now)
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}

type createCredentialRequest struct {
	ExpiresAt *string `json:"expiresAt"`
}

func (h handlers) createCredential(w http.ResponseWriter, r *http.Request) {
	saID, ok := h.pathRef(w, r, "serviceAccountId")
	if !ok {
		return
	}
	if err := h.cmds.CreateCredential.Authorize(commands.CreateCredential{Meta: meta(r), ServiceAccountID: saID}); err != nil {
		h.fail(w, r, err)
		return
	}
	var req createCredentialRequest
	// The body is optional: without one the defaults apply.
	if err := decode(w, r, &req); err != nil && !errors.Is(err, khttp.ErrEmptyBody) {
		h.fail(w, r, err)
		return
	}
	cmd := commands.CreateCredential{Meta: meta(r), ServiceAccountID: saID}
	if req.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339, *req.ExpiresAt)
		if err != nil {
			h.fail(w, r, khttp.BadField("expiresAt", "must be an RFC 3339 date-time such as 2027-01-31T00:00:00Z"))
			return
		}
		cmd.ExpiresAt = &t
	}
	res, err := h.cmds.CreateCredential.Handle(r.Context(), cmd)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, res.Sequence)
	out := newCredentialJSON{credentialJSON: credentialOf(res.ServiceAccount.CredentialView(res.Credential), h.q.Now())}
	w.Header().Set("Location", out.SelfLink)
	if res.Replayed {
		khttp.MarkReplayed(w)
	} else {
		out.ClientSecret = &res.Secret
	}
	khttp.SecretFields(r, "clientSecret")
	khttp.WriteJSON(w, http.StatusCreated, out)
}

func (h handlers) getCredential(w http.ResponseWriter, r *http.Request) {
	saID, id, ok := h.credentialPath(w, r)
	if !ok {
		return
	}
	if _, err := khttp.Query(r); err != nil {
		h.fail(w, r, err)
		return
	}
	c, err := h.q.Credential(r.Context(), caller(r), saID, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	khttp.WriteJSON(w, http.StatusOK, credentialOf(c, h.q.Now()))
}

func (h handlers) deleteCredential(w http.ResponseWriter, r *http.Request) {
	saID, id, ok := h.credentialPath(w, r)
	if !ok {
		return
	}
	if _, err := khttp.Query(r); err != nil {
		h.fail(w, r, err)
		return
	}
	seq, err := h.cmds.DeleteCredential.Handle(r.Context(), commands.DeleteCredential{Meta: meta(r), ServiceAccountID: saID, CredentialID: id})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, seq)
	w.WriteHeader(http.StatusNoContent)
}

// Input helpers.

// decode reads a write's body after refusing unknown query parameters:
// writes take none.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if _, err := khttp.Query(r); err != nil {
		return err
	}
	return khttp.DecodeJSON(w, r, v)
}

// pageOf reads the draft's pageSize (1 to 500, default 50) and pageToken
// (the keyset cursor of the previous page, opaque to clients).
func pageOf(qs url.Values) (query.Page, error) {
	p := query.Page{Cursor: qs.Get("pageToken")}
	if s, ok := qs["pageSize"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > query.MaxLimit {
			return p, khttp.BadField("pageSize", "must be a whole number from 1 to "+strconv.Itoa(query.MaxLimit))
		}
		p.Limit = n
	}
	return p, nil
}

// pathID reads and checks a credential's id path variable: a
// 26-character ULID.
func (h handlers) pathID(w http.ResponseWriter, r *http.Request, name string) (string, bool) {
	id := mux.Vars(r)[name]
	if !events.ValidID(id) {
		WriteError(w, r, http.StatusBadRequest, name, "must be a 26-character id as returned by this API")
		return "", false
	}
	return id, true
}

// pathRef reads and checks a service account's path variable: the id this
// API returned for it, which is its chosen id or, without one, its
// 26-character server id (both are accepted).
func (h handlers) pathRef(w http.ResponseWriter, r *http.Request, name string) (string, bool) {
	ref := mux.Vars(r)[name]
	if !events.ValidID(ref) && !commands.ValidServiceAccountName(ref) {
		WriteError(w, r, http.StatusBadRequest, name, "must be a service account id as returned by this API")
		return "", false
	}
	return ref, true
}

// credentialPath reads the service account reference and credential id of
// a credential's path.
func (h handlers) credentialPath(w http.ResponseWriter, r *http.Request) (saRef, id string, ok bool) {
	if saRef, ok = h.pathRef(w, r, "serviceAccountId"); !ok {
		return "", "", false
	}
	id, ok = h.pathID(w, r, "id")
	return saRef, id, ok
}
