package oauth2_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/http/oauth2"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/privacy"
	"github.com/keyhold/keyhold/query"
)

// fixture is a real stream with the real commands, a directory following
// it, signing keys in a real database, and an OAuth2 server over them.
type fixture struct {
	t       *testing.T
	store   *events.Store
	cmds    *commands.Commands
	dir     *query.Directory
	keys    *auth.Keys
	keysDB  *sqlx.DB
	admin   auth.Principal
	url     string
	revokes atomic.Int32
	// secrets collects every secret and token the test saw, to prove none
	// reached the event log.
	secrets []string
}

// testKEK is a new key-encryption key for one test's signing keys.
func testKEK(t testing.TB) auth.KEK {
	t.Helper()
	k, err := auth.NewKEK()
	testenv.Must(t, err, "new KEK")
	return k
}

func newFixture(t *testing.T, opts ...oauth2.Option) *fixture {
	t.Helper()
	ctx := context.Background()
	store, _ := testenv.Store(t)
	personal := privacy.NewMemory()
	dir := query.NewDirectory(query.WithPersonal(personal))
	cmds, err := commands.New(store, commands.WithAuthorizer(dir.Authorizer()), commands.WithPersonalData(personal))
	testenv.Must(t, err, "commands")
	boot, err := cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "acme", Username: "root", Email: "root@acme.test"})
	testenv.Must(t, err, "bootstrap")
	f := &fixture{t: t, store: store, cmds: cmds, dir: dir, secrets: []string{boot.Token}}
	runCtx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	ready, err := f.dir.Run(runCtx, store, nil)
	testenv.Must(t, err, "run directory")
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatalf("directory did not catch up")
	}
	f.admin, err = f.dir.APITokenPrincipal(boot.Token, time.Now())
	testenv.Must(t, err, "admin principal")
	f.keysDB = testenv.DB(t)
	f.keys, err = auth.LoadKeys(ctx, f.keysDB, auth.WithKEK(testKEK(t)), auth.WithMaxLifetime(time.Hour))
	testenv.Must(t, err, "keys")
	f.url = f.server(f.revoke, opts...)
	return f
}

// server starts another OAuth2 server over the fixture's directory and keys.
func (f *fixture) server(revoke oauth2.RevokeFunc, opts ...oauth2.Option) string {
	f.t.Helper()
	srv, err := oauth2.New(f.dir, f.keys, revoke, opts...)
	testenv.Must(f.t, err, "new server")
	r := mux.NewRouter()
	srv.Register(r)
	ts := httptest.NewServer(r)
	f.t.Cleanup(ts.Close)
	return ts.URL
}

