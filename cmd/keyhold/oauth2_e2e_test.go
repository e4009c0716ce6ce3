package main

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/internal/testenv"
)

func TestOAuth2(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	ops := h.createSA(t, a.token, tenantSA("ops", "tenant-admin", "viewer"))
	c := h.createCredential(t, a.token, ops.ID, nil)
	secret := *c.ClientSecret
	other, otherToken := h.principal(t, a.token, "other", "tenant-admin")

	type token struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
		Scope       string `json:"scope"`
	}
	issued := func(t *testing.T, r httpResp) token {
		t.Helper()
		expectStatus(t, r, http.StatusOK, "token")
		if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
			t.Errorf("token httpResp cacheable: %v", r.Header)
		}
		var tok token
		r.decode(t, &tok)
		h.remember(tok.AccessToken, "access token")
		if tok.TokenType != "Bearer" || tok.ExpiresIn != 900 || tok.AccessToken == "" {
			t.Fatalf("token httpResp %s", r.Body)
		}
		return tok
	}
	grantForm := url.Values{"grant_type": {"client_credentials"}}
	var basic, form token
	t.Run("token via Basic", func(t *testing.T) {
		basic = issued(t, h.form(t, "/oauth2/token", grantForm, ops.ClientID, secret))
		if basic.Scope != "tenant-admin viewer" {
			t.Errorf("scope %q", basic.Scope)
		}
		expectStatus(t, h.do(t, http.MethodGet, saBase, basic.AccessToken, nil), http.StatusOK, "API with the Basic token")
	})
	t.Run("token via form", func(t *testing.T) {
		form = issued(t, h.grant(t, ops.ClientID, secret))
		expectStatus(t, h.do(t, http.MethodGet, saBase, form.AccessToken, nil), http.StatusOK, "API with the form token")
	})
	t.Run("narrowed scope", func(t *testing.T) {
		v := url.Values{"grant_type": {"client_credentials"}, "scope": {"viewer"}}
		tok := issued(t, h.form(t, "/oauth2/token", v, ops.ClientID, secret))
		if tok.Scope != "viewer" {
			t.Errorf("scope %q", tok.Scope)
		}
		checkProblem(t, h.do(t, http.MethodGet, saBase, tok.AccessToken, nil), http.StatusForbidden)
	})
	t.Run("JWKS verifies", func(t *testing.T) {
		r := h.do(t, http.MethodGet, "/.well-known/jwks.json", "", nil)
		expectStatus(t, r, http.StatusOK, "jwks")
		if ct := r.Header.Get("Content-Type"); ct != "application/jwk-set+json" {
			t.Errorf("Content-Type %q", ct)
		}
		var set jose.JSONWebKeySet
		r.decode(t, &set)
		if len(set.Keys) == 0 {
			t.Fatal("empty key set")
		}
		for _, k := range set.Keys {
			if !k.IsPublic() || k.Algorithm != string(jose.EdDSA) {
				t.Errorf("key %s: public %v, alg %s", k.KeyID, k.IsPublic(), k.Algorithm)
			}
		}
		for _, tok := range []string{basic.AccessToken, form.AccessToken} {
			sig, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA})
			if err != nil {
				t.Fatalf("parse token: %v", err)
			}
			keys := set.Key(sig.Signatures[0].Header.KeyID)
			if len(keys) != 1 {
				t.Fatalf("kid %q not in the key set", sig.Signatures[0].Header.KeyID)
			}
			payload, err := sig.Verify(keys[0])
			if err != nil {
				t.Fatalf("token does not verify with the JWKS: %v", err)
			}
			var claims struct {
				Iss      string `json:"iss"`
				Sub      string `json:"sub"`
				Tenant   string `json:"tenant"`
				ClientID string `json:"client_id"`
				CredID   string `json:"cred_id"`
				Scope    string `json:"scope"`
				Iat      int64  `json:"iat"`
				Exp      int64  `json:"exp"`
			}
			if err := json.Unmarshal(payload, &claims); err != nil {
				t.Fatal(err)
			}
			if claims.Sub != ops.ID || claims.Tenant != "acme" || claims.ClientID != ops.ClientID || claims.CredID != c.ID ||
				claims.Exp-claims.Iat != 900 || claims.Iss == "" || claims.Scope != "tenant-admin viewer" {
				t.Errorf("claims %+v", claims)
			}
			if d := time.Since(time.Unix(claims.Iat, 0)); d < -time.Minute || d > time.Minute {
				t.Errorf("iat %d is not about now", claims.Iat)
			}
		}
		// A tampered token verifies nowhere.
		tampered := form.AccessToken[:len(form.AccessToken)-4] + flip(form.AccessToken[len(form.AccessToken)-4:])
		checkProblem(t, h.do(t, http.MethodGet, saBase, tampered, nil), http.StatusUnauthorized)
	})
	t.Run("grant failures", func(t *testing.T) {
		wrong := secret[:len(secret)-1] + flip(secret[len(secret)-1:])
		for _, tc := range []struct {
			name        string
			form        url.Values
			basicID     string
			basicSecret string
			status      int
			code        string
			basic       bool
		}{
			{"wrong secret, Basic", grantForm, ops.ClientID, wrong, 401, "invalid_client", true},
			{"wrong secret, form", url.Values{"grant_type": {"client_credentials"}, "client_id": {ops.ClientID}, "client_secret": {wrong}}, "", "", 401, "invalid_client", false},
			{"other client's secret", grantForm, other.ClientID, secret, 401, "invalid_client", true},
			{"unknown client", grantForm, "khc-" + strings.Repeat("0", 26), secret, 401, "invalid_client", true},
			{"no credentials", grantForm, "", "", 401, "invalid_client", false},
			{"no grant type", url.Values{}, ops.ClientID, secret, 400, "invalid_request", false},
			{"password grant", url.Values{"grant_type": {"password"}}, ops.ClientID, secret, 400, "unsupported_grant_type", false},
			{"scope not held", url.Values{"grant_type": {"client_credentials"}, "scope": {"auditor"}}, ops.ClientID, secret, 400, "invalid_scope", false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := h.form(t, "/oauth2/token", tc.form, tc.basicID, tc.basicSecret)
				var e struct {
					Error string `json:"error"`
				}
				r.decode(t, &e)
				if r.Status != tc.status || e.Error != tc.code {
					t.Fatalf("%s, want %d %s", r, tc.status, tc.code)
				}
				if tc.basic && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
					t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
				}
			})
		}
	})

	introspect := func(t *testing.T, clientID, clientSecret, tok string) map[string]any {
		t.Helper()
		r := h.form(t, "/oauth2/introspect", url.Values{"token": {tok}}, clientID, clientSecret)
		expectStatus(t, r, http.StatusOK, "introspect")
		return r.object(t)
	}
	t.Run("introspect", func(t *testing.T) {
		got := introspect(t, ops.ClientID, secret, form.AccessToken)
		if got["active"] != true || got["client_id"] != ops.ClientID || got["sub"] != ops.ID || got["tenant"] != "acme" ||
			got["scope"] != "tenant-admin viewer" || got["token_type"] != "Bearer" || got["jti"] == nil || got["exp"] == nil {
			t.Fatalf("introspection %v", got)
		}
		for _, tok := range []string{"garbage", form.AccessToken + "x", a.token} {
			if got := introspect(t, ops.ClientID, secret, tok); len(got) != 1 || got["active"] != false {
				t.Fatalf("introspection of a bad token: %v", got)
			}
		}
		r := h.form(t, "/oauth2/introspect", url.Values{"token": {form.AccessToken}}, ops.ClientID, "khcs_wrong")
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("introspect with a bad client: %s", r)
		}
	})
	t.Run("revoke", func(t *testing.T) {
		// Revoking another client's token is a no-op.
		r := h.form(t, "/oauth2/revoke", url.Values{"token": {otherToken}}, ops.ClientID, secret)
		expectStatus(t, r, http.StatusOK, "revoke another client's token")
		expectStatus(t, h.do(t, http.MethodGet, saBase, otherToken, nil), http.StatusOK, "other's token survives")

		r = h.form(t, "/oauth2/revoke", url.Values{"token": {form.AccessToken}}, ops.ClientID, secret)
		expectStatus(t, r, http.StatusOK, "revoke")
		if len(r.Body) != 0 {
			t.Errorf("revoke body %q", r.Body)
		}
		res := h.do(t, http.MethodGet, saBase, form.AccessToken, nil)
		checkProblem(t, res, http.StatusUnauthorized)
		if w := res.Header.Get("WWW-Authenticate"); !strings.Contains(w, "invalid_token") {
			t.Errorf("WWW-Authenticate %q", w)
		}
		if got := introspect(t, ops.ClientID, secret, form.AccessToken); got["active"] != false {
			t.Fatalf("revoked token introspects %v", got)
		}
		expectStatus(t, h.do(t, http.MethodGet, saBase, basic.AccessToken, nil), http.StatusOK, "the other token of the same client")
		expectStatus(t, h.form(t, "/oauth2/revoke", url.Values{"token": {form.AccessToken}}, ops.ClientID, secret), http.StatusOK, "revoke again")
		if n := len(h.auditAll(t, a.token, "type=iam.service_account.access_token_revoked")); n != 1 {
			t.Errorf("%d revocation events, want 1", n)
		}
	})
	t.Run("disabled account", func(t *testing.T) {
		expectStatus(t, h.do(t, http.MethodPatch, saBase+"/"+ops.ID, a.token, map[string]any{"status": "disabled"}), http.StatusOK, "disable")
		g := h.grant(t, ops.ClientID, secret)
		if g.Status != http.StatusUnauthorized || !strings.Contains(string(g.Body), `"error":"invalid_client"`) {
			t.Fatalf("grant for a disabled account: %s", g)
		}
		checkProblem(t, h.do(t, http.MethodGet, saBase, basic.AccessToken, nil), http.StatusUnauthorized)
		oc := h.createCredential(t, a.token, other.ID, nil)
		if got := introspect(t, other.ClientID, *oc.ClientSecret, basic.AccessToken); got["active"] != false {
			t.Fatalf("a disabled account's token introspects %v", got)
		}
		expectStatus(t, h.do(t, http.MethodPatch, saBase+"/"+ops.ID, a.token, map[string]any{"status": "active"}), http.StatusOK, "enable")
		issued(t, h.grant(t, ops.ClientID, secret))
	})
}

