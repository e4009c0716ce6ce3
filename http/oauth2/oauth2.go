// Package oauth2 serves Keyhold's OAuth2 endpoints for service accounts:
// the client credentials grant (RFC 6749 4.4), token introspection
// (RFC 7662), token revocation (RFC 7009), the JSON Web Key Set that
// verifies issued tokens and the authorization server metadata that
// points at them all (RFC 8414).
//
// The token endpoint is on the hot path: it authenticates from the
// in-memory query.Directory and signs with auth.Keys, touching neither
// the database nor the event log.
package oauth2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/query"
)

// Endpoint paths registered by Register.
const (
	TokenPath      = "/oauth2/token"
	IntrospectPath = "/oauth2/introspect"
	RevokePath     = "/oauth2/revoke"
	JWKSPath       = "/.well-known/jwks.json"
	MetadataPath   = "/.well-known/oauth-authorization-server"
)

// MaxBodyBytes bounds a request body on the OAuth2 endpoints: a form with a
// client id, a secret and a token fits many times over.
const MaxBodyBytes = 8 << 10

// Token lifetime bounds accepted by WithTokenLifetime.
const (
	MinTokenLifetime = time.Minute
	MaxTokenLifetime = 24 * time.Hour
)

// GrantClientCredentials is the only grant type Keyhold supports.
const GrantClientCredentials = "client_credentials"

// ErrInvalidOption is returned by New for a missing dependency or an option
// with a bad value.
var ErrInvalidOption = errors.New("oauth2: invalid option")

// RevokeFunc records the revocation of an access token on behalf of the
// client that holds it, and returns once the directory has applied it (so
// introspection right after the response sees the token inactive). The
// wiring implements it with commands.RevokeAccessToken. An error matching
// commands.ErrNotFound means there was nothing to revoke.
type RevokeFunc func(ctx context.Context, caller auth.Principal, claims auth.AccessClaims) error

// Server serves the OAuth2 endpoints. It is safe for concurrent use.
type Server struct {
	dir      *query.Directory
	keys     *auth.Keys
	revoke   RevokeFunc
	lifetime time.Duration
	now      func() time.Time
	log      *slog.Logger
	// issuerURL is the keys' issuer when it is a URL (see IssuerURL): the
	// base of the endpoints the metadata names. Nil otherwise.
	issuerURL *url.URL

	// clients and addrs slow down client ids and remote addresses that
	// keep failing authentication; failures and throttled count them.
	clients, addrs *auth.Throttle
	proxies        khttp.Proxies
	failures       *prometheus.CounterVec
	throttled      *prometheus.CounterVec
}

// Default throttles of failed client authentications: a client id gets 10
// free failures a minute, then waits 1 s doubling to at most 30 s (so an
// attacker guessing one id cannot keep its owner out for longer); an
// address gets 30, then waits up to 5 minutes.
var (
	DefaultClientThrottle  = auth.ThrottlePolicy{Free: 10, Window: time.Minute, Base: time.Second, Max: 30 * time.Second, Keys: 100_000}
	DefaultAddressThrottle = auth.ThrottlePolicy{Free: 30, Window: time.Minute, Base: time.Second, Max: 5 * time.Minute, Keys: 100_000}
)

// Option configures New.
type Option func(*Server) error

// WithTokenLifetime sets the access token lifetime, between MinTokenLifetime
// and MaxTokenLifetime in whole seconds (default auth.AccessTokenLifetime).
func WithTokenLifetime(d time.Duration) Option {
	return func(s *Server) error {
		if d < MinTokenLifetime || d > MaxTokenLifetime || d%time.Second != 0 {
			return fmt.Errorf("%w: token lifetime %s (want whole seconds from %s to %s)", ErrInvalidOption, d, MinTokenLifetime, MaxTokenLifetime)
		}
		s.lifetime = d
		return nil
	}
}

