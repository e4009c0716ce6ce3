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
	"strconv"
	"time"

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
	s.Use(kit.Authenticated(WriteError), kit.Idempotent(WriteError))
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

// Wire shapes.

type scopeJSON struct {
	Level  string `json:"level"`
	Target string `json:"target"`
}

type serviceAccountJSON struct {
	ID          string    `json:"id"`
	ClientID    string    `json:"clientId"`
	DisplayName string    `json:"displayName"`
	Description string    `json:"description"`
	Scope       scopeJSON `json:"scope"`
	Roles       []string  `json:"roles"`
	Status      string    `json:"status"`
	CreatedAt   string    `json:"createdAt"`
	UpdatedAt   string    `json:"updatedAt"`
}

type credentialJSON struct {
	ID               string `json:"id"`
	ServiceAccountID string `json:"serviceAccountId"`
	Status           string `json:"status"`
	CreatedAt        string `json:"createdAt"`
	ExpiresAt        string `json:"expiresAt"`
}

type newCredentialJSON struct {
	credentialJSON
	ClientID string `json:"clientId"`
	// ClientSecret is null when a retry of the request found the
	// credential created by its first attempt: the secret is shown once.
	ClientSecret *string `json:"clientSecret"`
}

type listJSON[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"nextCursor"`
}

// timestamp formats times with millisecond precision, the precision both
// the log and the read tables keep.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

func fromCommand(sa *commands.ServiceAccount) serviceAccountJSON {
	roles := sa.Roles()
	if roles == nil {
		roles = []string{}
	}
	return serviceAccountJSON{ID: sa.ID(), ClientID: sa.ClientID(), DisplayName: sa.DisplayName(), Description: sa.Description(),
		Scope: scopeJSON{Level: sa.Scope().Level, Target: sa.Scope().Target}, Roles: roles, Status: sa.Status(),
		CreatedAt: timestamp(sa.CreatedAt()), UpdatedAt: timestamp(sa.UpdatedAt())}
}

func fromQuery(sa query.ServiceAccount) serviceAccountJSON {
	roles := []string(sa.Roles)
	if roles == nil {
		roles = []string{}
	}
	return serviceAccountJSON{ID: sa.ID, ClientID: sa.ClientID, DisplayName: sa.DisplayName, Description: sa.Description,
		Scope: scopeJSON{Level: sa.ScopeLevel, Target: sa.ScopeTarget}, Roles: roles, Status: sa.Status,
		CreatedAt: timestamp(sa.CreatedAt), UpdatedAt: timestamp(sa.UpdatedAt)}
}

func credentialOf(id, saID string, created, expires, now time.Time) credentialJSON {
	status := "active"
	if !expires.After(now) {
		status = "expired"
	}
	return credentialJSON{ID: id, ServiceAccountID: saID, Status: status, CreatedAt: timestamp(created), ExpiresAt: timestamp(expires)}
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
	qs, err := khttp.Query(r, "limit", "cursor", "scopeLevel", "scopeTarget", "status")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, err := pageOf(qs)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f := query.ServiceAccountFilter{ScopeLevel: qs.Get("scopeLevel"), ScopeTarget: qs.Get("scopeTarget"), Status: qs.Get("status")}
	if f.ScopeLevel != "" && f.ScopeLevel != events.ScopeTenant && f.ScopeLevel != events.ScopeNamespace {
		h.fail(w, r, khttp.BadField("scopeLevel", "must be tenant or namespace"))
		return
	}
	if f.ScopeTarget != "" && !commands.ValidScopeTarget(f.ScopeTarget) {
		h.fail(w, r, khttp.BadField("scopeTarget", "must be a tenant id or a namespace name (lowercase letters, digits, '-', '_' and '.')"))
		return
	}
	if f.Status != "" && f.Status != commands.StatusActive && f.Status != commands.StatusDisabled {
		h.fail(w, r, khttp.BadField("status", "must be active or disabled"))
		return
	}
	items, next, err := h.q.ListServiceAccounts(r.Context(), caller(r), f, page)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := listJSON[serviceAccountJSON]{Items: make([]serviceAccountJSON, len(items))}
	for i, sa := range items {
		out.Items[i] = fromQuery(sa)
	}
	if next != "" {
		out.NextCursor = &next
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}

type createRequest struct {
	DisplayName string     `json:"displayName"`
	Description string     `json:"description"`
	Scope       *scopeJSON `json:"scope"`
	Roles       []string   `json:"roles"`
	Status      string     `json:"status"`
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
	if req.Scope == nil {
		h.fail(w, r, khttp.BadField("scope", "is required: {\"level\": \"tenant\"} or {\"level\": \"namespace\", \"target\": \"<namespace>\"}"))
		return
	}
	// Malformed rather than unprocessable: 400 here, before the command's
	// rules (422) see them.
	if l := req.Scope.Level; l != events.ScopeTenant && l != events.ScopeNamespace {
		h.fail(w, r, khttp.BadField("scope.level", "must be tenant or namespace"))
		return
	}
	if len(req.Roles) > commands.MaxRoles {
		h.fail(w, r, khttp.BadField("roles", fmt.Sprintf("must hold at most %d roles", commands.MaxRoles)))
		return
	}
	res, err := h.cmds.CreateServiceAccount.Handle(r.Context(), commands.CreateServiceAccount{
		Meta: meta(r), DisplayName: req.DisplayName, Description: req.Description,
		Scope: events.Scope{Level: req.Scope.Level, Target: req.Scope.Target}, Roles: req.Roles, Status: req.Status,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, res.Sequence)
	if res.Replayed {
		khttp.MarkReplayed(w)
	}
	w.Header().Set("Location", Base+"/"+res.ServiceAccount.ID())
	khttp.WriteJSON(w, http.StatusCreated, fromCommand(res.ServiceAccount))
}

func (h handlers) get(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathID(w, r, "id")
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
	khttp.WriteJSON(w, http.StatusOK, fromQuery(sa))
}

type updateRequest struct {
	DisplayName *string   `json:"displayName"`
	Description *string   `json:"description"`
	Roles       *[]string `json:"roles"`
	Status      *string   `json:"status"`
}

func (h handlers) update(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathID(w, r, "id")
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
	res, err := h.cmds.UpdateServiceAccount.Handle(r.Context(), commands.UpdateServiceAccount{
		Meta: meta(r), ID: id, DisplayName: req.DisplayName, Description: req.Description, Roles: req.Roles, Status: req.Status,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, res.Sequence)
	khttp.WriteJSON(w, http.StatusOK, fromCommand(res.ServiceAccount))
}

func (h handlers) delete(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathID(w, r, "id")
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
	saID, ok := h.pathID(w, r, "serviceAccountId")
	if !ok {
		return
	}
	qs, err := khttp.Query(r, "limit", "cursor")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, err := pageOf(qs)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items, next, err := h.q.ListCredentials(r.Context(), caller(r), saID, page)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	now := h.q.Now()
	out := listJSON[credentialJSON]{Items: make([]credentialJSON, len(items))}
	for i, c := range items {
		out.Items[i] = credentialOf(c.ID, c.ServiceAccountID, c.CreatedAt, c.ExpiresAt, now)
	}
	if next != "" {
		out.NextCursor = &next
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}

type createCredentialRequest struct {
	ExpiresAt *string `json:"expiresAt"`
}

func (h handlers) createCredential(w http.ResponseWriter, r *http.Request) {
	saID, ok := h.pathID(w, r, "serviceAccountId")
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
	c := res.Credential
	w.Header().Set("Location", Base+"/"+saID+"/credentials/"+c.ID())
	out := newCredentialJSON{
		credentialJSON: credentialOf(c.ID(), saID, c.CreatedAt(), c.ExpiresAt(), time.Now()),
		ClientID:       res.ServiceAccount.ClientID(),
	}
	if res.Replayed {
		khttp.MarkReplayed(w)
	} else {
		out.ClientSecret = &res.Secret
	}
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
	khttp.WriteJSON(w, http.StatusOK, credentialOf(c.ID, c.ServiceAccountID, c.CreatedAt, c.ExpiresAt, h.q.Now()))
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

type settingsJSON struct {
	CredentialDefaultLifetimeDays int      `json:"credentialDefaultLifetimeDays"`
	CredentialMaxLifetimeDays     int      `json:"credentialMaxLifetimeDays"`
	ScopeLevels                   []string `json:"scopeLevels"`
}

func (h handlers) getSettings(w http.ResponseWriter, r *http.Request) {
	if _, err := khttp.Query(r); err != nil {
		h.fail(w, r, err)
		return
	}
	t, err := h.q.TenantSettings(r.Context(), caller(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	khttp.WriteJSON(w, http.StatusOK, settingsJSON{
		CredentialDefaultLifetimeDays: int(t.CredentialDefaultLifetime / 86400),
		CredentialMaxLifetimeDays:     int(t.CredentialMaxLifetime / 86400),
		ScopeLevels:                   t.ScopeLevels,
	})
}

type settingsRequest struct {
	CredentialDefaultLifetimeDays *int      `json:"credentialDefaultLifetimeDays"`
	CredentialMaxLifetimeDays     *int      `json:"credentialMaxLifetimeDays"`
	ScopeLevels                   *[]string `json:"scopeLevels"`
}

// maxSettingDays is the longest credential lifetime a tenant may set, in
// days (commands.MaxCredentialLifetimeSetting).
const maxSettingDays = int(commands.MaxCredentialLifetimeSetting / 86400)

// days converts a lifetime in whole days to seconds, refusing values the
// conversion could overflow or the command would refuse in other units.
func days(field string, d *int) (*int64, error) {
	if d == nil {
		return nil, nil
	}
	if *d < 1 || *d > maxSettingDays {
		return nil, khttp.BadField(field, fmt.Sprintf("must be between 1 and %d days", maxSettingDays))
	}
	s := int64(*d) * 86400
	return &s, nil
}

// wireFields names the commands' domain fields (snake_case) as this
// dialect's JSON does; a field not listed keeps its domain name.
var wireFields = map[string]string{
	"display_name":                "displayName",
	"expires_at":                  "expiresAt",
	"scope_levels":                "scopeLevels",
	"credential_default_lifetime": "credentialDefaultLifetimeDays",
	"credential_max_lifetime":     "credentialMaxLifetimeDays",
}

// wireField maps a domain field name to this dialect's name for it.
func wireField(field string) string {
	if f, ok := wireFields[field]; ok {
		return f
	}
	return field
}

// wireQueryField names a query's paging inputs as this dialect's query
// parameters.
func wireQueryField(field string) string { return field }

func (h handlers) updateSettings(w http.ResponseWriter, r *http.Request) {
	p := caller(r)
	if err := h.cmds.ChangeTenantSettings.Authorize(commands.ChangeTenantSettings{Meta: meta(r), Tenant: p.Tenant}); err != nil {
		h.fail(w, r, err)
		return
	}
	var req settingsRequest
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	def, err := days("credentialDefaultLifetimeDays", req.CredentialDefaultLifetimeDays)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	max, err := days("credentialMaxLifetimeDays", req.CredentialMaxLifetimeDays)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	res, err := h.cmds.ChangeTenantSettings.Handle(r.Context(), commands.ChangeTenantSettings{
		Meta: meta(r), Tenant: p.Tenant, CredentialDefaultLifetime: def, CredentialMaxLifetime: max, ScopeLevels: req.ScopeLevels,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, res.Sequence)
	t := res.Tenant
	khttp.WriteJSON(w, http.StatusOK, settingsJSON{
		CredentialDefaultLifetimeDays: int(t.DefaultLifetime().Hours() / 24),
		CredentialMaxLifetimeDays:     int(t.MaxLifetime().Hours() / 24),
		ScopeLevels:                   t.ScopeLevels(),
	})
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

func pageOf(qs url.Values) (query.Page, error) {
	p := query.Page{Cursor: qs.Get("cursor")}
	if s := qs.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > query.MaxLimit {
			return p, khttp.BadField("limit", "must be a whole number from 1 to "+strconv.Itoa(query.MaxLimit))
		}
		p.Limit = n
	}
	return p, nil
}

// pathID reads and checks an id path variable; ids are 26-character ULIDs.
func (h handlers) pathID(w http.ResponseWriter, r *http.Request, name string) (string, bool) {
	id := mux.Vars(r)[name]
	if !validID(id) {
		WriteError(w, r, http.StatusBadRequest, name, "must be a 26-character id as returned by this API")
		return "", false
	}
	return id, true
}

// credentialPath reads the service account and credential ids of a
// credential's path.
func (h handlers) credentialPath(w http.ResponseWriter, r *http.Request) (saID, id string, ok bool) {
	if saID, ok = h.pathID(w, r, "serviceAccountId"); !ok {
		return "", "", false
	}
	id, ok = h.pathID(w, r, "id")
	return saID, id, ok
}

func validID(id string) bool {
	if len(id) != 26 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}