// revoke is the RevokeFunc the wiring provides: the command, then a
// bounded wait for the directory to apply it.
func (f *fixture) revoke(ctx context.Context, caller auth.Principal, c auth.AccessClaims) error {
	f.revokes.Add(1)
	seq, err := f.cmds.RevokeAccessToken.Handle(ctx, commands.RevokeAccessToken{
		Meta: commands.Meta{Caller: caller}, Tenant: c.Tenant, ServiceAccountID: c.Subject, TokenID: c.ID, ExpiresAt: c.Expiry,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for f.dir.Sequence() < seq {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

func (f *fixture) sync(seq uint64) {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.dir.Sequence() < seq {
		if time.Now().After(deadline) {
			f.t.Fatalf("directory at %d, want %d", f.dir.Sequence(), seq)
		}
		time.Sleep(time.Millisecond)
	}
}

func (f *fixture) serviceAccount(caller auth.Principal, roles ...string) *commands.ServiceAccount {
	f.t.Helper()
	res, err := f.cmds.CreateServiceAccount.Handle(context.Background(), commands.CreateServiceAccount{Meta: commands.Meta{Caller: caller}, DisplayName: "ci", Scope: events.Scope{Level: events.ScopeTenant}, Roles: roles})
	testenv.Must(f.t, err, "create service account")
	f.sync(res.Sequence)
	return res.ServiceAccount
}

func (f *fixture) credential(caller auth.Principal, saID string, expires *time.Time) commands.CredentialResult {
	f.t.Helper()
	res, err := f.cmds.CreateCredential.Handle(context.Background(), commands.CreateCredential{Meta: commands.Meta{Caller: caller}, ServiceAccountID: saID, ExpiresAt: expires})
	testenv.Must(f.t, err, "create credential")
	f.sync(res.Sequence)
	f.secrets = append(f.secrets, res.Secret)
	return res
}

// otherTenant bootstraps tenant beta and returns its administrator.
func (f *fixture) otherTenant() auth.Principal {
	f.t.Helper()
	boot, err := f.cmds.Bootstrap.Handle(context.Background(), commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "beta", Username: "broot", Email: "root@beta.test"})
	testenv.Must(f.t, err, "bootstrap beta")
	f.sync(boot.Sequence)
	f.secrets = append(f.secrets, boot.Token)
	p, ok := f.dir.UserInTenant(boot.UserID, "beta")
	if !ok {
		f.t.Fatalf("beta admin has no access to beta")
	}
	return p
}

// request describes one form POST.
type request struct {
	form        url.Values
	basicID     string
	basicSecret string
	// contentType overrides the form content type.
	contentType string
	// header sets a raw Authorization header.
	authorization string
	query         string
	body          string
}

type response struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func post(t *testing.T, base, path string, req request) response {
	t.Helper()
	body := req.body
	if body == "" {
		body = req.form.Encode()
	}
	u := base + path
	if req.query != "" {
		u += "?" + req.query
	}
	r, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	testenv.Must(t, err, "new request")
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if req.contentType != "" {
		r.Header.Set("Content-Type", req.contentType)
	}
	if req.basicID != "" || req.basicSecret != "" {
		// RFC 6749 2.3.1: form-urlencode, then Basic.
		r.SetBasicAuth(url.QueryEscape(req.basicID), url.QueryEscape(req.basicSecret))
	}
	if req.authorization != "" {
		r.Header.Set("Authorization", req.authorization)
	}
	resp, err := http.DefaultClient.Do(r)
	testenv.Must(t, err, "POST %s", path)
	defer resp.Body.Close()
	out := response{status: resp.StatusCode, header: resp.Header}
	out.body, err = io.ReadAll(resp.Body)
	testenv.Must(t, err, "read body")
	if len(out.body) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		testenv.Must(t, json.Unmarshal(out.body, &out.json), "decode %s", out.body)
	}
	return out
}

func grant(extra ...string) url.Values {
	v := url.Values{"grant_type": {"client_credentials"}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Add(extra[i], extra[i+1])
	}
	return v
}

// token obtains an access token by Basic authentication.
func (f *fixture) token(base, clientID, secret string) string {
	f.t.Helper()
	res := post(f.t, base, oauth2.TokenPath, request{form: grant(), basicID: clientID, basicSecret: secret})
	if res.status != http.StatusOK {
		f.t.Fatalf("token: %d %s", res.status, res.body)
	}
	tok := res.json["access_token"].(string)
	f.secrets = append(f.secrets, tok)
	return tok
}

func wantOAuthError(t *testing.T, res response, status int, code string) {
	t.Helper()
	if res.status != status || res.json["error"] != code {
		t.Fatalf("got %d %s, want %d with error %q", res.status, res.body, status, code)
	}
	if _, ok := res.json["error_description"].(string); !ok {
		t.Fatalf("no error_description in %s", res.body)
	}
	if res.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control %q, want no-store", res.header.Get("Cache-Control"))
	}
}

func TestTokenGrant(t *testing.T) {
	f := newFixture(t)
	sa := f.serviceAccount(f.admin, authz.RoleAuditor, authz.RoleViewer)
	cred := f.credential(f.admin, sa.ID(), nil)
	soon := time.Now().Add(2 * time.Minute)
	expiring := f.credential(f.admin, sa.ID(), &soon)
	deleted := f.credential(f.admin, sa.ID(), nil)
	seq, err := f.cmds.DeleteCredential.Handle(context.Background(), commands.DeleteCredential{Meta: commands.Meta{Caller: f.admin}, ServiceAccountID: sa.ID(), CredentialID: deleted.Credential.ID()})
	testenv.Must(t, err, "delete credential")
	f.sync(seq)
	disabled := f.serviceAccount(f.admin)
	disabledCred := f.credential(f.admin, disabled.ID(), nil)
	off := commands.StatusDisabled
	res, err := f.cmds.UpdateServiceAccount.Handle(context.Background(), commands.UpdateServiceAccount{Meta: commands.Meta{Caller: f.admin}, ID: disabled.ID(), Status: &off})
	testenv.Must(t, err, "disable")
	f.sync(res.Sequence)
	later := f.server(f.revoke, oauth2.WithClock(func() time.Time { return time.Now().Add(3 * time.Minute) }))

	type success struct {
		cred  string
		scope string
	}
	tests := []struct {
		name   string
		base   string
		req    request
		ok     *success
		status int
		code   string
		// challenge: want WWW-Authenticate: Basic
		challenge bool
	}{
		{name: "basic", req: request{form: grant(), basicID: sa.ClientID(), basicSecret: cred.Secret}, ok: &success{cred.Credential.ID(), "auditor viewer"}},
		{name: "form fields", req: request{form: grant("client_id", sa.ClientID(), "client_secret", cred.Secret)}, ok: &success{cred.Credential.ID(), "auditor viewer"}},
		{name: "basic with matching client_id field", req: request{form: grant("client_id", sa.ClientID()), basicID: sa.ClientID(), basicSecret: cred.Secret}, ok: &success{cred.Credential.ID(), "auditor viewer"}},
		{name: "basic, percent-encoded id", req: request{form: grant(), authorization: basicHeader(strings.Replace(sa.ClientID(), "-", "%2D", 1), cred.Secret)}, ok: &success{cred.Credential.ID(), "auditor viewer"}},
		{name: "second credential", req: request{form: grant(), basicID: sa.ClientID(), basicSecret: expiring.Secret}, ok: &success{expiring.Credential.ID(), "auditor viewer"}},
		{name: "scope narrows", req: request{form: grant("scope", "viewer"), basicID: sa.ClientID(), basicSecret: cred.Secret}, ok: &success{cred.Credential.ID(), "viewer"}},
		{name: "scope in any order", req: request{form: grant("scope", "viewer auditor"), basicID: sa.ClientID(), basicSecret: cred.Secret}, ok: &success{cred.Credential.ID(), "auditor viewer"}},
		{name: "empty scope means all roles", req: request{form: grant("scope", ""), basicID: sa.ClientID(), basicSecret: cred.Secret}, ok: &success{cred.Credential.ID(), "auditor viewer"}},
		{name: "scope too long", req: request{form: grant("scope", strings.Repeat("viewer ", 200)+"viewer"), basicID: sa.ClientID(), basicSecret: cred.Secret}, status: 400, code: "invalid_scope"},
		{name: "content type with charset", req: request{form: grant(), basicID: sa.ClientID(), basicSecret: cred.Secret, contentType: "application/x-www-form-urlencoded; charset=utf-8"}, ok: &success{cred.Credential.ID(), "auditor viewer"}},

		{name: "wrong secret", req: request{form: grant(), basicID: sa.ClientID(), basicSecret: auth.NewSecret(auth.PrefixClientSecret)}, status: 401, code: "invalid_client", challenge: true},
		{name: "wrong secret in form", req: request{form: grant("client_id", sa.ClientID(), "client_secret", auth.NewSecret(auth.PrefixClientSecret))}, status: 401, code: "invalid_client"},
		{name: "malformed secret", req: request{form: grant(), basicID: sa.ClientID(), basicSecret: "hunter2"}, status: 401, code: "invalid_client", challenge: true},
		{name: "unknown client", req: request{form: grant(), basicID: commands.ClientIDPrefix + "01unknown", basicSecret: cred.Secret}, status: 401, code: "invalid_client", challenge: true},
		{name: "disabled service account", req: request{form: grant(), basicID: disabled.ClientID(), basicSecret: disabledCred.Secret}, status: 401, code: "invalid_client", challenge: true},
		{name: "deleted credential", req: request{form: grant(), basicID: sa.ClientID(), basicSecret: deleted.Secret}, status: 401, code: "invalid_client", challenge: true},
		{name: "expired credential", base: later, req: request{form: grant(), basicID: sa.ClientID(), basicSecret: expiring.Secret}, status: 401, code: "invalid_client", challenge: true},
		{name: "no credentials", req: request{form: grant()}, status: 401, code: "invalid_client", challenge: true},
		{name: "client_id without secret", req: request{form: grant("client_id", sa.ClientID())}, status: 401, code: "invalid_client", challenge: true},
		{name: "bearer instead of basic", req: request{form: grant(), authorization: "Bearer abc"}, status: 401, code: "invalid_client", challenge: true},
		{name: "basic and form secret", req: request{form: grant("client_secret", cred.Secret), basicID: sa.ClientID(), basicSecret: cred.Secret}, status: 400, code: "invalid_request"},
		{name: "basic and other client_id", req: request{form: grant("client_id", disabled.ClientID()), basicID: sa.ClientID(), basicSecret: cred.Secret}, status: 400, code: "invalid_request"},
		{name: "secret in URL", req: request{form: grant("client_id", sa.ClientID()), query: "client_secret=" + cred.Secret}, status: 400, code: "invalid_request"},
		{name: "missing grant type", req: request{form: url.Values{}, basicID: sa.ClientID(), basicSecret: cred.Secret}, status: 400, code: "invalid_request"},
		{name: "password grant", req: request{form: url.Values{"grant_type": {"password"}}, basicID: sa.ClientID(), basicSecret: cred.Secret}, status: 400, code: "unsupported_grant_type"},
		{name: "repeated grant type", req: request{form: url.Values{"grant_type": {"client_credentials", "client_credentials"}}, basicID: sa.ClientID(), basicSecret: cred.Secret}, status: 400, code: "invalid_request"},
		{name: "JSON body", req: request{body: `{"grant_type":"client_credentials"}`, contentType: "application/json", basicID: sa.ClientID(), basicSecret: cred.Secret}, status: 400, code: "invalid_request"},
		{name: "body too large", req: request{body: "grant_type=client_credentials&pad=" + strings.Repeat("x", oauth2.MaxBodyBytes), basicID: sa.ClientID(), basicSecret: cred.Secret}, status: 413, code: "invalid_request"},
		{name: "scope not held", req: request{form: grant("scope", "tenant-admin"), basicID: sa.ClientID(), basicSecret: cred.Secret}, status: 400, code: "invalid_scope"},
		{name: "scope with double space", req: request{form: grant("scope", "viewer  auditor"), basicID: sa.ClientID(), basicSecret: cred.Secret}, status: 400, code: "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := f.url
			if tt.base != "" {
				base = tt.base
			}
			res := post(t, base, oauth2.TokenPath, tt.req)
			if tt.ok == nil {
				wantOAuthError(t, res, tt.status, tt.code)
				if got := res.header.Get("WWW-Authenticate") != ""; got != tt.challenge {
					t.Fatalf("WWW-Authenticate %q, want present=%v", res.header.Get("WWW-Authenticate"), tt.challenge)
				}
				if tt.challenge && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Basic") {
					t.Fatalf("WWW-Authenticate %q, want Basic", res.header.Get("WWW-Authenticate"))
				}
				return
			}
			if res.status != http.StatusOK {
				t.Fatalf("status %d: %s", res.status, res.body)
			}
			if res.header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
				t.Fatalf("headers %v", res.header)
			}
			if res.json["token_type"] != "Bearer" || res.json["expires_in"] != float64(900) || res.json["scope"] != tt.ok.scope {
				t.Fatalf("response %s", res.body)
			}
			tok := res.json["access_token"].(string)
			f.secrets = append(f.secrets, tok)
			c, err := f.keys.Verify(tok, time.Now())
			testenv.Must(t, err, "verify issued token")
			if c.Subject != sa.ID() || c.ClientID != sa.ClientID() || c.Tenant != "acme" || c.CredentialID != tt.ok.cred || c.Scope != tt.ok.scope || c.ID == "" {
				t.Fatalf("claims %+v", c)
			}
			if got := c.Expiry.Sub(c.IssuedAt); got != auth.AccessTokenLifetime {
				t.Fatalf("lifetime %s", got)
			}
			p, err := f.dir.AccessTokenPrincipal(c, time.Now())
			testenv.Must(t, err, "principal of issued token")
			if p.ID != sa.ID() || len(p.Bindings) != len(strings.Fields(tt.ok.scope)) {
				t.Fatalf("principal %+v", p)
			}
		})
	}

	t.Run("GET is not allowed", func(t *testing.T) {
		resp, err := http.Get(f.url + oauth2.TokenPath)
		testenv.Must(t, err, "GET")
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

func basicHeader(id, secret string) string {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(id, secret)
	return r.Header.Get("Authorization")
}

func TestTokenLifetimeOption(t *testing.T) {
	f := newFixture(t)
	sa := f.serviceAccount(f.admin, authz.RoleViewer)
	cred := f.credential(f.admin, sa.ID(), nil)
	base := f.server(f.revoke, oauth2.WithTokenLifetime(time.Hour))
	res := post(t, base, oauth2.TokenPath, request{form: grant(), basicID: sa.ClientID(), basicSecret: cred.Secret})
	if res.status != http.StatusOK || res.json["expires_in"] != float64(3600) {
		t.Fatalf("got %d %s", res.status, res.body)
	}
	c, err := f.keys.Verify(res.json["access_token"].(string), time.Now())
	testenv.Must(t, err, "verify")
	if c.Expiry.Sub(c.IssuedAt) != time.Hour {
		t.Fatalf("lifetime %s", c.Expiry.Sub(c.IssuedAt))
	}
	// Tokens the keys would refuse are never issued: a lifetime beyond the
	// keys' maximum is a configuration error at start.
	if _, err := oauth2.New(f.dir, f.keys, f.revoke, oauth2.WithTokenLifetime(2*time.Hour)); !errors.Is(err, oauth2.ErrInvalidOption) {
		t.Fatalf("lifetime beyond the keys' maximum: err = %v, want ErrInvalidOption", err)
	}
}

func TestJWKSVerifiesIssuedTokens(t *testing.T) {
	f := newFixture(t)
	sa := f.serviceAccount(f.admin, authz.RoleViewer)
	cred := f.credential(f.admin, sa.ID(), nil)
	tok := f.token(f.url, sa.ClientID(), cred.Secret)

	resp, err := http.Get(f.url + oauth2.JWKSPath)
	testenv.Must(t, err, "GET JWKS")
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	testenv.Must(t, err, "read JWKS")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("JWKS: %d %v", resp.StatusCode, resp.Header)
	}
	if bytes.Contains(raw, []byte(`"d"`)) {
		t.Fatalf("JWKS holds private key material: %s", raw)
	}
	var set jose.JSONWebKeySet
	testenv.Must(t, json.Unmarshal(raw, &set), "decode JWKS")
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA})
	testenv.Must(t, err, "parse token")
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in JWKS %s", parsed.Headers[0].KeyID, raw)
	}
	var std jwt.Claims
	testenv.Must(t, parsed.Claims(keys[0].Key, &std), "verify with JWKS key")
	testenv.Must(t, std.Validate(jwt.Expected{Issuer: auth.DefaultIssuer, AnyAudience: jwt.Audience{auth.DefaultAudience}, Subject: sa.ID()}), "validate")
}