// WithClock sets the clock used for issuing and checking tokens (tests).
func WithClock(now func() time.Time) Option {
	return func(s *Server) error {
		if now == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalidOption)
		}
		s.now = now
		return nil
	}
}

// WithLogger sets the logger for failures worth an operator's attention
// (default slog.Default()). Secrets and tokens are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		s.log = l
		return nil
	}
}

// WithThrottles sets the policies that slow down client ids and remote
// addresses after failed authentications (default DefaultClientThrottle
// and DefaultAddressThrottle).
func WithThrottles(clients, addrs auth.ThrottlePolicy) Option {
	return func(s *Server) error {
		c, err := auth.NewThrottle(clients)
		if err != nil {
			return fmt.Errorf("%w: client throttle: %w", ErrInvalidOption, err)
		}
		a, err := auth.NewThrottle(addrs)
		if err != nil {
			return fmt.Errorf("%w: address throttle: %w", ErrInvalidOption, err)
		}
		s.clients, s.addrs = c, a
		return nil
	}
}

// WithProxies sets the reverse proxies whose X-Forwarded-For names the
// client address failures are throttled and logged by (default: none, the
// peer's address).
func WithProxies(p khttp.Proxies) Option {
	return func(s *Server) error {
		s.proxies = p
		return nil
	}
}

// WithRegistry registers the server's metrics with reg:
// keyhold_oauth2_client_auth_failures_total{path} and
// keyhold_oauth2_client_auth_throttled_total{path}.
func WithRegistry(reg prometheus.Registerer) Option {
	return func(s *Server) error {
		if reg == nil {
			return fmt.Errorf("%w: nil registry", ErrInvalidOption)
		}
		if err := reg.Register(s.failures); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidOption, err)
		}
		if err := reg.Register(s.throttled); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidOption, err)
		}
		return nil
	}
}

// New returns a Server authenticating clients against dir and signing
// tokens with keys; the issuer and audience of tokens are the keys' own
// (see auth.WithIssuer). revoke is called by the revocation endpoint.
func New(dir *query.Directory, keys *auth.Keys, revoke RevokeFunc, opts ...Option) (*Server, error) {
	if dir == nil || keys == nil || revoke == nil {
		return nil, fmt.Errorf("%w: directory, keys and revoke function are required", ErrInvalidOption)
	}
	s := &Server{dir: dir, keys: keys, revoke: revoke, lifetime: auth.AccessTokenLifetime, now: time.Now, log: slog.Default(),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyhold_oauth2_client_auth_failures_total", Help: "Client authentications that failed, by endpoint.",
		}, []string{"path"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyhold_oauth2_client_auth_throttled_total", Help: "Client authentications refused with 429 after repeated failures, by endpoint.",
		}, []string{"path"}),
	}
	if err := WithThrottles(DefaultClientThrottle, DefaultAddressThrottle)(s); err != nil {
		return nil, err
	}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if s.lifetime > keys.MaxLifetime() {
		return nil, fmt.Errorf("%w: token lifetime %s is beyond the keys' maximum %s (auth.WithMaxLifetime)", ErrInvalidOption, s.lifetime, keys.MaxLifetime())
	}
	if u, err := IssuerURL(keys.Issuer()); err == nil {
		s.issuerURL = u
	} else if !errors.Is(err, ErrNotURL) {
		return nil, fmt.Errorf("%w: issuer: %w", ErrInvalidOption, err)
	}
	return s, nil
}

// ErrNotURL is returned by IssuerURL for an issuer that is not written as
// a URL (no "://"), such as the default auth.DefaultIssuer.
var ErrNotURL = errors.New("oauth2: issuer is not a URL")

