package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

const authBase = "/v1/regions/global/auth"

// k0rdentToken mints a token at the draft's token endpoint and returns it.
func (h *harness) k0rdentToken(t *testing.T, clientID, secret string, narrowing map[string]any) string {
	t.Helper()
	body := map[string]any{"grant_type": "client_credentials", "client_id": clientID, "client_secret": secret}
	if narrowing != nil {
		body["scope_narrowing"] = narrowing
	}
	r := h.do(t, http.MethodPost, authBase+"/token", "", body)
	expectStatus(t, r, http.StatusOK, "k0rdent token")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	r.decode(t, &tok)
	h.remember(tok.AccessToken, "k0rdent access token of "+clientID)
	return tok.AccessToken
}

// introspection is the draft's introspection response.
type introspection struct {
	Active        bool     `json:"active"`
	Sub           string   `json:"sub"`
	TenantID      string   `json:"tenant_id"`
	Scope         string   `json:"scope"`
	ScopeID       string   `json:"scope_id"`
	Roles         []string `json:"roles"`
	PrincipalType string   `json:"principal_type"`
	CredentialID  string   `json:"credential_id"`
	JTI           string   `json:"jti"`
}

func (h *harness) k0rdentIntrospect(t *testing.T, callerToken, token string) (introspection, httpResp) {
	t.Helper()
	r := h.do(t, http.MethodPost, authBase+"/introspect", callerToken, map[string]any{"token": token})
	expectStatus(t, r, http.StatusOK, "introspect")
	var out introspection
	r.decode(t, &out)
	return out, r
}

