package k0rdent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/query"
)

// AuthBase is the path prefix of the draft's auth endpoints.
const AuthBase = "/v1/regions/global/auth"

// TokenCore is the token service the auth endpoints share with Keyhold's
// OAuth2 endpoints (the oauth2 package's Server implements it): one client
// authentication with its throttles, one way to mint, introspect and
// revoke. Refusals are errors with the methods of statusError.
type TokenCore interface {
	// ClientCredentialsGrant authenticates a client and issues a token
	// narrowed to roles (nil: all the client's roles).
	ClientCredentialsGrant(r *http.Request, clientID, secret string, roles []string) (string, auth.AccessClaims, error)
	// Introspect returns an active token's claims when caller may
	// introspect it (iam.tokens.introspect in the token's tenant).
	Introspect(caller auth.Principal, token string) (auth.AccessClaims, bool)
	// RevokeToken revokes token for caller when caller may; nil when
	// there is nothing caller may revoke.
	RevokeToken(ctx context.Context, caller auth.Principal, token string) error
}

// statusError is a TokenCore refusal: the status to answer with, fixed
// text saying what to fix, and how long to wait for a retry, if at all.
type statusError interface {
	error
	StatusCode() int
	Description() string
	RetryAfter() time.Duration
}

type authHandlers struct {
	core TokenCore
	d    *query.Decisions
	log  *slog.Logger
}

// RegisterAuth adds the draft's auth endpoints under AuthBase: token (the
// client_credentials grant with its scope_narrowing), introspect, revoke
// and check (the decision API in the draft's shape). All but token need a
// bearer credential; every error is in the draft's envelope.
func RegisterAuth(r *mux.Router, kit *khttp.Kit, core TokenCore, d *query.Decisions, log *slog.Logger) {
	h := authHandlers{core: core, d: d, log: log}
	s := r.PathPrefix(AuthBase).Subrouter()
	s.Use(khttp.ErrorsAs(WriteError))
	// The token request authenticates the client by its body.
	s.Handle("/token", khttp.Methods{http.MethodPost: h.token}.With(WriteError))
	authed := s.NewRoute().Subrouter()
	authed.Use(kit.Authenticated(WriteError))
	authed.Handle("/introspect", khttp.Methods{http.MethodPost: h.introspect}.With(WriteError))
	authed.Handle("/revoke", khttp.Methods{http.MethodPost: h.revoke}.With(WriteError))
	authed.Handle("/check", khttp.Methods{http.MethodPost: h.check}.With(WriteError))
	s.PathPrefix("/").HandlerFunc(notFound)
}

// scopeNarrowingJSON is the draft's ScopeNarrowing.
type scopeNarrowingJSON struct {
	Scope   *string   `json:"scope"`
	ScopeID *string   `json:"scopeId"`
	Roles   *[]string `json:"roles"`
}

// tokenRequest is the draft's ClientCredentialsGrant (the one grant
// Keyhold supports of the draft's three).
type tokenRequest struct {
	GrantType      *string             `json:"grant_type"`
	ClientID       *string             `json:"client_id"`
	ClientSecret   *string             `json:"client_secret"`
	ScopeNarrowing *scopeNarrowingJSON `json:"scope_narrowing"`
}

// tokenResponse is the draft's TokenResponse; no refresh_token for this
// grant, as the draft says.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

