package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// cliIn runs keyhold in-process beside h's server with stdin.
func cliIn(t *testing.T, cfg *config, h *harness, stdin string, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	root.SetArgs(withShared(root, args, "--data-dir", cfg.dataDir, "--database-url", cfg.databaseURL, "--nats-url", "",
		"--nats-listen", h.natsAddr(), "--log-level", "error"))
	var out, errOut strings.Builder
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// eventually retries a Basic request until it gets want: the CLI's write
// reaches the server's directory through the log.
func (h *harness) eventually(t *testing.T, login, password string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := h.basic(t, auditPath, login, password, nil)
		if r.Status == want || (want == http.StatusOK && r.Status == http.StatusForbidden) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Basic %s: status %d, want %d", login, r.Status, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUsersCLI drives keyhold users beside a running server: a user the
// CLI creates signs in with Basic; disable, set-password and delete take
// effect; a refused password is not echoed.
func TestUsersCLI(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	h := startServer(t, cfg)
	h.bootstrap(t, "acme")
	const pw, pw2 = "erin's long password", "erin's newer password"
	h.remember(pw, "password")
	h.remember(pw2, "new password")

	if _, err := cliIn(t, cfg, h, "tooshort\n", "users", "create", "--username", "erin", "--email", "erin@acme.example", "--password-stdin"); err == nil || strings.Contains(err.Error(), "tooshort") {
		t.Fatalf("short password: err %v, want a refusal without the password", err)
	}
	out, err := cliIn(t, cfg, h, pw+"\n", "users", "create", "--username", "erin", "--email", "Erin@acme.example", "--tenant", "acme", "--password-stdin")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	var u struct {
		UserID string `json:"user_id"`
		Email  string `json:"email"`
	}
	if err := json.Unmarshal([]byte(out), &u); err != nil || u.UserID == "" || u.Email != "erin@acme.example" {
		t.Fatalf("create printed %q (%v)", out, err)
	}
	h.eventually(t, "erin", pw, http.StatusOK)
	list, err := cliIn(t, cfg, h, "", "users", "list")
	if err != nil || !strings.Contains(list, "USERNAME") || !strings.Contains(list, "erin@acme.example") || strings.Contains(list, pw) {
		t.Fatalf("users list: %v\n%s", err, list)
	}
	show, err := cliIn(t, cfg, h, "", "users", "show", "--user", u.UserID, "--json")
	var shown userRow
	if err != nil || json.Unmarshal([]byte(show), &shown) != nil || shown.Username != "erin" || shown.Status != "active" || len(shown.Tenants) != 1 {
		t.Fatalf("users show: %v\n%s", err, show)
	}

	for _, step := range []struct {
		name, stdin string
		args        []string
		login, pw   string
		want        int
	}{
		{"disable", "", []string{"users", "disable", "--user", u.UserID}, "erin", pw, http.StatusUnauthorized},
		{"enable", "", []string{"users", "enable", "--user", u.UserID}, "erin", pw, http.StatusOK},
		{"set-password", pw2 + "\n", []string{"users", "set-password", "--user", u.UserID, "--password-stdin"}, "erin", pw2, http.StatusOK},
		{"old password refused", "", nil, "erin", pw, http.StatusUnauthorized},
		{"delete", "", []string{"users", "delete", "--user", u.UserID}, "erin", pw2, http.StatusUnauthorized},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.args != nil {
				if _, err := cliIn(t, cfg, h, step.stdin, step.args...); err != nil {
					t.Fatalf("%v: %v", step.args, err)
				}
			}
			h.eventually(t, step.login, step.pw, step.want)
		})
	}
	if _, err := cliIn(t, cfg, h, pw+"\n", "users", "create", "--username", "erin", "--email", "erin@acme.example", "--password-stdin"); err != nil {
		t.Fatalf("create again after delete: %v", err)
	}
	h.assertNoSecretsStored(t)
}
