package main

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"
)

func TestRestartKeepsEverything(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	h1 := startServer(t, cfg)
	a := h1.bootstrap(t, "acme")
	s := h1.createSA(t, a.token, tenantSA("survivor", "tenant-admin", "viewer"))
	c := h1.createCredential(t, a.token, s.ID, nil)
	tok := h1.accessToken(t, s.ClientID, *c.ClientSecret)
	gone := h1.createSA(t, a.token, tenantSA("gone"))
	expectStatus(t, h1.do(t, http.MethodDelete, saBase+"/"+gone.ID, a.token, nil), http.StatusNoContent, "delete")
	expectStatus(t, h1.do(t, http.MethodPatch, settingsPath, a.token, map[string]any{"credentialDefaultLifetimeDays": 30}), http.StatusOK, "settings")
	idem := h1.send(t, httpReq{method: http.MethodPost, path: saBase, token: a.token, body: tenantSA("idem"), header: map[string]string{"Idempotency-Key": "k"}})
	expectStatus(t, idem, http.StatusCreated, "idempotent create")

	paths := []string{saBase, saBase + "/" + s.ID, saBase + "/" + s.ID + "/credentials", saBase + "/" + s.ID + "/credentials/" + c.ID, settingsPath, auditPath}
	before := map[string][]byte{}
	for _, p := range paths {
		r := h1.do(t, http.MethodGet, p, a.token, nil)
		expectStatus(t, r, http.StatusOK, p)
		before[p] = r.Body
	}
	h1.stop()
	// The directory's snapshot holds verifiers: its owner's only.
	if fi, err := os.Stat(cfg.snapshotPath()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("directory snapshot after the stop: %v, %v", fi, err)
	}

	h2 := startServer(t, cfg)
	if !strings.Contains(h2.logs.String(), "directory snapshot loaded") {
		t.Errorf("the restarted server replayed the log instead of loading the snapshot:\n%s", h2.logs.String())
	}
	for k, v := range h1.seen() {
		h2.remember(k, v)
	}
	for _, p := range paths {
		r := h2.do(t, http.MethodGet, p, a.token, nil)
		expectStatus(t, r, http.StatusOK, "after restart "+p)
		if !bytes.Equal(r.Body, before[p]) {
			t.Errorf("%s changed across the restart:\n%s\n%s", p, before[p], r.Body)
		}
	}
	checkProblem(t, h2.do(t, http.MethodGet, saBase+"/"+gone.ID, a.token, nil), http.StatusNotFound)
	// Signing keys, credentials and tokens survive.
	expectStatus(t, h2.do(t, http.MethodGet, saBase, tok, nil), http.StatusOK, "old access token")
	newTok := h2.accessToken(t, s.ClientID, *c.ClientSecret)
	expectStatus(t, h2.do(t, http.MethodGet, saBase, newTok, nil), http.StatusOK, "new access token")
	// Idempotency records survive.
	again := h2.send(t, httpReq{method: http.MethodPost, path: saBase, token: a.token, body: tenantSA("idem"), header: map[string]string{"Idempotency-Key": "k"}})
	if again.Status != idem.Status || !bytes.Equal(again.Body, idem.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay after restart: %s", again)
	}
	// And the restarted server writes and reads as before.
	n := h2.createSA(t, a.token, tenantSA("after"))
	expectStatus(t, h2.do(t, http.MethodGet, saBase+"/"+n.ID, a.token, nil), http.StatusOK, "new account")
	if got := h2.listSAs(t, a.token, ""); len(got) != 3 {
		t.Errorf("%d accounts after restart, want 3", len(got))
	}
	h2.assertNoSecretsStored(t)
	logs := h1.logs.String()
	for secret, what := range h1.seen() {
		if bytes.Contains([]byte(logs), []byte(secret)) {
			t.Errorf("%s in the first server's log", what)
		}
	}
}