func (h authHandlers) token(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	switch {
	case req.GrantType == nil || *req.GrantType == "":
		WriteError(w, r, http.StatusBadRequest, "grant_type", "is required: client_credentials")
		return
	case *req.GrantType == "authorization_code" || *req.GrantType == "api_key":
		WriteError(w, r, http.StatusBadRequest, "grant_type", "only client_credentials is supported")
		return
	case *req.GrantType != grantClientCredentials:
		WriteError(w, r, http.StatusBadRequest, "grant_type", "must be client_credentials")
		return
	case req.ClientID == nil || *req.ClientID == "":
		WriteError(w, r, http.StatusBadRequest, "client_id", "is required")
		return
	case req.ClientSecret == nil || *req.ClientSecret == "":
		WriteError(w, r, http.StatusBadRequest, "client_secret", "is required")
		return
	}
	var roles []string
	var narrowScope *events.Scope
	if n := req.ScopeNarrowing; n != nil {
		if n.Roles != nil {
			if len(*n.Roles) == 0 || len(*n.Roles) > commands.MaxRoles {
				WriteError(w, r, http.StatusBadRequest, "scope_narrowing.roles", fmt.Sprintf("must list 1 to %d of the service account's roles", commands.MaxRoles))
				return
			}
			roles = *n.Roles
		}
		switch {
		case n.Scope == nil && n.ScopeID == nil:
		case n.Scope == nil || n.ScopeID == nil || !slices.Contains(scopes, *n.Scope):
			WriteError(w, r, http.StatusBadRequest, "scope_narrowing.scope", "give scope (organization, folder or project) and scopeId together")
			return
		default:
			s := domainScope(*n.Scope, *n.ScopeID)
			narrowScope = &s
		}
	}
	tok, claims, err := h.core.ClientCredentialsGrant(r, *req.ClientID, *req.ClientSecret, roles)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if narrowScope != nil {
		// Keyhold's tokens carry their account's scope, not a narrower
		// one: a scope other than the account's own is refused, after
		// client authentication so that it reveals nothing to strangers.
		own, ok := h.d.ServiceAccountScope(claims.Subject, claims.Tenant)
		if !ok || own.Level != narrowScope.Level || own.Target != narrowScope.Target {
			WriteError(w, r, http.StatusBadRequest, "scope_narrowing.scope", "narrowing to another scope than the service account's own is not supported; narrow roles instead")
			return
		}
	}
	khttp.WriteJSON(w, http.StatusOK, tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(claims.Expiry.Sub(claims.IssuedAt) / time.Second)})
}

// grantClientCredentials is the grant type of the draft's
// ClientCredentialsGrant.
const grantClientCredentials = "client_credentials"

type tokenBody struct {
	Token *string `json:"token"`
}

func (h authHandlers) tokenOf(w http.ResponseWriter, r *http.Request) (string, bool) {
	var req tokenBody
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return "", false
	}
	if req.Token == nil || *req.Token == "" {
		WriteError(w, r, http.StatusBadRequest, "token", "is required")
		return "", false
	}
	return *req.Token, true
}

// introspectionJSON is the draft's ActiveIntrospectionResponse.
type introspectionJSON struct {
	Active        bool     `json:"active"`
	Subject       string   `json:"sub"`
	Issuer        string   `json:"iss"`
	Audience      string   `json:"aud"`
	Expiry        int64    `json:"exp"`
	IssuedAt      int64    `json:"iat"`
	ID            string   `json:"jti"`
	TenantID      string   `json:"tenant_id"`
	Scope         string   `json:"scope"`
	ScopeID       string   `json:"scope_id"`
	Roles         []string `json:"roles"`
	PrincipalType string   `json:"principal_type"`
	CredentialID  string   `json:"credential_id"`
}

func (h authHandlers) introspect(w http.ResponseWriter, r *http.Request) {
	token, ok := h.tokenOf(w, r)
	if !ok {
		return
	}
	claims, active := h.core.Introspect(caller(r), token)
	var scope events.Scope
	if active {
		scope, active = h.d.ServiceAccountScope(claims.Subject, claims.Tenant)
	}
	if !active {
		khttp.WriteJSON(w, http.StatusOK, struct {
			Active bool `json:"active"`
		}{})
		return
	}
	level, target := wireScope(scope)
	roles := []string{}
	if claims.Scope != "" {
		roles = strings.Split(claims.Scope, " ")
	}
	khttp.WriteJSON(w, http.StatusOK, introspectionJSON{
		Active: true,
		// The draft's sub for client_credentials is the clientId; the
		// token's own sub claim is the service account's id.
		Subject: claims.ClientID, Issuer: claims.Issuer, Audience: claims.Audience,
		Expiry: claims.Expiry.Unix(), IssuedAt: claims.IssuedAt.Unix(), ID: claims.ID,
		TenantID: claims.Tenant, Scope: level, ScopeID: target, Roles: roles,
		PrincipalType: "service_account", CredentialID: claims.CredentialID,
	})
}