// IssuerURL parses an issuer written as a URL. RFC 8414 2 wants an https
// URL with no query or fragment; http is accepted for loopback hosts only
// (development). An issuer with no "://" fails with ErrNotURL: Keyhold
// accepts such issuers (the default "keyhold"), but the metadata endpoint
// then derives endpoint URLs from each request.
func IssuerURL(iss string) (*url.URL, error) {
	if !strings.Contains(iss, "://") {
		return nil, ErrNotURL
	}
	u, err := url.Parse(iss)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%q is not a URL: %w", iss, err)
	case u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname())):
		return nil, fmt.Errorf("%q: the issuer URL must use https (http only for localhost)", iss)
	case u.Host == "" || u.User != nil:
		return nil, fmt.Errorf("%q: the issuer URL needs a host and no user information", iss)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(iss, "#"):
		return nil, fmt.Errorf("%q: the issuer URL must have no query or fragment (RFC 8414 2)", iss)
	}
	return u, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Register adds the OAuth2 endpoints to r. The token, introspection and
// revocation endpoints answer another method than POST with 405 and
// Allow, in the RFC 6749 error shape like their other errors.
func (s *Server) Register(r *mux.Router) {
	r.HandleFunc(TokenPath, postOnly(s.token))
	r.HandleFunc(IntrospectPath, postOnly(s.introspect))
	r.HandleFunc(RevokePath, postOnly(s.revocation))
	r.HandleFunc(JWKSPath, s.serveJWKS).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(MetadataPath, s.serveMetadata).Methods(http.MethodGet, http.MethodHead)
	// RFC 8414 3: an issuer with a path has its metadata under that path.
	if s.issuerURL != nil {
		if p := strings.TrimSuffix(s.issuerURL.EscapedPath(), "/"); p != "" {
			r.HandleFunc(MetadataPath+p, s.serveMetadata).Methods(http.MethodGet, http.MethodHead)
		}
	}
}

// Error codes of RFC 6749 5.2 and RFC 7009 2.2.1.
const (
	errInvalidRequest       = "invalid_request"
	errInvalidClient        = "invalid_client"
	errInvalidScope         = "invalid_scope"
	errUnsupportedGrantType = "unsupported_grant_type"
	errUnavailable          = "temporarily_unavailable"
)

// oauthError is an error response in the RFC 6749 5.2 shape. Its
// description is fixed text, at most naming a parameter: never a value
// the client sent, so never a secret.
type oauthError struct {
	status      int
	code        string
	description string
	// challenge adds WWW-Authenticate: Basic, required when the client
	// tried (or could have tried) HTTP Basic authentication.
	challenge bool
	// retryAfter, when set, is sent as Retry-After in whole seconds.
	retryAfter time.Duration
}

// postOnly refuses methods other than POST in this package's error shape.
func postOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, &oauthError{status: http.StatusMethodNotAllowed, code: errInvalidRequest, description: "this endpoint accepts POST only"})
			return
		}
		h(w, r)
	}
}

func badRequest(description string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: errInvalidRequest, description: description}
}

type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

func writeError(w http.ResponseWriter, e *oauthError) {
	h := w.Header()
	if e.challenge {
		h.Set("WWW-Authenticate", `Basic realm="keyhold", charset="UTF-8"`)
	}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.retryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, e.status, errorBody{Error: e.code, ErrorDescription: e.description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	writeBody(w, status, body)
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	// Responses carry tokens or say whether one is valid: never cache them
	// (RFC 6749 5.1).
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	h["Pragma"] = noCache
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Header values assigned directly: shared read-only slices save
// canonicalisation and an allocation per header on the hot path.
var (
	jsonContentType = []string{"application/json;charset=UTF-8"}
	noStore         = []string{"no-store"}
	noCache         = []string{"no-cache"}
)

// readForm parses a form-encoded POST body of at most MaxBodyBytes.
// Parameters are taken from the body only (RFC 6749 2.3.1: credentials
// must not travel in the URI), and none may repeat (RFC 6749 3.2).
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	ct := r.Header.Get("Content-Type")
	if ct != "application/x-www-form-urlencoded" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return nil, badRequest("the body must be application/x-www-form-urlencoded")
		}
	}
	if r.URL.RawQuery != "" {
		q := r.URL.Query()
		if q.Has("client_secret") || q.Has("token") {
			return nil, badRequest("credentials and tokens must be sent in the request body, not the URL")
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &oauthError{status: http.StatusRequestEntityTooLarge, code: errInvalidRequest, description: fmt.Sprintf("the body must not exceed %d bytes", MaxBodyBytes)}
		}
		return nil, badRequest("the body is not a valid form")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, badRequest("parameter " + strconv.Quote(safeName(k)) + " must not repeat")
		}
	}
	return r.PostForm, nil
}