// flip changes every character of s to another valid base64url character.
func flip(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
	}
	return string(b)
}

// TestJWKSFollowsKeyRotation rotates the signing key of a running server
// the documented way (docs/architecture.md, Signing keys) and checks what
// an outside verifier sees: the new key is published once the server
// reloads, before any token is signed with it, and the tokens signed with
// it afterwards verify against the published set, without a restart.
func TestJWKSFollowsKeyRotation(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.keyReload = 50 * time.Millisecond
	h := startServer(t, cfg)
	a := h.bootstrap(t, "acme")
	ops := h.createSA(t, a.token, tenantSA("ops", "viewer"))
	secret := *h.createCredential(t, a.token, ops.ID, nil).ClientSecret

	jwks := func(t *testing.T) *jose.JSONWebKeySet {
		t.Helper()
		r := h.do(t, http.MethodGet, "/.well-known/jwks.json", "", nil)
		expectStatus(t, r, http.StatusOK, "jwks")
		var set jose.JSONWebKeySet
		r.decode(t, &set)
		return &set
	}
	// signedBy returns the kid of a newly issued token, after checking it
	// verifies against the key set served now.
	signedBy := func(t *testing.T) string {
		t.Helper()
		tok := h.accessToken(t, ops.ClientID, secret)
		sig, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA})
		testenv.Must(t, err, "parse token")
		kid := sig.Signatures[0].Header.KeyID
		keys := jwks(t).Key(kid)
		if len(keys) != 1 {
			t.Fatalf("token signed with kid %q, which the served key set lacks", kid)
		}
		if _, err := sig.Verify(keys[0]); err != nil {
			t.Fatalf("token does not verify with the served key set: %v", err)
		}
		return kid
	}
	eventually := func(t *testing.T, what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("after 10s: %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	oldKID := signedBy(t)
	if set := jwks(t); len(set.Keys) != 1 {
		t.Fatalf("key set before the rotation: %d keys, want 1", len(set.Keys))
	}

	// The deployment is older than auth.KeyPropagation: while no key is
	// that old, the newest signs at once.
	db := h.env.db.SQL()
	_, err := db.Exec(`UPDATE signing_keys SET created_at = created_at - interval '1 day' WHERE kid = $1`, oldKID)
	testenv.Must(t, err, "age the first key")

	// Rotate: insert a key (in the clear, as an older Keyhold stored
	// keys; the reload wraps it with the key-encryption key).
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	testenv.Must(t, err, "generate key")
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	testenv.Must(t, err, "encode key")
	thumb, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	testenv.Must(t, err, "thumbprint")
	newKID := base64.RawURLEncoding.EncodeToString(thumb)
	_, err = db.Exec(`INSERT INTO signing_keys (kid, private_key) VALUES ($1, $2)`, newKID, der)
	testenv.Must(t, err, "insert the new key")

	eventually(t, "the new key is not in the served key set", func() bool { return len(jwks(t).Key(newKID)) == 1 })
	if kid := signedBy(t); kid != oldKID {
		t.Fatalf("a token is signed with %s before the new key had time to reach every replica", kid)
	}

	// Time passes (auth.KeyPropagation) and the old key is retired.
	_, err = db.Exec(`UPDATE signing_keys SET created_at = created_at - $2 * interval '1 second' WHERE kid = $1`, newKID, auth.KeyPropagation.Seconds())
	testenv.Must(t, err, "age the new key")
	_, err = db.Exec(`UPDATE signing_keys SET retired_at = now() WHERE kid = $1`, oldKID)
	testenv.Must(t, err, "retire the old key")
	eventually(t, "tokens are still not signed with the new key", func() bool { return signedBy(t) == newKID })
	if len(jwks(t).Key(oldKID)) != 1 {
		t.Error("the retired key left the key set: tokens it signed no longer verify outside Keyhold")
	}
}

// TestIssuer serves with --issuer set to a public URL: tokens carry it,
// introspection reports it, and the authorization server metadata names
// it with endpoints under it that are the ones this server answers.
func TestIssuer(t *testing.T) {
	t.Parallel()
	const issuer = "https://iam.example.test"
	cfg := testConfig(t)
	cfg.issuer = issuer
	h := startServer(t, cfg)
	a := h.bootstrap(t, "acme")
	ops := h.createSA(t, a.token, tenantSA("ops", "tenant-admin"))
	secret := *h.createCredential(t, a.token, ops.ID, nil).ClientSecret

	r := h.do(t, http.MethodGet, "/.well-known/oauth-authorization-server", "", nil)
	expectStatus(t, r, http.StatusOK, "metadata")
	var md map[string]any
	r.decode(t, &md)
	endpoints := map[string]string{
		"token_endpoint":         "/oauth2/token",
		"jwks_uri":               "/.well-known/jwks.json",
		"introspection_endpoint": "/oauth2/introspect",
		"revocation_endpoint":    "/oauth2/revoke",
	}
	if md["issuer"] != issuer {
		t.Errorf("metadata issuer %v, want %s", md["issuer"], issuer)
	}
	for field, path := range endpoints {
		if md[field] != issuer+path {
			t.Errorf("%s = %v, want %s", field, md[field], issuer+path)
		}
	}

	tok := h.accessToken(t, ops.ClientID, secret)
	sig, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA})
	testenv.Must(t, err, "parse token")
	var claims struct {
		Iss string `json:"iss"`
	}
	testenv.Must(t, json.Unmarshal(sig.UnsafePayloadWithoutVerification(), &claims), "claims")
	if claims.Iss != issuer {
		t.Errorf("token iss %q, want %s", claims.Iss, issuer)
	}
	expectStatus(t, h.do(t, http.MethodGet, saBase, tok, nil), http.StatusOK, "the API accepts the token")
	got := h.form(t, "/oauth2/introspect", url.Values{"token": {tok}}, ops.ClientID, secret).object(t)
	if got["active"] != true || got["iss"] != issuer {
		t.Errorf("introspection %v, want active with iss %s", got, issuer)
	}
}