// The draft's token, introspect and revoke endpoints run on the OAuth2
// endpoints' core: the same client authentication and throttles, the same
// tokens, the same introspection right and revocation command.
func TestK0rdentTokens(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, testTenant)
	worker := h.createSA(t, a.token, tenantSA("worker", "viewer", "auditor"))
	wc := h.createCredential(t, a.token, worker.ID, nil)
	_, rs := h.principal(t, a.token, "resource server", "token-introspector")
	_, viewer := h.principal(t, a.token, "viewer", "viewer")

	t.Run("mint", func(t *testing.T) {
		r := h.do(t, http.MethodPost, authBase+"/token", "", map[string]any{"grant_type": "client_credentials", "client_id": worker.ClientID, "client_secret": *wc.ClientSecret})
		expectStatus(t, r, http.StatusOK, "token")
		m := r.object(t)
		if got := keysOf(m); !slices.Equal(got, []string{"access_token", "expires_in", "token_type"}) {
			t.Fatalf("fields %v", got)
		}
		if m["token_type"] != "Bearer" || m["expires_in"] != float64(900) {
			t.Errorf("token %v", m)
		}
		tok := m["access_token"].(string)
		h.remember(tok, "k0rdent access token")
		// A bearer token for the API like any other, with the account's rights.
		cr := h.do(t, http.MethodPost, authBase+"/check", tok, map[string]any{"checks": []map[string]any{{"action": "iam.roles.list", "resource": testTenant}}})
		expectStatus(t, cr, http.StatusOK, "check with the token")
		if !strings.Contains(string(cr.Body), `"allowed":true`) {
			t.Errorf("a viewer's token may not list roles: %s", cr.Body)
		}
		got, ir := h.k0rdentIntrospect(t, rs, tok)
		if keys := keysOf(ir.object(t)); !slices.Equal(keys, []string{"active", "aud", "credential_id", "exp", "iat", "iss", "jti", "principal_type", "roles", "scope", "scope_id", "sub", "tenant_id"}) {
			t.Errorf("introspection fields %v", keys)
		}
		want := introspection{Active: true, Sub: worker.ClientID, TenantID: testTenant, Scope: "organization", ScopeID: testTenant,
			Roles: []string{"auditor", "viewer"}, PrincipalType: "service_account", CredentialID: wc.ID, JTI: got.JTI}
		slices.Sort(got.Roles)
		if got.JTI == "" || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("introspection\n got %+v\nwant %+v", got, want)
		}
		// The token is the OAuth2 endpoints' own: it revokes there.
		if r := h.form(t, "/oauth2/revoke", url.Values{"token": {tok}}, worker.ClientID, *wc.ClientSecret); r.Status != http.StatusOK {
			t.Fatalf("/oauth2/revoke: %s", r)
		}
		if o, _ := h.k0rdentIntrospect(t, rs, tok); o.Active {
			t.Error("revoked at /oauth2/revoke, still active here")
		}
	})

	t.Run("narrowed to a role", func(t *testing.T) {
		tok := h.k0rdentToken(t, worker.ClientID, *wc.ClientSecret, map[string]any{"roles": []string{"viewer"}})
		got, _ := h.k0rdentIntrospect(t, rs, tok)
		if !got.Active || !slices.Equal(got.Roles, []string{"viewer"}) {
			t.Errorf("narrowed token %+v", got)
		}
		// Its own scope is no narrowing, and allowed.
		h.k0rdentToken(t, worker.ClientID, *wc.ClientSecret, map[string]any{"scope": "organization", "scopeId": testTenant})
	})

	t.Run("refused", func(t *testing.T) {
		good := map[string]any{"grant_type": "client_credentials", "client_id": worker.ClientID, "client_secret": *wc.ClientSecret}
		with := func(k string, v any) map[string]any {
			m := map[string]any{}
			for k, v := range good {
				m[k] = v
			}
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
			return m
		}
		for _, tc := range []struct {
			name   string
			body   any
			status int
			field  string
		}{
			{"no grant_type", with("grant_type", nil), 400, "grant_type"},
			{"api_key grant", with("grant_type", "api_key"), 400, "grant_type"},
			{"unknown grant", with("grant_type", "password"), 400, "grant_type"},
			{"no client_id", with("client_id", nil), 400, "client_id"},
			{"no client_secret", with("client_secret", nil), 400, "client_secret"},
			{"unknown field", with("scope", "viewer"), 400, "scope"},
			{"a role not held", with("scope_narrowing", map[string]any{"roles": []string{"tenant-admin"}}), 400, ""},
			{"no roles", with("scope_narrowing", map[string]any{"roles": []string{}}), 400, "scope_narrowing.roles"},
			{"another scope", with("scope_narrowing", map[string]any{"scope": "project", "scopeId": "team.app"}), 400, "scope_narrowing.scope"},
			{"scope without scopeId", with("scope_narrowing", map[string]any{"scope": "organization"}), 400, "scope_narrowing.scope"},
			{"wrong secret", with("client_secret", "khcs_wrong"), 401, ""},
			{"unknown client", with("client_id", "khc-01m8bwn9bmf8bvrrbfke65f19r"), 401, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := h.do(t, http.MethodPost, authBase+"/token", "", tc.body)
				e := checkEnvelope(t, r, tc.status)
				if tc.field != "" && (len(e.Details) != 1 || e.Details[0].Field != tc.field) {
					t.Errorf("details %+v, want field %s", e.Details, tc.field)
				}
				if strings.Contains(string(r.Body), *wc.ClientSecret) {
					t.Errorf("the secret in %s", r.Body)
				}
			})
		}
	})

	t.Run("throttled with the OAuth2 endpoints", func(t *testing.T) {
		s := h.createSA(t, a.token, tenantSA("guessed"))
		c := h.createCredential(t, a.token, s.ID, nil)
		throttled := false
		for i := 0; i < 30 && !throttled; i++ {
			r := h.do(t, http.MethodPost, authBase+"/token", "", map[string]any{"grant_type": "client_credentials", "client_id": s.ClientID, "client_secret": "khcs_guess"})
			switch r.Status {
			case http.StatusUnauthorized:
			case http.StatusTooManyRequests:
				checkEnvelope(t, r, http.StatusTooManyRequests)
				if r.Header.Get("Retry-After") == "" {
					t.Error("429 without Retry-After")
				}
				throttled = true
			default:
				t.Fatalf("guess %d: %s", i, r)
			}
		}
		if !throttled {
			t.Fatal("30 failed guesses and no 429")
		}
		// The OAuth2 token endpoint throttles the same client id.
		if r := h.grant(t, s.ClientID, *c.ClientSecret); r.Status != http.StatusTooManyRequests {
			t.Errorf("/oauth2/token after the guesses: %s", r)
		}
	})

	t.Run("introspection needs iam.tokens.introspect", func(t *testing.T) {
		tok := h.k0rdentToken(t, worker.ClientID, *wc.ClientSecret, nil)
		for name, caller := range map[string]string{"viewer": viewer, "the token itself": tok} {
			if got, r := h.k0rdentIntrospect(t, caller, tok); got.Active || string(r.Body) != "{\"active\":false}\n" && string(r.Body) != `{"active":false}` {
				t.Errorf("%s introspects: %s", name, r.Body)
			}
		}
		if got, _ := h.k0rdentIntrospect(t, a.token, tok); !got.Active {
			t.Error("the tenant administrator cannot introspect")
		}
		if got, _ := h.k0rdentIntrospect(t, rs, "not-a-token"); got.Active {
			t.Error("garbage is active")
		}
		checkEnvelope(t, h.do(t, http.MethodPost, authBase+"/introspect", rs, map[string]any{}), http.StatusBadRequest)
		checkEnvelope(t, h.do(t, http.MethodPost, authBase+"/introspect", "", map[string]any{"token": tok}), http.StatusUnauthorized)
	})

	t.Run("revoke", func(t *testing.T) {
		revoke := func(t *testing.T, caller, token string) {
			t.Helper()
			r := h.do(t, http.MethodPost, authBase+"/revoke", caller, map[string]any{"token": token})
			expectStatus(t, r, http.StatusOK, "revoke")
			if m := r.object(t); len(m) != 1 || m["revoked"] != true {
				t.Errorf("revoke answered %s", r.Body)
			}
		}
		active := func(t *testing.T, token string) bool {
			t.Helper()
			got, _ := h.k0rdentIntrospect(t, rs, token)
			return got.Active
		}
		own := h.k0rdentToken(t, worker.ClientID, *wc.ClientSecret, nil)
		other := h.k0rdentToken(t, worker.ClientID, *wc.ClientSecret, nil)
		// Someone else's token is left alone, with the same answer.
		revoke(t, viewer, own)
		if !active(t, own) {
			t.Fatal("a viewer revoked another account's token")
		}
		revoke(t, own, own)
		if active(t, own) {
			t.Error("revoked by its holder, still active")
		}
		checkEnvelope(t, h.do(t, http.MethodPost, authBase+"/check", own, map[string]any{"checks": []map[string]any{{"action": "iam.roles.list", "resource": testTenant}}}), http.StatusUnauthorized)
		revoke(t, a.token, other)
		if active(t, other) {
			t.Error("revoked by the administrator, still active")
		}
		revoke(t, a.token, "not-a-token")
		checkEnvelope(t, h.do(t, http.MethodPost, authBase+"/revoke", a.token, map[string]any{"token": ""}), http.StatusBadRequest)
	})
	h.assertNoSecretsStored(t)
}