func TestIntrospect(t *testing.T) {
	f := newFixture(t)
	sa := f.serviceAccount(f.admin, authz.RoleViewer)
	cred := f.credential(f.admin, sa.ID(), nil)
	gone := f.credential(f.admin, sa.ID(), nil)
	peer := f.serviceAccount(f.admin)
	peerCred := f.credential(f.admin, peer.ID(), nil)
	rs := f.serviceAccount(f.admin, authz.RoleIntrospector)
	rsCred := f.credential(f.admin, rs.ID(), nil)
	beta := f.otherTenant()
	foreign := f.serviceAccount(beta, authz.RoleIntrospector)
	foreignCred := f.credential(beta, foreign.ID(), nil)

	live := f.token(f.url, sa.ClientID(), cred.Secret)
	ofGone := f.token(f.url, sa.ClientID(), gone.Secret)
	seq, err := f.cmds.DeleteCredential.Handle(context.Background(), commands.DeleteCredential{Meta: commands.Meta{Caller: f.admin}, ServiceAccountID: sa.ID(), CredentialID: gone.Credential.ID()})
	testenv.Must(t, err, "delete credential")
	f.sync(seq)
	ofForeign := f.token(f.url, foreign.ClientID(), foreignCred.Secret)
	later := f.server(f.revoke, oauth2.WithClock(func() time.Time { return time.Now().Add(auth.AccessTokenLifetime) }))

	self := request{basicID: sa.ClientID(), basicSecret: cred.Secret}
	peerAuth := request{basicID: peer.ClientID(), basicSecret: peerCred.Secret}
	rsAuth := request{basicID: rs.ClientID(), basicSecret: rsCred.Secret}
	foreignAuth := request{basicID: foreign.ClientID(), basicSecret: foreignCred.Secret}
	with := func(r request, token string) request {
		r.form = url.Values{"token": {token}}
		return r
	}
	tests := []struct {
		name   string
		base   string
		req    request
		active bool
	}{
		{"resource server", "", with(rsAuth, live), true},
		{"form authentication", "", request{form: url.Values{"token": {live}, "client_id": {rs.ClientID()}, "client_secret": {rsCred.Secret}}}, true},
		{"token_type_hint is ignored", "", request{form: url.Values{"token": {live}, "token_type_hint": {"refresh_token"}}, basicID: rs.ClientID(), basicSecret: rsCred.Secret}, true},
		{"own token without the right to introspect", "", with(self, live), false},
		{"same-tenant client without the right", "", with(peerAuth, live), false},
		{"other tenant's resource server", "", with(foreignAuth, live), false},
		{"other tenant's token", "", with(rsAuth, ofForeign), false},
		{"credential deleted", "", with(rsAuth, ofGone), false},
		{"expired", later, with(rsAuth, live), false},
		{"garbage", "", with(rsAuth, "not.a.token"), false},
		{"API token", "", with(rsAuth, f.secrets[0]), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := f.url
			if tt.base != "" {
				base = tt.base
			}
			res := post(t, base, oauth2.IntrospectPath, tt.req)
			if res.status != http.StatusOK || res.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("status %d headers %v: %s", res.status, res.header, res.body)
			}
			if res.json["active"] != tt.active {
				t.Fatalf("active = %v, want %v: %s", res.json["active"], tt.active, res.body)
			}
			if !tt.active {
				if len(res.json) != 1 {
					t.Fatalf("inactive response reveals more than active: %s", res.body)
				}
				return
			}
			c, err := f.keys.Verify(live, time.Now())
			testenv.Must(t, err, "verify")
			want := map[string]any{
				"client_id": sa.ClientID(), "sub": sa.ID(), "tenant": "acme", "scope": "viewer",
				"exp": float64(c.Expiry.Unix()), "iat": float64(c.IssuedAt.Unix()), "jti": c.ID, "token_type": "Bearer",
			}
			for k, v := range want {
				if res.json[k] != v {
					t.Fatalf("%s = %v, want %v in %s", k, res.json[k], v, res.body)
				}
			}
		})
	}

	errs := []struct {
		name   string
		req    request
		status int
		code   string
	}{
		{"no client authentication", request{form: url.Values{"token": {live}}}, 401, "invalid_client"},
		{"wrong secret", with(request{basicID: sa.ClientID(), basicSecret: peerCred.Secret}, live), 401, "invalid_client"},
		{"missing token", request{form: url.Values{}, basicID: sa.ClientID(), basicSecret: cred.Secret}, 400, "invalid_request"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			wantOAuthError(t, post(t, f.url, oauth2.IntrospectPath, tt.req), tt.status, tt.code)
		})
	}
}

