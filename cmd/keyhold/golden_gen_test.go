//go:build golden

package main

// The generator of the golden event log in events/testdata/golden. It runs
// only with the golden build tag and writes over the fixture, which stands
// for logs written by older versions: never run it again once committed.
//
//	go test -tags golden ./cmd/keyhold -run TestGenerateGoldenLog -count=1

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
)

func TestGenerateGoldenLog(t *testing.T) {
	cfg := testConfig(t)
	h := startServer(t, cfg)
	acme := cliBootstrap(t, cfg, h.natsAddr(), "acme")
	globex := cliBootstrap(t, cfg, h.natsAddr(), "globex")
	waitToken := func(token string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for h.do(t, http.MethodGet, saBase, token, nil).Status != http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatal("bootstrap token never worked")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitToken(acme.Token)
	waitToken(globex.Token)

	secrets := map[string]string{"acme bootstrap token": acme.Token, "globex bootstrap token": globex.Token}

	// acme changes its credential lifetimes.
	expectStatus(t, h.do(t, http.MethodPatch, settingsPath, acme.Token, map[string]any{"credentialDefaultLifetimeDays": 30, "credentialMaxLifetimeDays": 180}), http.StatusOK, "settings")

	deployer := h.createSA(t, acme.Token, map[string]any{
		"displayName": "CI deployer", "description": "deploys the app",
		"scope": "folder", "scopeId": "team.app", "roles": []string{"tenant-admin", "viewer"},
	})
	ops := h.createSA(t, acme.Token, tenantSA("ops", "tenant-admin", "auditor"))
	watcher := h.createSA(t, acme.Token, tenantSA("watcher", "viewer"))
	gone := h.createSA(t, acme.Token, tenantSA("gone", "viewer"))
	reader := h.createSA(t, globex.Token, map[string]any{
		"displayName": "reader", "scope": "folder", "scopeId": "data", "roles": []string{"viewer", "auditor"},
	})

	expiry := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	cDeployer := h.createCredential(t, acme.Token, deployer.ID, map[string]any{"expiresAt": expiry})
	cDeployerOld := h.createCredential(t, acme.Token, deployer.ID, nil)
	cOps := h.createCredential(t, acme.Token, ops.ID, nil)
	cWatcher := h.createCredential(t, acme.Token, watcher.ID, nil)
	cGone := h.createCredential(t, acme.Token, gone.ID, nil)
	cReader := h.createCredential(t, globex.Token, reader.ID, nil)
	secrets["deployer secret"] = *cDeployer.ClientSecret
	secrets["deployer deleted credential secret"] = *cDeployerOld.ClientSecret
	secrets["ops secret"] = *cOps.ClientSecret
	secrets["watcher secret"] = *cWatcher.ClientSecret
	secrets["gone secret"] = *cGone.ClientSecret
	secrets["reader secret"] = *cReader.ClientSecret

	// ops revokes one of its access tokens.
	revoked := h.accessToken(t, ops.ClientID, *cOps.ClientSecret)
	expectStatus(t, h.form(t, "/oauth2/revoke", url.Values{"token": {revoked}}, ops.ClientID, *cOps.ClientSecret), http.StatusOK, "revoke")

	expectStatus(t, h.do(t, http.MethodDelete, saBase+"/"+deployer.ID+"/credentials/"+cDeployerOld.ID, acme.Token, nil), http.StatusNoContent, "delete credential")
	expectStatus(t, h.do(t, http.MethodPatch, saBase+"/"+deployer.ID, acme.Token, map[string]any{"displayName": "Deployer", "roles": []string{"viewer"}}), http.StatusOK, "rename")
	expectStatus(t, h.do(t, http.MethodPatch, saBase+"/"+watcher.ID, acme.Token, map[string]any{"status": "disabled"}), http.StatusOK, "disable")
	expectStatus(t, h.do(t, http.MethodDelete, saBase+"/"+gone.ID, acme.Token, nil), http.StatusNoContent, "delete")

	// A personal API token of acme's administrator, and one issued and revoked
	// (revoke takes every token of the user, so the bootstrap token goes too).
	issue := func() string {
		out, err := cli(t, cfg, h.natsAddr(), "tokens", "issue", "--user", globex.UserID)
		testenv.Must(t, err, "tokens issue")
		var v struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("tokens issue printed %q: %v", out, err)
		}
		return v.Token
	}
	secrets["globex revoked API token"] = issue()
	_, err := cli(t, cfg, h.natsAddr(), "tokens", "revoke", "--user", globex.UserID)
	testenv.Must(t, err, "tokens revoke")
	secrets["globex API token"] = issue()

	ids := map[string]string{
		"acme user": acme.UserID, "globex user": globex.UserID,
		"deployer": deployer.ID, "ops": ops.ID, "watcher": watcher.ID, "gone": gone.ID, "reader": reader.ID,
		"deployer credential": cDeployer.ID, "deployer deleted credential": cDeployerOld.ID, "ops credential": cOps.ID,
		"watcher credential": cWatcher.ID, "gone credential": cGone.ID, "reader credential": cReader.ID,
	}

	ctx := context.Background()
	last, err := h.env.store.LastSequence(ctx)
	testenv.Must(t, err, "last sequence")
	stream, err := h.env.store.JetStream().Stream(ctx, h.env.store.StreamName())
	testenv.Must(t, err, "stream")
	dir := filepath.Join("..", "..", "events", "testdata", "golden")
	f, err := os.Create(filepath.Join(dir, "stream.jsonl"))
	testenv.Must(t, err, "create fixture")
	defer f.Close()
	enc := json.NewEncoder(f)
	enc.SetEscapeHTML(false)
	for seq := uint64(1); seq <= last; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		testenv.Must(t, err, "get message")
		hdr := map[string]string{}
		for _, k := range goldenHeaders {
			if v := m.Header.Get(k); v != "" {
				hdr[k] = v
			}
		}
		testenv.Must(t, enc.Encode(goldenMessage{Seq: m.Sequence, Subject: m.Subject, Header: hdr, Data: string(m.Data)}), "write message")
	}
	for name, v := range map[string]any{"secrets.json": secrets, "ids.json": ids} {
		b, _ := json.MarshalIndent(v, "", "  ")
		testenv.Must(t, os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644), "write %s", name)
	}
}