// safeName keeps a parameter name fit for an error description.
func safeName(k string) string {
	if len(k) > 32 {
		k = k[:32]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, k)
}

// client is an authenticated OAuth2 client.
type client struct {
	principal    auth.Principal
	id           string
	credentialID string
	generation   uint64
}

// authenticate checks client credentials sent by HTTP Basic or as the
// form fields client_id and client_secret (RFC 6749 2.3.1), never both.
func (s *Server) authenticate(r *http.Request, form url.Values, now time.Time) (client, *oauthError) {
	formID, formSecret := form.Get("client_id"), form.Get("client_secret")
	var id, secret string
	basic := false
	if len(r.Header.Values("Authorization")) > 1 {
		return client{}, badRequest("send the Authorization header once")
	}
	if h := r.Header.Get("Authorization"); h != "" {
		var ok bool
		if id, secret, ok = r.BasicAuth(); !ok {
			return client{}, &oauthError{status: http.StatusUnauthorized, code: errInvalidClient, description: "client authentication must use HTTP Basic or the client_id and client_secret parameters", challenge: true}
		}
		basic = true
		// RFC 6749 2.3.1: id and secret are form-urlencoded before Basic.
		var err error
		if id, err = formUnescape(id); err == nil {
			secret, err = formUnescape(secret)
		}
		if err != nil {
			return client{}, &oauthError{status: http.StatusUnauthorized, code: errInvalidClient, description: "malformed Basic credentials", challenge: true}
		}
		if formSecret != "" {
			return client{}, badRequest("use one client authentication method, not both HTTP Basic and client_secret")
		}
		if formID != "" && formID != id {
			return client{}, badRequest("client_id does not match the HTTP Basic credentials")
		}
	} else {
		id, secret = formID, formSecret
	}
	if id == "" || secret == "" {
		return client{}, &oauthError{status: http.StatusUnauthorized, code: errInvalidClient, description: "client authentication required", challenge: true}
	}
	addr := s.proxies.ClientAddr(r)
	throttleKey := throttleID(id)
	if wait := max(s.clients.Blocked(throttleKey, now), s.addrs.Blocked(addr, now)); wait > 0 {
		s.throttled.WithLabelValues(r.URL.Path).Inc()
		return client{}, &oauthError{status: http.StatusTooManyRequests, code: errUnavailable,
			description: "too many failed client authentications; retry later", retryAfter: wait}
	}
	authed, err := s.dir.AuthenticateClient(id, secret, now)
	if errors.Is(err, query.ErrDirectoryLoading) {
		return client{}, &oauthError{status: http.StatusServiceUnavailable, code: errUnavailable, description: "the server is starting; retry in a moment"}
	}
	if err != nil {
		// One answer for every cause, so clients cannot probe which part
		// was wrong; the cause text carries no secret.
		s.failures.WithLabelValues(r.URL.Path).Inc()
		s.clients.Failed(throttleKey, now)
		s.addrs.Failed(addr, now)
		s.log.Info("oauth2 client authentication failed", "client_id", loggableClientID(id), "remote", addr, "path", r.URL.Path, "reason", err.Error())
		return client{}, &oauthError{status: http.StatusUnauthorized, code: errInvalidClient, description: "client authentication failed", challenge: basic}
	}
	// An address's failures are not forgiven by a success: an attacker
	// holding one valid credential could otherwise reset its own count.
	s.clients.Succeeded(throttleKey)
	return client{principal: authed.Principal, id: id, credentialID: authed.CredentialID, generation: authed.Generation}, nil
}