// The draft's check endpoint is the decision API: checks answered in
// order, about the caller or, for administrators, another principal.
func TestK0rdentCheck(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, testTenant)
	rs, rsToken := h.principal(t, a.token, "resource server", "token-introspector")
	_, viewer := h.principal(t, a.token, "viewer", "viewer")

	check := func(t *testing.T, token string, body map[string]any) []bool {
		t.Helper()
		r := h.do(t, http.MethodPost, authBase+"/check", token, body)
		expectStatus(t, r, http.StatusOK, "check")
		var out struct {
			Results []struct {
				Allowed bool   `json:"allowed"`
				Reason  string `json:"reason"`
			} `json:"results"`
		}
		r.decode(t, &out)
		got := make([]bool, len(out.Results))
		for i, res := range out.Results {
			if res.Reason == "" {
				t.Errorf("result %d without a reason", i)
			}
			got[i] = res.Allowed
		}
		return got
	}
	type ck = map[string]any
	both := []ck{{"action": "iam.tokens.introspect", "resource": testTenant}, {"action": "iam.serviceAccounts.create", "resource": "team.app"}}
	for _, tc := range []struct {
		name, token string
		subject     any
		want        []bool
	}{
		{"the administrator itself", a.token, nil, []bool{true, true}},
		{"a resource server itself", rsToken, nil, []bool{true, false}},
		{"a resource server naming itself by clientId", rsToken, rs.ClientID, []bool{true, false}},
		{"the administrator about the resource server", a.token, rs.ClientID, []bool{true, false}},
		{"the administrator about it by id", a.token, rs.ID, []bool{true, false}},
		{"the administrator about itself by id", a.token, a.userID, []bool{true, true}},
		{"the administrator about no one", a.token, "khc-01m8bwn9bmf8bvrrbfke65f19r", []bool{false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := ck{"checks": both}
			if tc.subject != nil {
				body["subject"] = tc.subject
			}
			if got := check(t, tc.token, body); !slices.Equal(got, tc.want) {
				t.Errorf("results %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		many := make([]ck, 101)
		for i := range many {
			many[i] = ck{"action": "iam.roles.list", "resource": testTenant}
		}
		for _, tc := range []struct {
			name, token string
			body        any
			status      int
			field       string
		}{
			{"another subject, not an administrator", viewer, ck{"subject": rs.ClientID, "checks": both}, 403, "subject"},
			{"no checks", a.token, ck{"checks": []ck{}}, 400, "checks"},
			{"101 checks", a.token, ck{"checks": many}, 400, "checks"},
			{"no resource", a.token, ck{"checks": []ck{{"action": "iam.roles.list"}}}, 400, "checks[0].resource"},
			{"no action", a.token, ck{"checks": []ck{{"resource": testTenant}}}, 400, "checks[0].action"},
			{"a wildcard action", a.token, ck{"checks": []ck{both[0], {"action": "iam.*", "resource": testTenant}}}, 400, "checks[1].action"},
			{"a bad resource", a.token, ck{"checks": []ck{{"action": "iam.roles.list", "resource": "Team App"}}}, 400, "checks[0].resource"},
			{"no credential", "", ck{"checks": both}, 401, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := checkEnvelope(t, h.do(t, http.MethodPost, authBase+"/check", tc.token, tc.body), tc.status)
				if tc.field != "" && (len(e.Details) != 1 || e.Details[0].Field != tc.field) {
					t.Errorf("details %+v, want field %s", e.Details, tc.field)
				}
			})
		}
	})
}

// Nothing crosses tenants: another tenant's administrator can neither
// introspect nor revoke a token, nor learn what its account may do.
func TestK0rdentAuthAcrossTenants(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, testTenant)
	b := h.bootstrap(t, "globex")
	theirs := h.createSA(t, b.token, orgSA("globex", "theirs", "viewer"))
	c := h.createCredential(t, b.token, theirs.ID, nil)
	tok := h.k0rdentToken(t, theirs.ClientID, *c.ClientSecret, nil)

	if got, _ := h.k0rdentIntrospect(t, a.token, tok); got.Active {
		t.Error("another tenant's administrator introspects the token")
	}
	r := h.do(t, http.MethodPost, authBase+"/revoke", a.token, map[string]any{"token": tok})
	expectStatus(t, r, http.StatusOK, "revoke another tenant's token")
	if got, _ := h.k0rdentIntrospect(t, b.token, tok); !got.Active {
		t.Error("another tenant's administrator revoked the token")
	}
	r = h.do(t, http.MethodPost, authBase+"/check", a.token, map[string]any{"subject": theirs.ClientID,
		"checks": []map[string]any{{"action": "iam.roles.list", "resource": testTenant}}})
	expectStatus(t, r, http.StatusOK, "check about another tenant's account")
	if strings.Contains(string(r.Body), `"allowed":true`) {
		t.Errorf("another tenant's account allowed: %s", r.Body)
	}
}