func TestRevoke(t *testing.T) {
	f := newFixture(t)
	sa := f.serviceAccount(f.admin, authz.RoleViewer)
	cred := f.credential(f.admin, sa.ID(), nil)
	peer := f.serviceAccount(f.admin)
	peerCred := f.credential(f.admin, peer.ID(), nil)
	rs := f.serviceAccount(f.admin, authz.RoleIntrospector)
	rsCred := f.credential(f.admin, rs.ID(), nil)
	self := request{basicID: sa.ClientID(), basicSecret: cred.Secret}
	introspect := func(t *testing.T, tok string) bool {
		t.Helper()
		res := post(t, f.url, oauth2.IntrospectPath, request{form: url.Values{"token": {tok}}, basicID: rs.ClientID(), basicSecret: rsCred.Secret})
		return res.json["active"] == true
	}
	revoke := func(t *testing.T, base string, r request, tok string) response {
		t.Helper()
		r.form = url.Values{"token": {tok}}
		return post(t, base, oauth2.RevokePath, r)
	}

	t.Run("own token", func(t *testing.T) {
		tok := f.token(f.url, sa.ClientID(), cred.Secret)
		other := f.token(f.url, sa.ClientID(), cred.Secret)
		before := f.revokes.Load()
		res := revoke(t, f.url, self, tok)
		if res.status != http.StatusOK || len(res.body) != 0 {
			t.Fatalf("revoke: %d %s", res.status, res.body)
		}
		if f.revokes.Load() != before+1 {
			t.Fatalf("revoke function not called")
		}
		if introspect(t, tok) {
			t.Fatalf("revoked token is still active")
		}
		c, err := f.keys.Verify(tok, time.Now())
		testenv.Must(t, err, "signature stays valid")
		if _, err := f.dir.AccessTokenPrincipal(c, time.Now()); !errors.Is(err, query.ErrTokenRevoked) {
			t.Fatalf("directory: err = %v, want ErrTokenRevoked", err)
		}
		if !introspect(t, other) {
			t.Fatalf("revoking one token revoked another")
		}
		// Revoking again is a no-op that records nothing.
		if res := revoke(t, f.url, self, tok); res.status != http.StatusOK {
			t.Fatalf("second revoke: %d %s", res.status, res.body)
		}
		if f.revokes.Load() != before+1 {
			t.Fatalf("already revoked token was revoked again")
		}
	})

	t.Run("another client's token is left alone", func(t *testing.T) {
		tok := f.token(f.url, sa.ClientID(), cred.Secret)
		before := f.revokes.Load()
		res := revoke(t, f.url, request{basicID: peer.ClientID(), basicSecret: peerCred.Secret}, tok)
		if res.status != http.StatusOK {
			t.Fatalf("status %d %s", res.status, res.body)
		}
		if f.revokes.Load() != before || !introspect(t, tok) {
			t.Fatalf("peer revoked a token it does not hold")
		}
	})

	t.Run("invalid tokens answer 200", func(t *testing.T) {
		for _, tok := range []string{"garbage", "a.b.c", auth.NewSecret(auth.PrefixAPIToken)} {
			if res := revoke(t, f.url, self, tok); res.status != http.StatusOK {
				t.Fatalf("token %q: %d %s", tok, res.status, res.body)
			}
		}
	})

	errs := []struct {
		name   string
		req    request
		status int
		code   string
	}{
		{"no client authentication", request{form: url.Values{"token": {"x"}}}, 401, "invalid_client"},
		{"wrong secret", request{form: url.Values{"token": {"x"}}, basicID: sa.ClientID(), basicSecret: peerCred.Secret}, 401, "invalid_client"},
		{"missing token", request{form: url.Values{}, basicID: sa.ClientID(), basicSecret: cred.Secret}, 400, "invalid_request"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			wantOAuthError(t, post(t, f.url, oauth2.RevokePath, tt.req), tt.status, tt.code)
		})
	}

	t.Run("failing revoke function answers 503", func(t *testing.T) {
		broken := f.server(func(context.Context, auth.Principal, auth.AccessClaims) error {
			return commands.ErrUnavailable
		}, oauth2.WithLogger(slog.New(slog.DiscardHandler)))
		tok := f.token(f.url, sa.ClientID(), cred.Secret)
		res := revoke(t, broken, self, tok)
		wantOAuthError(t, res, http.StatusServiceUnavailable, "temporarily_unavailable")
		if !introspect(t, tok) {
			t.Fatalf("token inactive although the revocation failed")
		}
	})

	t.Run("not found from revoke function is success", func(t *testing.T) {
		gone := f.server(func(context.Context, auth.Principal, auth.AccessClaims) error {
			return &commands.Error{Kind: commands.ErrNotFound, Message: "service account not found"}
		})
		tok := f.token(f.url, sa.ClientID(), cred.Secret)
		if res := revoke(t, gone, self, tok); res.status != http.StatusOK {
			t.Fatalf("status %d %s", res.status, res.body)
		}
	})
}