// throttleID is the key a client id is throttled under: the id itself,
// or one shared key for ids no client could have, so that made-up ids
// cost the throttle no memory.
func throttleID(id string) string {
	if loggableClientID(id) != id {
		return "(malformed)"
	}
	return id
}

func formUnescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	return url.QueryUnescape(s)
}

// loggableClientID returns id for a log line only when it has the shape of
// a Keyhold client id: a client that swapped id and secret must not get
// its secret logged.
func loggableClientID(id string) string {
	if !strings.HasPrefix(id, commands.ClientIDPrefix) || !events.ValidToken(id) {
		return "(malformed)"
	}
	return id
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	form, oerr := readForm(w, r)
	if oerr != nil {
		writeError(w, oerr)
		return
	}
	switch gt := form.Get("grant_type"); gt {
	case GrantClientCredentials:
	case "":
		writeError(w, badRequest("grant_type is required"))
		return
	default:
		writeError(w, &oauthError{status: http.StatusBadRequest, code: errUnsupportedGrantType, description: "only the client_credentials grant is supported"})
		return
	}
	now := s.now()
	c, oerr := s.authenticate(r, form, now)
	if oerr != nil {
		writeError(w, oerr)
		return
	}
	scope, oerr := grantScope(c.principal, form.Get("scope"))
	if oerr != nil {
		writeError(w, oerr)
		return
	}
	tok, err := s.keys.Issue(auth.AccessClaims{
		Subject:      c.principal.ID,
		Tenant:       c.principal.Tenant,
		ClientID:     c.id,
		CredentialID: c.credentialID,
		Generation:   c.generation,
		ID:           events.NewID(),
		Scope:        scope,
		IssuedAt:     now,
		NotBefore:    now,
		Expiry:       now.Add(s.lifetime),
	})
	if err != nil {
		s.log.Error("oauth2 issue access token", "client_id", c.id, "err", err)
		writeError(w, &oauthError{status: http.StatusInternalServerError, code: "server_error", description: "could not issue a token"})
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(s.lifetime / time.Second), Scope: scope})
}

// grantScope decides the scope of a token: the roles the client asked for,
// each of which it must hold, or all its roles when it asked for none (an
// empty scope parameter counts as none, as common clients send it).
// Scope tokens follow RFC 6749 3.3; the granted list keeps role order.
func grantScope(p auth.Principal, requested string) (string, *oauthError) {
	if requested == "" {
		return rolesScope(p, nil), nil
	}
	if len(requested) > 1024 {
		return "", &oauthError{status: http.StatusBadRequest, code: errInvalidScope, description: "scope must list one or more of the client's roles, separated by spaces"}
	}
	want := strings.Split(requested, " ")
	for _, tok := range want {
		if !validScopeToken(tok) {
			return "", &oauthError{status: http.StatusBadRequest, code: errInvalidScope, description: "scope must list one or more of the client's roles, separated by single spaces"}
		}
		if !holdsRole(p, tok) {
			return "", &oauthError{status: http.StatusBadRequest, code: errInvalidScope, description: "scope names a role this client does not hold"}
		}
	}
	return rolesScope(p, want), nil
}

func holdsRole(p auth.Principal, role string) bool {
	for _, b := range p.Bindings {
		if b.Role == role {
			return true
		}
	}
	return false
}

