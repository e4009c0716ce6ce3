package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestSecretsNeverStored drives every path a secret travels (bootstrap,
// credential creation with and without an idempotency key, token grants by
// Basic and form, introspection, revocation, bearer use, and mistakes
// that put secrets where they do not belong) and then looks for every
// secret in the event log, in every table and in the server's log.
func TestSecretsNeverStored(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	o := h.bootstrap(t, "other")
	s := h.createSA(t, a.token, tenantSA("svc", "tenant-admin", "viewer"))
	c1 := h.createCredential(t, a.token, s.ID, nil)
	c2 := h.createCredential(t, a.token, s.ID, map[string]any{"expiresAt": nil})
	idem := h.send(t, httpReq{method: http.MethodPost, path: saBase + "/" + s.ID + "/credentials", token: a.token, header: map[string]string{"Idempotency-Key": "cred"}})
	expectStatus(t, idem, http.StatusCreated, "idempotent credential")
	var c3 credential
	idem.decode(t, &c3)
	h.remember(*c3.ClientSecret, "idempotent client secret")
	replay := h.send(t, httpReq{method: http.MethodPost, path: saBase + "/" + s.ID + "/credentials", token: a.token, header: map[string]string{"Idempotency-Key": "cred"}})
	expectStatus(t, replay, http.StatusCreated, "replay")
	if strings.Contains(string(replay.Body), *c3.ClientSecret) {
		t.Fatal("replay carries the secret")
	}

	basic := h.form(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, s.ClientID, *c1.ClientSecret)
	expectStatus(t, basic, http.StatusOK, "basic grant")
	var bt struct {
		AccessToken string `json:"access_token"`
	}
	basic.decode(t, &bt)
	h.remember(bt.AccessToken, "access token (Basic)")
	tok := h.accessToken(t, s.ClientID, *c2.ClientSecret)
	revoked := h.accessToken(t, s.ClientID, *c3.ClientSecret)
	expectStatus(t, h.form(t, "/oauth2/introspect", url.Values{"token": {tok}}, s.ClientID, *c2.ClientSecret), http.StatusOK, "introspect")
	expectStatus(t, h.form(t, "/oauth2/revoke", url.Values{"token": {revoked}}, s.ClientID, *c2.ClientSecret), http.StatusOK, "revoke")
	expectStatus(t, h.do(t, http.MethodGet, saBase, tok, nil), http.StatusOK, "bearer access token")
	expectStatus(t, h.do(t, http.MethodGet, saBase, bt.AccessToken, nil), http.StatusOK, "bearer access token (Basic)")
	expectStatus(t, h.do(t, http.MethodGet, auditPath, a.token, nil), http.StatusOK, "bearer API token")

	// Mistakes: each is refused, and the secret it carries must not be
	// echoed or kept.
	for _, m := range []struct {
		name string
		do   func() httpResp
		want int
	}{
		{"revoked token as bearer", func() httpResp { return h.do(t, http.MethodGet, saBase, revoked, nil) }, http.StatusUnauthorized},
		{"client secret as bearer", func() httpResp { return h.do(t, http.MethodGet, saBase, *c1.ClientSecret, nil) }, http.StatusUnauthorized},
		{"API token in another tenant", func() httpResp {
			return h.send(t, httpReq{method: http.MethodGet, path: saBase, token: o.token, header: map[string]string{"Keyhold-Tenant": "acme"}})
		}, http.StatusUnauthorized},
		{"id and secret swapped", func() httpResp { return h.grant(t, *c1.ClientSecret, s.ClientID) }, http.StatusUnauthorized},
		{"secret in the query", func() httpResp {
			return h.form(t, "/oauth2/token?client_secret="+url.QueryEscape(*c1.ClientSecret), url.Values{"grant_type": {"client_credentials"}}, s.ClientID, *c1.ClientSecret)
		}, http.StatusBadRequest},
		{"secret as an unknown field", func() httpResp {
			return h.do(t, http.MethodPatch, saBase+"/"+s.ID, a.token, map[string]any{"clientSecret": *c1.ClientSecret})
		}, http.StatusBadRequest},
		{"secret as a query parameter", func() httpResp {
			return h.do(t, http.MethodGet, saBase+"?"+url.Values{"token": {a.token}}.Encode(), a.token, nil)
		}, http.StatusBadRequest},
		{"secret as a cursor", func() httpResp {
			return h.do(t, http.MethodGet, saBase+"?cursor="+url.QueryEscape(*c1.ClientSecret), a.token, nil)
		}, http.StatusBadRequest},
		{"secret as an id", func() httpResp { return h.do(t, http.MethodGet, saBase+"/"+*c1.ClientSecret, a.token, nil) }, http.StatusBadRequest},
		{"token as an audit filter", func() httpResp { return h.do(t, http.MethodGet, auditPath+"?type="+url.QueryEscape(tok), a.token, nil) }, http.StatusBadRequest},
	} {
		t.Run(m.name, func(t *testing.T) {
			r := m.do()
			if r.Status != m.want {
				t.Fatalf("%s, want %d", r, m.want)
			}
			for secret, what := range h.seen() {
				if strings.Contains(string(r.Body), secret) && m.name != "secret as an id" {
					t.Errorf("httpResp echoes %s", what)
				}
			}
		})
	}
	// Deleting things must not leave secrets behind either.
	expectStatus(t, h.do(t, http.MethodDelete, saBase+"/"+s.ID+"/credentials/"+c1.ID, a.token, nil), http.StatusNoContent, "delete credential")
	expectStatus(t, h.do(t, http.MethodDelete, saBase+"/"+s.ID, a.token, nil), http.StatusNoContent, "delete account")

	// The check below reads the server's whole log: make sure it holds
	// what the OAuth2 endpoints and the request logger wrote.
	logs := h.logs.String()
	for _, want := range []string{`"msg":"oauth2 client authentication failed"`, `"client_id":"(malformed)"`, `"msg":"request"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("server log lacks %s", want)
		}
	}
	h.assertNoSecretsStored(t)
}