// TestNoSecretInEvents runs every flow that handles a secret and then reads
// the whole log: no client secret, API token or access token may appear.
func TestNoSecretInEvents(t *testing.T) {
	f := newFixture(t)
	sa := f.serviceAccount(f.admin, authz.RoleViewer)
	cred := f.credential(f.admin, sa.ID(), nil)
	second := f.credential(f.admin, sa.ID(), nil)
	beta := f.otherTenant()
	foreign := f.serviceAccount(beta)
	f.credential(beta, foreign.ID(), nil)
	tok := f.token(f.url, sa.ClientID(), cred.Secret)
	f.token(f.url, sa.ClientID(), second.Secret)
	post(t, f.url, oauth2.IntrospectPath, request{form: url.Values{"token": {tok}}, basicID: sa.ClientID(), basicSecret: cred.Secret})
	if res := post(t, f.url, oauth2.RevokePath, request{form: url.Values{"token": {tok}}, basicID: sa.ClientID(), basicSecret: cred.Secret}); res.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", res.status, res.body)
	}
	seq, err := f.cmds.DeleteCredential.Handle(context.Background(), commands.DeleteCredential{Meta: commands.Meta{Caller: f.admin}, ServiceAccountID: sa.ID(), CredentialID: second.Credential.ID()})
	testenv.Must(t, err, "delete credential")
	f.sync(seq)

	// Needles: each secret whole, and the parts that identify it alone (a
	// token's signature; a secret's random body without prefix).
	var needles []string
	for _, s := range f.secrets {
		needles = append(needles, s)
		if parts := strings.Split(s, "."); len(parts) == 3 {
			needles = append(needles, parts[2])
		} else if i := strings.IndexByte(s, '_'); i > 0 {
			needles = append(needles, s[i+1:])
		}
	}
	if len(f.secrets) < 7 {
		t.Fatalf("scenario collected only %d secrets", len(f.secrets))
	}
	types := map[string]bool{}
	n := 0
	err = f.store.Read(context.Background(), events.Filter{}, func(env events.Envelope) error {
		n++
		types[env.Type] = true
		whole, err := json.Marshal(env)
		if err != nil {
			return err
		}
		for _, needle := range needles {
			if bytes.Contains(env.Data, []byte(needle)) || bytes.Contains(whole, []byte(needle)) {
				t.Errorf("event %d (%s) contains a secret", env.Sequence, env.Type)
			}
		}
		return nil
	})
	testenv.Must(t, err, "read log")
	for _, want := range []string{"iam.service_account.credential_created", "iam.service_account.access_token_revoked", "iam.user.api_token_issued"} {
		if !types[want] {
			t.Fatalf("scenario wrote no %s event; read %d events of types %v", want, n, types)
		}
	}
}

