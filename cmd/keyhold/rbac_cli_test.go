package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/internal/testenv"
)

// TestRBACCLI drives keyhold roles, bindings and authz check beside a
// running server: a binding the CLI grants takes effect on the server,
// and its revocation takes it away.
func TestRBACCLI(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	h := startServer(t, cfg)
	a := h.bootstrap(t, "acme")
	viewer, viewerToken := h.principal(t, a.token, "viewer", authz.RoleViewer)
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := cli(t, cfg, h.natsAddr(), args...)
		if err != nil {
			t.Fatalf("keyhold %s: %v", strings.Join(args, " "), err)
		}
		return out
	}

	t.Run("roles", func(t *testing.T) {
		var roles []roleRow
		if err := json.Unmarshal([]byte(run(t, "roles", "list", "--tenant", "acme", "--json")), &roles); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range roles {
			names = append(names, r.Name)
			if !r.Managed {
				t.Errorf("role %s is not managed", r.Name)
			}
		}
		if strings.Join(names, " ") != "auditor tenant-admin token-introspector viewer" {
			t.Fatalf("roles %v", names)
		}
		out := run(t, "roles", "show", "--tenant", "acme", "--role", "tenant-admin")
		if !strings.Contains(out, "iam.serviceAccounts.*") || !strings.Contains(out, "EFFECT") {
			t.Fatalf("show:\n%s", out)
		}
		if _, err := cli(t, cfg, h.natsAddr(), "roles", "show", "--tenant", "acme", "--role", "nope"); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("unknown role: %v", err)
		}
	})

	check := func(t *testing.T) string {
		t.Helper()
		return run(t, "authz", "check", "--tenant", "acme", "--principal", viewer.ID, "--action", authz.ServiceAccountsList)
	}
	t.Run("grant, check, revoke", func(t *testing.T) {
		if out := check(t); !strings.HasPrefix(out, "denied: ") {
			t.Fatalf("before the grant: %s", out)
		}
		var b struct{ ID string }
		if err := json.Unmarshal([]byte(run(t, "bindings", "grant", "--tenant", "acme", "--role", authz.RoleTenantAdmin, "--service-account", viewer.ID)), &b); err != nil || b.ID == "" {
			t.Fatalf("grant: %v %+v", err, b)
		}
		if out := check(t); !strings.HasPrefix(out, "allowed: ") || !strings.Contains(out, "tenant-admin") {
			t.Fatalf("after the grant: %s", out)
		}
		// A token acts with the roles its scope named when issued: the old
		// one still cannot list, a new one (all the account's roles) can.
		h.eventuallyStatus(t, viewerToken, http.StatusForbidden)
		c := h.createCredential(t, a.token, viewer.ID, nil)
		fresh := h.accessToken(t, viewer.ClientID, *c.ClientSecret)
		h.eventuallyStatus(t, fresh, http.StatusOK)
		viewerToken = fresh
		out := run(t, "bindings", "list", "--tenant", "acme", "--subject", viewer.ID)
		if !strings.Contains(out, b.ID) || !strings.Contains(out, "service_account/"+viewer.ID+"/viewer") {
			t.Fatalf("list:\n%s", out)
		}
		run(t, "bindings", "revoke", "--tenant", "acme", "--binding", b.ID)
		if out := check(t); !strings.HasPrefix(out, "denied: ") {
			t.Fatalf("after the revocation: %s", out)
		}
		// The revocation also ended the tokens issued before.
		h.eventuallyStatus(t, viewerToken, http.StatusUnauthorized)
	})
	t.Run("refusals", func(t *testing.T) {
		for _, args := range [][]string{
			{"bindings", "grant", "--tenant", "acme", "--role", "viewer"},
			{"bindings", "grant", "--tenant", "acme", "--role", "viewer", "--user", "01x", "--group", "01y"},
			{"bindings", "grant", "--tenant", "acme", "--role", "nope", "--service-account", viewer.ID},
			{"bindings", "revoke", "--tenant", "acme", "--binding", "service_account/x/viewer"},
			{"authz", "check", "--tenant", "acme", "--principal", viewer.ID, "--action", "iam.*"},
			{"roles", "list", "--tenant", "Not A Tenant"},
		} {
			if _, err := cli(t, cfg, h.natsAddr(), args...); err == nil || !strings.HasPrefix(err.Error(), "refused: ") {
				t.Errorf("keyhold %s: %v, want a refusal", strings.Join(args, " "), err)
			}
		}
	})
}