func (h authHandlers) revoke(w http.ResponseWriter, r *http.Request) {
	token, ok := h.tokenOf(w, r)
	if !ok {
		return
	}
	if err := h.core.RevokeToken(r.Context(), caller(r), token); err != nil {
		h.fail(w, r, err)
		return
	}
	khttp.WriteJSON(w, http.StatusOK, struct {
		Revoked bool `json:"revoked"`
	}{true})
}

type checkRequest struct {
	Subject *string `json:"subject"`
	Checks  *[]struct {
		Action   *string `json:"action"`
		Resource *string `json:"resource"`
	} `json:"checks"`
}

// checkResult is one of the draft's results; reason is a Keyhold
// extension: the evaluator's why.
type checkResult struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

// check answers the draft's permission checks with the decision API's
// evaluator. A check's resource is where the action would apply: the
// organization id (the caller's tenant) or a folder's or project's path.
func (h authHandlers) check(w http.ResponseWriter, r *http.Request) {
	var req checkRequest
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	c := caller(r)
	if req.Checks == nil || len(*req.Checks) == 0 || len(*req.Checks) > query.MaxChecks {
		WriteError(w, r, http.StatusBadRequest, "checks", fmt.Sprintf("must hold 1 to %d checks", query.MaxChecks))
		return
	}
	checks := make([]query.Check, len(*req.Checks))
	for i, ck := range *req.Checks {
		field := "checks[" + strconv.Itoa(i) + "]."
		switch {
		case ck.Action == nil:
			WriteError(w, r, http.StatusBadRequest, field+"action", "is required")
			return
		case ck.Resource == nil || *ck.Resource == "":
			WriteError(w, r, http.StatusBadRequest, field+"resource", "is required: the organization id, or a folder's or project's path")
			return
		}
		checks[i] = query.Check{Action: *ck.Action}
		if *ck.Resource != c.Tenant {
			checks[i].Node = *ck.Resource
		}
	}
	subject := &c
	if req.Subject != nil && *req.Subject != c.ID && *req.Subject != clientIDOf(c) {
		// What another principal may do tells of its bindings.
		if ds, err := h.d.Decide(c, &c, []query.Check{{Action: authz.BindingsList}}); err != nil || !ds[0].Allowed {
			WriteError(w, r, http.StatusForbidden, "subject", "only tenant administrators may check another principal's permissions")
			return
		}
		id := *req.Subject
		if saID, ok := commands.ServiceAccountIDFromClientID(id); ok {
			id = saID
		}
		subject = nil
		if p, ok := h.d.Principal(id, c.Tenant); ok {
			subject = &p
		}
	}
	ds, err := h.d.Decide(c, subject, checks)
	var fe *query.FieldError
	if errors.As(err, &fe) {
		// The decision API names a check's node "scope"; the draft calls
		// it the resource.
		WriteError(w, r, http.StatusBadRequest, strings.Replace(fe.Field, ".scope", ".resource", 1), strings.ReplaceAll(fe.Message, ".scope", ".resource"))
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]checkResult, len(ds))
	for i, d := range ds {
		out[i] = checkResult{Allowed: d.Allowed, Reason: d.Reason}
	}
	khttp.WriteJSON(w, http.StatusOK, struct {
		Results []checkResult `json:"results"`
	}{out})
}

// clientIDOf is a service account's client id, or "" for other principals.
func clientIDOf(p auth.Principal) string {
	if p.Kind != auth.KindServiceAccount {
		return ""
	}
	return commands.ClientIDPrefix + p.ID
}

// fail answers a TokenCore refusal with its status, and anything else as
// the service-account API does.
func (h authHandlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	var se statusError
	if errors.As(err, &se) {
		if d := se.RetryAfter(); d > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
		}
		WriteError(w, r, se.StatusCode(), "", se.Description())
		return
	}
	handlers{log: h.log}.fail(w, r, err)
}