func TestNewValidatesOptions(t *testing.T) {
	dir := query.NewDirectory()
	keys, err := auth.LoadKeys(context.Background(), testenv.DB(t), auth.WithKEK(testKEK(t)), auth.WithMaxLifetime(24*time.Hour))
	testenv.Must(t, err, "keys")
	revoke := func(context.Context, auth.Principal, auth.AccessClaims) error { return nil }
	tests := []struct {
		name   string
		dir    *query.Directory
		keys   *auth.Keys
		revoke oauth2.RevokeFunc
		opts   []oauth2.Option
		ok     bool
	}{
		{"defaults", dir, keys, revoke, nil, true},
		{"minimum lifetime", dir, keys, revoke, []oauth2.Option{oauth2.WithTokenLifetime(time.Minute)}, true},
		{"maximum lifetime", dir, keys, revoke, []oauth2.Option{oauth2.WithTokenLifetime(24 * time.Hour)}, true},
		{"lifetime too short", dir, keys, revoke, []oauth2.Option{oauth2.WithTokenLifetime(59 * time.Second)}, false},
		{"lifetime too long", dir, keys, revoke, []oauth2.Option{oauth2.WithTokenLifetime(24*time.Hour + time.Second)}, false},
		{"fractional lifetime", dir, keys, revoke, []oauth2.Option{oauth2.WithTokenLifetime(90*time.Second + time.Millisecond)}, false},
		{"nil clock", dir, keys, revoke, []oauth2.Option{oauth2.WithClock(nil)}, false},
		{"nil logger", dir, keys, revoke, []oauth2.Option{oauth2.WithLogger(nil)}, false},
		{"nil directory", nil, keys, revoke, nil, false},
		{"nil keys", dir, nil, revoke, nil, false},
		{"nil revoke", dir, keys, nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := oauth2.New(tt.dir, tt.keys, tt.revoke, tt.opts...)
			if tt.ok {
				testenv.Must(t, err, "new")
				return
			}
			if !errors.Is(err, oauth2.ErrInvalidOption) {
				t.Fatalf("err = %v, want ErrInvalidOption", err)
			}
		})
	}
}

func TestFloor(t *testing.T) {
	secret := auth.NewSecret(auth.PrefixClientSecret)
	h, err := oauth2.NewFloor("khc-floor", secret)
	testenv.Must(t, err, "floor")
	ts := httptest.NewServer(h)
	defer ts.Close()
	tests := []struct {
		name   string
		id     string
		secret string
		status int
	}{
		{"valid", "khc-floor", secret, 200},
		{"wrong secret", "khc-floor", auth.NewSecret(auth.PrefixClientSecret), 401},
		{"wrong client", "khc-other", secret, 401},
		{"no credentials", "", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := post(t, ts.URL, "/", request{form: grant(), basicID: tt.id, basicSecret: tt.secret})
			if res.status != tt.status {
				t.Fatalf("status %d %s", res.status, res.body)
			}
			if tt.status != 200 {
				wantOAuthError(t, res, tt.status, "invalid_client")
				return
			}
			if res.json["token_type"] != "Bearer" || res.json["expires_in"] != float64(900) {
				t.Fatalf("response %s", res.body)
			}
			tok, err := jwt.ParseSigned(res.json["access_token"].(string), []jose.SignatureAlgorithm{jose.EdDSA})
			testenv.Must(t, err, "parse")
			var claims map[string]any
			testenv.Must(t, tok.UnsafeClaimsWithoutVerification(&claims), "claims")
			for _, k := range []string{"iss", "sub", "aud", "tenant", "client_id", "cred_id", "jti", "iat", "nbf", "exp"} {
				if _, ok := claims[k]; !ok {
					t.Fatalf("claim %s missing from %v", k, claims)
				}
			}
		})
	}
	if _, err := oauth2.NewFloor("", secret); !errors.Is(err, oauth2.ErrInvalidOption) {
		t.Fatalf("empty client id: err = %v", err)
	}
}