// eventuallyStatus retries listing service accounts with token until the
// status is want: a CLI write reaches the server through the log.
func (h *harness) eventuallyStatus(t *testing.T, token string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := h.do(t, http.MethodGet, saBase, token, nil)
		if r.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("list with the token: status %d, want %d", r.Status, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTokensAndInstanceCLI: tokens list shows names and last use (never
// the token); the instance's lifetimes govern tokens issued afterwards.
func TestTokensAndInstanceCLI(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	h := startServer(t, cfg)
	a := h.bootstrap(t, "acme")
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := cli(t, cfg, h.natsAddr(), args...)
		if err != nil {
			t.Fatalf("keyhold %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	type token struct {
		TokenID    string `json:"token_id"`
		Name       string `json:"name"`
		ExpiresAt  string `json:"expires_at"`
		LastUsedAt string `json:"last_used_at"`
	}
	list := func(t *testing.T) []token {
		t.Helper()
		var out []token
		raw := run(t, "tokens", "list", "--user", a.userID, "--json")
		if strings.Contains(raw, "khpat_") {
			t.Fatalf("tokens list shows a token: %s", raw)
		}
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := list(t); len(got) != 1 || got[0].LastUsedAt != "" {
		t.Fatalf("before any use: %+v", got)
	}
	expectStatus(t, h.do(t, http.MethodGet, saBase, a.token, nil), http.StatusOK, "use the token")
	testenv.Must(t, h.srv.uses.Flush(context.Background(), h.env.db.SQL()), "flush")
	if got := list(t); len(got) != 1 || got[0].LastUsedAt == "" {
		t.Fatalf("after a use: %+v", got)
	}

	if out := run(t, "instance", "show"); !strings.Contains(out, `"api_token_default_lifetime":"2160h0m0s"`) || !strings.Contains(out, `"api_token_max_lifetime":"8760h0m0s"`) {
		t.Fatalf("show before any setting: %s", out)
	}
	if _, err := cli(t, cfg, h.natsAddr(), "instance", "set", "--api-token-default-lifetime", "30m"); err == nil || !strings.Contains(err.Error(), "--api-token-default-lifetime") {
		t.Fatalf("too short a default: %v", err)
	}
	if _, err := cli(t, cfg, h.natsAddr(), "instance", "set", "--scope-levels", "planet"); err == nil || !strings.Contains(err.Error(), "--scope-levels") {
		t.Fatalf("unknown scope level: %v", err)
	}
	run(t, "instance", "set", "--credential-default-lifetime", "168h", "--scope-levels", "namespace")
	if out := run(t, "instance", "show"); !strings.Contains(out, `"credential_default_lifetime":"168h0m0s"`) || !strings.Contains(out, `"scope_levels":["namespace"]`) {
		t.Fatalf("show settings for new tenants: %s", out)
	}
	run(t, "instance", "set", "--api-token-default-lifetime", "24h")
	if out := run(t, "instance", "show"); !strings.Contains(out, `"api_token_default_lifetime":"24h0m0s"`) || !strings.Contains(out, `"api_token_max_lifetime":"8760h0m0s"`) {
		t.Fatalf("show: %s", out)
	}
	var issued struct {
		TokenID   string `json:"token_id"`
		ExpiresAt string `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(run(t, "tokens", "issue", "--user", a.userID, "--name", "ci")), &issued); err != nil {
		t.Fatal(err)
	}
	exp, err := time.Parse(time.RFC3339, issued.ExpiresAt)
	testenv.Must(t, err, "expires_at")
	if d := time.Until(exp); d > 24*time.Hour || d < 23*time.Hour {
		t.Fatalf("expires in %s, want the instance default of 24h", d)
	}
	if _, err := cli(t, cfg, h.natsAddr(), "tokens", "issue", "--user", a.userID, "--lifetime", "9000h"); err == nil || !strings.Contains(err.Error(), "--lifetime") {
		t.Fatalf("beyond the maximum: %v", err)
	}
	run(t, "tokens", "revoke", "--user", a.userID, "--token", issued.TokenID)
	if got := list(t); len(got) != 1 || got[0].TokenID == issued.TokenID {
		t.Fatalf("after revoking one: %+v", got)
	}
}