// rolesScope joins p's distinct roles, those in only when only is not nil.
func rolesScope(p auth.Principal, only []string) string {
	var b strings.Builder
	seen := make(map[string]bool, len(p.Bindings))
	for _, bd := range p.Bindings {
		if seen[bd.Role] {
			continue
		}
		if only != nil && !contains(only, bd.Role) {
			continue
		}
		seen[bd.Role] = true
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(bd.Role)
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// validScopeToken checks RFC 6749 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// JWKSMaxAge is how long a verifier may cache the key set. A replica
// publishes a new key at its next reload (within auth.KeyReload) and none
// signs with it before it is auth.KeyPropagation old, so a set cached for
// at most the difference is refetched before the first token signed with
// the new key arrives. Retired keys stay listed far longer
// (auth.RetiredKeyGrace).
const JWKSMaxAge = auth.KeyPropagation - auth.KeyReload

var jwksCacheControl = "public, max-age=" + strconv.Itoa(int(JWKSMaxAge/time.Second))

func (s *Server) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", jwksCacheControl)
	// The keys' current set: it changes when the keys reload.
	jwks := s.keys.JWKSJSON()
	h.Set("Content-Length", strconv.Itoa(len(jwks)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(jwks)
}

// Metadata is the authorization server metadata of RFC 8414, served at
// MetadataPath.
type Metadata struct {
	Issuer                string   `json:"issuer"`
	TokenEndpoint         string   `json:"token_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	IntrospectionEndpoint string   `json:"introspection_endpoint"`
	RevocationEndpoint    string   `json:"revocation_endpoint"`
	GrantTypesSupported   []string `json:"grant_types_supported"`
	// ResponseTypesSupported is required by RFC 8414 and empty: with the
	// client credentials grant only, there is no authorization endpoint.
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
}

// clientAuthMethods are the client authentications of authenticate.
var clientAuthMethods = []string{"client_secret_basic", "client_secret_post"}

// Metadata returns the server's metadata. Endpoint URLs are under the
// issuer when it is a URL; otherwise under the scheme and host r reached
// this server at, which a proxy in front may have changed: set the issuer
// to the public URL for metadata that holds everywhere.
func (s *Server) Metadata(r *http.Request) Metadata {
	var base string
	if s.issuerURL != nil {
		base = strings.TrimSuffix(s.issuerURL.String(), "/")
	} else {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return Metadata{
		Issuer:                            s.keys.Issuer(),
		TokenEndpoint:                     base + TokenPath,
		JWKSURI:                           base + JWKSPath,
		IntrospectionEndpoint:             base + IntrospectPath,
		RevocationEndpoint:                base + RevokePath,
		GrantTypesSupported:               []string{GrantClientCredentials},
		ResponseTypesSupported:            []string{},
		TokenEndpointAuthMethodsSupported: clientAuthMethods,
		IntrospectionEndpointAuthMethodsSupported: clientAuthMethods,
		RevocationEndpointAuthMethodsSupported:    clientAuthMethods,
	}
}

func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	body, err := json.Marshal(s.Metadata(r))
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if s.issuerURL != nil {
		h.Set("Cache-Control", "public, max-age=3600")
	} else {
		// The endpoints follow the request's Host: a shared cache must not
		// hand one client's Host to another (a forged Host would send
		// everyone's secrets elsewhere).
		h.Set("Cache-Control", "no-store")
		h.Set("Vary", "Host")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

type introspection struct {
	Active    bool   `json:"active"`
	ClientID  string `json:"client_id,omitempty"`
	Subject   string `json:"sub,omitempty"`
	Tenant    string `json:"tenant,omitempty"`
	Scope     string `json:"scope,omitempty"`
	Expiry    int64  `json:"exp,omitempty"`
	IssuedAt  int64  `json:"iat,omitempty"`
	NotBefore int64  `json:"nbf,omitempty"`
	ID        string `json:"jti,omitempty"`
	Issuer    string `json:"iss,omitempty"`
	Audience  string `json:"aud,omitempty"`
	TokenType string `json:"token_type,omitempty"`
}

var inactive = []byte(`{"active":false}`)

// introspect implements RFC 7662 for resource servers: clients of the
// token's own tenant allowed authz.TokensIntrospect there (the managed
// role token-introspector, or tenant-admin). For any other client, and
// for anything that would not authenticate a request now, the token is
// inactive, with no reason given (RFC 7662 2.2).
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	c, claims, ok, handled := s.tokenRequest(w, r)
	if handled {
		return
	}
	if !ok || claims.Tenant != c.principal.Tenant ||
		!c.principal.Can(s.dir.Authorizer(), authz.TokensIntrospect, "", authz.TenantScope(claims.Tenant)).Allowed {
		writeBody(w, http.StatusOK, inactive)
		return
	}
	writeJSON(w, http.StatusOK, introspection{
		Active:    true,
		ClientID:  claims.ClientID,
		Subject:   claims.Subject,
		Tenant:    claims.Tenant,
		Scope:     claims.Scope,
		Expiry:    claims.Expiry.Unix(),
		IssuedAt:  claims.IssuedAt.Unix(),
		NotBefore: claims.NotBefore.Unix(),
		ID:        claims.ID,
		Issuer:    claims.Issuer,
		Audience:  claims.Audience,
		TokenType: "Bearer",
	})
}

// tokenRequest reads what introspection and revocation share: a form
// authenticated by client credentials naming a token. It returns the client
// and, with ok, the token's claims if the token is active; when the request
// itself is unusable it has written the error and handled is true.
func (s *Server) tokenRequest(w http.ResponseWriter, r *http.Request) (c client, claims auth.AccessClaims, ok, handled bool) {
	form, oerr := readForm(w, r)
	if oerr != nil {
		writeError(w, oerr)
		return c, claims, false, true
	}
	now := s.now()
	if c, oerr = s.authenticate(r, form, now); oerr != nil {
		writeError(w, oerr)
		return c, claims, false, true
	}
	token := form.Get("token")
	if token == "" {
		writeError(w, badRequest("token is required"))
		return c, claims, false, true
	}
	claims, ok = s.activeClaims(token, now)
	return c, claims, ok, false
}

// activeClaims returns the claims of a token that would authenticate a
// request at now: well signed, unexpired, and not revoked in the directory.
func (s *Server) activeClaims(token string, now time.Time) (auth.AccessClaims, bool) {
	claims, err := s.keys.Verify(token, now)
	if err != nil {
		return auth.AccessClaims{}, false
	}
	if _, err := s.dir.AccessTokenPrincipal(claims, now); err != nil {
		return auth.AccessClaims{}, false
	}
	return claims, true
}

// revocation implements RFC 7009. It answers 200 whenever there is nothing
// to revoke (unknown, malformed, expired or already revoked tokens, and
// tokens of other clients, which are left alone), so the endpoint tells a
// caller nothing about tokens it does not hold. token_type_hint is ignored:
// access tokens are the only kind.
func (s *Server) revocation(w http.ResponseWriter, r *http.Request) {
	c, claims, ok, handled := s.tokenRequest(w, r)
	if handled {
		return
	}
	if !ok || claims.ClientID != c.id || claims.Subject != c.principal.ID || claims.Tenant != c.principal.Tenant {
		revoked(w)
		return
	}
	if err := s.revoke(r.Context(), c.principal, claims); err != nil && !errors.Is(err, commands.ErrNotFound) {
		s.log.Error("oauth2 revoke access token", "client_id", c.id, "jti", claims.ID, "err", err)
		// RFC 7009 2.2.1: 503 tells the client to retry later.
		w.Header().Set("Retry-After", "1")
		writeError(w, &oauthError{status: http.StatusServiceUnavailable, code: errUnavailable, description: "the revocation could not be recorded; retry"})
		return
	}
	revoked(w)
}

// revoked answers a revocation request: 200 with no body (RFC 7009 2.2).
func revoked(w http.ResponseWriter) {
	w.Header()["Cache-Control"] = noStore
	w.WriteHeader(http.StatusOK)
}