// benchTokens drives a token endpoint over loopback HTTP from parallel
// clients with keep-alive, as the load generator does.
func benchTokens(b *testing.B, h http.Handler, clientID, secret string) {
	b.Helper()
	ts := httptest.NewServer(h)
	defer ts.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	body := []byte("grant_type=client_credentials")
	auth := basicHeader(clientID, secret)
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, _ := http.NewRequest(http.MethodPost, ts.URL+oauth2.TokenPath, bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Authorization", auth)
			resp, err := hc.Do(r)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

func BenchmarkTokenEndpoint(b *testing.B) {
	dir := query.NewDirectory()
	secret := auth.NewSecret(auth.PrefixClientSecret)
	apply := func(seq uint64, e events.Event) {
		env := events.New("acme", "01bench", events.System, "", e)
		env.Sequence = seq
		dir.Apply(env)
	}
	apply(1, events.ServiceAccountCreated{ClientID: "khc-01bench", Scope: events.Scope{Level: events.ScopeTenant, Target: "acme"}, Roles: []string{"viewer"}, Status: "active"})
	apply(2, events.CredentialCreated{CredentialID: "c1", Verifier: auth.Verifier(secret), ExpiresAt: time.Now().Add(time.Hour)})
	keys, err := auth.LoadKeys(context.Background(), testenv.DB(b), auth.WithKEK(testKEK(b)))
	testenv.Must(b, err, "keys")
	srv, err := oauth2.New(dir, keys, func(context.Context, auth.Principal, auth.AccessClaims) error { return nil })
	testenv.Must(b, err, "server")
	r := mux.NewRouter()
	srv.Register(r)
	benchTokens(b, r, "khc-01bench", secret)
}

func BenchmarkFloor(b *testing.B) {
	secret := auth.NewSecret(auth.PrefixClientSecret)
	h, err := oauth2.NewFloor("khc-01bench", secret)
	testenv.Must(b, err, "floor")
	benchTokens(b, h, "khc-01bench", secret)
}

// Failed client authentications are counted, logged with the client id
// (never the secret) and, past the free ones, answered 429 with
// Retry-After, even for the right secret, until the delay is over; a
// success then forgets the client's failures. Another client from another
// address is not slowed.
func TestFailedClientAuthenticationsBackOff(t *testing.T) {
	f := newFixture(t)
	sa := f.serviceAccount(f.admin, authz.RoleViewer)
	cred := f.credential(f.admin, sa.ID(), nil)
	other := f.serviceAccount(f.admin, authz.RoleViewer)
	otherCred := f.credential(f.admin, other.ID(), nil)

	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	var logs testenv.SyncBuffer
	reg := prometheus.NewRegistry()
	policy := auth.ThrottlePolicy{Free: 3, Window: time.Minute, Base: 2 * time.Second, Max: 8 * time.Second, Keys: 100}
	roomy := auth.ThrottlePolicy{Free: 1000, Window: time.Minute, Base: time.Second, Max: time.Second, Keys: 100}
	base := f.server(f.revoke, oauth2.WithClock(now), oauth2.WithRegistry(reg), oauth2.WithThrottles(policy, roomy),
		oauth2.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	const wrong = "khcs_definitely-not-the-secret-0123456789"
	try := func(secret string) response {
		t.Helper()
		return post(t, base, oauth2.TokenPath, request{form: grant(), basicID: sa.ClientID(), basicSecret: secret})
	}
	for i := range 3 {
		if res := try(wrong); res.status != http.StatusUnauthorized {
			t.Fatalf("free failure %d: %d %s", i+1, res.status, res.body)
		}
	}
	if res := try(wrong); res.status != http.StatusUnauthorized {
		t.Fatalf("the failure past the free ones is still answered: %d %s", res.status, res.body)
	}
	res := try(cred.Secret)
	if res.status != http.StatusTooManyRequests || res.json["error"] != "temporarily_unavailable" || res.header.Get("Retry-After") != "2" {
		t.Fatalf("right secret while blocked: %d %v %s", res.status, res.header, res.body)
	}
	// Another client is not slowed by this one's failures.
	if res := post(t, base, oauth2.TokenPath, request{form: grant(), basicID: other.ClientID(), basicSecret: otherCred.Secret}); res.status != http.StatusOK {
		t.Fatalf("other client: %d %s", res.status, res.body)
	}
	// Introspection and revocation authenticate through the same check.
	if res := post(t, base, oauth2.IntrospectPath, request{form: url.Values{"token": {"x"}}, basicID: sa.ClientID(), basicSecret: cred.Secret}); res.status != http.StatusTooManyRequests {
		t.Fatalf("introspect while blocked: %d %s", res.status, res.body)
	}
	clock.Add(int64(2 * time.Second))
	if res := try(wrong); res.status != http.StatusUnauthorized {
		t.Fatalf("after the delay: %d %s", res.status, res.body)
	}
	if res := try(cred.Secret); res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") != "4" {
		t.Fatalf("the next delay doubles: %d %v %s", res.status, res.header, res.body)
	}
	clock.Add(int64(8 * time.Second))
	if res := try(cred.Secret); res.status != http.StatusOK {
		t.Fatalf("right secret after the delay: %d %s", res.status, res.body)
	}
	if res := try(wrong); res.status != http.StatusUnauthorized {
		t.Fatalf("a success forgets the failures: %d %s", res.status, res.body)
	}

	if got := counterValue(t, reg, "keyhold_oauth2_client_auth_failures_total", oauth2.TokenPath); got != 6 {
		t.Fatalf("failures counted %v, want 6", got)
	}
	if got := counterValue(t, reg, "keyhold_oauth2_client_auth_throttled_total", oauth2.TokenPath); got != 2 {
		t.Fatalf("throttled counted %v, want 2", got)
	}
	out := logs.String()
	if !strings.Contains(out, `"level":"INFO","msg":"oauth2 client authentication failed"`) || !strings.Contains(out, sa.ClientID()) {
		t.Fatalf("no INFO line naming the client:\n%s", out)
	}
	if strings.Contains(out, wrong) || strings.Contains(out, cred.Secret) {
		t.Fatalf("a secret reached the log:\n%s", out)
	}
}

// counterValue is the value of counter name{path} in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name, path string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	testenv.Must(t, err, "gather")
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "path" && l.GetValue() == path {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{path=%q} in the registry", name, path)
	return 0
}

// An address that keeps failing is slowed down whatever client ids it
// tries, and a success from it does not forgive its failures.
func TestFailingAddressBacksOff(t *testing.T) {
	f := newFixture(t)
	sa := f.serviceAccount(f.admin, authz.RoleViewer)
	cred := f.credential(f.admin, sa.ID(), nil)
	roomy := auth.ThrottlePolicy{Free: 1000, Window: time.Minute, Base: time.Second, Max: time.Second, Keys: 100}
	strict := auth.ThrottlePolicy{Free: 2, Window: time.Minute, Base: time.Minute, Max: time.Minute, Keys: 100}
	base := f.server(f.revoke, oauth2.WithThrottles(roomy, strict), oauth2.WithLogger(slog.New(slog.DiscardHandler)))
	for i := range 2 {
		if res := post(t, base, oauth2.TokenPath, request{form: grant(), basicID: fmt.Sprintf("khc-01m8guess%013d", i), basicSecret: "wrong"}); res.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %s", i, res.status, res.body)
		}
	}
	if res := post(t, base, oauth2.TokenPath, request{form: grant(), basicID: sa.ClientID(), basicSecret: cred.Secret}); res.status != http.StatusOK {
		t.Fatalf("a success within the free failures: %d %s", res.status, res.body)
	}
	if res := post(t, base, oauth2.TokenPath, request{form: grant(), basicID: "khc-01m8guessx000000000000", basicSecret: "wrong"}); res.status != http.StatusUnauthorized {
		t.Fatalf("third guess: %d %s", res.status, res.body)
	}
	res := post(t, base, oauth2.TokenPath, request{form: grant(), basicID: sa.ClientID(), basicSecret: cred.Secret})
	if res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") != "60" {
		t.Fatalf("the address is slowed for every client: %d %v %s", res.status, res.header, res.body)
	}
}

// The key set served follows key reloads: a key added to signing_keys is
// published once the keys reload, before any token is signed with it
// (auth.KeyPropagation), without a restart.
func TestJWKSFollowsKeyReloads(t *testing.T) {
	f := newFixture(t)
	kids := func() []string {
		t.Helper()
		resp, err := http.Get(f.url + oauth2.JWKSPath)
		testenv.Must(t, err, "GET JWKS")
		defer resp.Body.Close()
		var set struct {
			Keys []struct {
				KID string `json:"kid"`
			} `json:"keys"`
		}
		testenv.Must(t, json.NewDecoder(resp.Body).Decode(&set), "decode JWKS")
		var out []string
		for _, k := range set.Keys {
			out = append(out, k.KID)
		}
		slices.Sort(out)
		return out
	}
	before := kids()
	if len(before) != 1 {
		t.Fatalf("JWKS before: %v", before)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	testenv.Must(t, err, "generate")
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	testenv.Must(t, err, "encode")
	_, err = f.keysDB.Exec(`INSERT INTO signing_keys (kid, private_key) VALUES ('added', $1)`, der)
	testenv.Must(t, err, "insert a key")
	testenv.Must(t, f.keys.Reload(context.Background(), f.keysDB), "reload")
	want := []string{before[0], "added"}
	slices.Sort(want)
	if got := kids(); !slices.Equal(got, want) {
		t.Fatalf("JWKS after the reload: %v, want %v and added", got, before)
	}
}

// A verifier may cache the key set only as long as a new key is listed
// before tokens are signed with it; a longer max-age makes it refuse
// valid tokens after a rotation.
func TestJWKSCacheLifetimeFitsRotation(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Get(f.url + oauth2.JWKSPath)
	testenv.Must(t, err, "GET JWKS")
	resp.Body.Close()
	cc := resp.Header.Get("Cache-Control")
	v, ok := strings.CutPrefix(cc, "public, max-age=")
	if !ok {
		t.Fatalf("Cache-Control %q, want public, max-age=N", cc)
	}
	secs, err := strconv.Atoi(v)
	testenv.Must(t, err, "max-age %q", v)
	if lead := auth.KeyPropagation - auth.KeyReload; time.Duration(secs)*time.Second > lead || secs <= 0 {
		t.Fatalf("max-age %ds: a new key is listed only %s before it signs", secs, lead)
	}
}

func TestIssuerURL(t *testing.T) {
	tests := []struct {
		iss     string
		notURL  bool
		wantErr bool
	}{
		{"keyhold", true, false},
		{"https://iam.example.test", false, false},
		{"https://iam.example.test/tenant-a", false, false},
		{"http://127.0.0.1:8080", false, false},
		{"http://[::1]:8080", false, false},
		{"http://iam.example.test", false, true},
		{"ftp://iam.example.test", false, true},
		{"https://iam.example.test?x=1", false, true},
		{"https://iam.example.test#top", false, true},
		{"https://user@iam.example.test", false, true},
		{"https://", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.iss, func(t *testing.T) {
			u, err := oauth2.IssuerURL(tt.iss)
			switch {
			case tt.notURL:
				if !errors.Is(err, oauth2.ErrNotURL) {
					t.Fatalf("err = %v, want ErrNotURL", err)
				}
			case tt.wantErr:
				if err == nil || errors.Is(err, oauth2.ErrNotURL) {
					t.Fatalf("err = %v, want a bad-URL error", err)
				}
			case err != nil || u.String() != tt.iss:
				t.Fatalf("IssuerURL = %v, %v; want %s", u, err, tt.iss)
			}
		})
	}
}

// metadataServer serves the OAuth2 endpoints with keys of another issuer.
func metadataServer(t *testing.T, f *fixture, issuer string) (string, *auth.Keys) {
	t.Helper()
	keys, err := auth.LoadKeys(context.Background(), testenv.DB(t), auth.WithKEK(testKEK(t)), auth.WithIssuer(issuer))
	testenv.Must(t, err, "keys")
	srv, err := oauth2.New(f.dir, keys, f.revoke)
	testenv.Must(t, err, "new server")
	r := mux.NewRouter()
	srv.Register(r)
	ts := httptest.NewServer(r)
	t.Cleanup(ts.Close)
	return ts.URL, keys
}

// The metadata (RFC 8414) names the issuer tokens carry and endpoints
// under it; with an issuer that is no URL, endpoints under the address
// the client used.
func TestAuthorizationServerMetadata(t *testing.T) {
	f := newFixture(t)
	sa := f.serviceAccount(f.admin, "viewer")
	secret := f.credential(f.admin, sa.ID(), nil).Secret
	withURL, urlKeys := metadataServer(t, f, "https://iam.example.test/keyhold")
	tests := []struct {
		name, url, path, issuer, base string
	}{
		{"default issuer", f.url, oauth2.MetadataPath, auth.DefaultIssuer, f.url},
		{"issuer URL", withURL, oauth2.MetadataPath, "https://iam.example.test/keyhold", "https://iam.example.test/keyhold"},
		{"issuer URL, path suffix of RFC 8414 3", withURL, oauth2.MetadataPath + "/keyhold", "https://iam.example.test/keyhold", "https://iam.example.test/keyhold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(tt.url + tt.path)
			testenv.Must(t, err, "GET metadata")
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			var got map[string]any
			testenv.Must(t, json.NewDecoder(resp.Body).Decode(&got), "decode")
			want := map[string]any{
				"issuer":                                tt.issuer,
				"token_endpoint":                        tt.base + oauth2.TokenPath,
				"jwks_uri":                              tt.base + oauth2.JWKSPath,
				"introspection_endpoint":                tt.base + oauth2.IntrospectPath,
				"revocation_endpoint":                   tt.base + oauth2.RevokePath,
				"grant_types_supported":                 []any{"client_credentials"},
				"response_types_supported":              []any{},
				"token_endpoint_auth_methods_supported": []any{"client_secret_basic", "client_secret_post"},
				"introspection_endpoint_auth_methods_supported": []any{"client_secret_basic", "client_secret_post"},
				"revocation_endpoint_auth_methods_supported":    []any{"client_secret_basic", "client_secret_post"},
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("metadata\n got %v\nwant %v", got, want)
			}
			// Derived from the Host, the answer must not be shared by caches.
			cc := resp.Header.Get("Cache-Control")
			if derived := tt.issuer == auth.DefaultIssuer; derived && (cc != "no-store" || resp.Header.Get("Vary") != "Host") || !derived && !strings.HasPrefix(cc, "public") {
				t.Fatalf("Cache-Control %q, Vary %q", cc, resp.Header.Get("Vary"))
			}
		})
	}
	t.Run("issuer of tokens", func(t *testing.T) {
		// Tokens carry the issuer the metadata names.
		tok := f.token(withURL, sa.ClientID(), secret)
		claims, err := urlKeys.Verify(tok, time.Now())
		testenv.Must(t, err, "verify")
		if claims.Issuer != "https://iam.example.test/keyhold" {
			t.Fatalf("token issuer %q, want the issuer URL", claims.Issuer)
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		resp, err := http.Head(withURL + oauth2.MetadataPath)
		testenv.Must(t, err, "HEAD metadata")
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ContentLength <= 0 {
			t.Fatalf("HEAD: status %d, length %d", resp.StatusCode, resp.ContentLength)
		}
	})
	t.Run("POST", func(t *testing.T) {
		resp, err := http.Post(withURL+oauth2.MetadataPath, "application/json", nil)
		testenv.Must(t, err, "POST metadata")
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("POST: status %d, want 405", resp.StatusCode)
		}
	})
}
