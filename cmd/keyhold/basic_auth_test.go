package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
)

// applied waits until the read side (the directory included) applied seq.
func (h *harness) applied(t *testing.T, seq uint64, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.progress.Wait(ctx, seq, readSide...); err != nil {
		t.Fatalf("wait for %s: %v", what, err)
	}
}

func (h *harness) basic(t *testing.T, path, login, password string, header map[string]string) httpResp {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(login, password)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	return httpResp{Status: res.StatusCode, Header: res.Header}
}

// TestBasicAuth signs users in with HTTP Basic on the k0rdent and audit
// dialects and checks that disabling, deleting and changing the password
// end access at once, even for a password checked moments before.
func TestBasicAuth(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	h.bootstrap(t, "acme")
	h.bootstrap(t, "other")
	ctx := context.Background()
	sys := commands.Meta{Caller: auth.System()}
	const pw, pw2 = "first long password", "second long password"
	h.remember(pw, "password")
	h.remember(pw2, "new password")
	created, err := h.srv.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "Carol", Email: "carol@acme.example", Superadmin: false, Password: pw, Tenants: []string{"acme"}})
	h.applied(t, created.Sequence, err, "create carol")
	id := created.User.ID()

	for _, tc := range []struct {
		name, path, login, password string
		header                      map[string]string
		want                        int
	}{
		{"username, k0rdent", saBase, "Carol", pw, nil, http.StatusOK},
		{"email in other case, audit", auditPath, "CAROL@acme.example", pw, nil, http.StatusOK},
		{"cached again", saBase, "carol", pw, nil, http.StatusOK},
		{"wrong password", saBase, "carol", pw + "x", nil, http.StatusUnauthorized},
		{"unknown user", saBase, "nobody", pw, nil, http.StatusUnauthorized},
		{"tenant without access", saBase, "carol", pw, map[string]string{"Keyhold-Tenant": "other"}, http.StatusUnauthorized},
		{"admin without password", saBase, "admin-acme", pw, nil, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.basic(t, tc.path, tc.login, tc.password, tc.header)
			if r.Status != tc.want && !(tc.want == http.StatusOK && r.Status == http.StatusForbidden) {
				t.Fatalf("status %d, want %d", r.Status, tc.want)
			}
			// A refused Basic attempt is asked for Basic again.
			if c := r.Header.Values("WWW-Authenticate"); r.Status == http.StatusUnauthorized && (len(c) != 1 || !strings.HasPrefix(c[0], "Basic ")) {
				t.Fatalf("WWW-Authenticate %q, want one Basic challenge", c)
			}
		})
	}
	t.Run("no credentials: both schemes are offered", func(t *testing.T) {
		r := h.do(t, http.MethodGet, saBase, "", nil)
		c := r.Header.Values("WWW-Authenticate")
		if r.Status != http.StatusUnauthorized || len(c) != 2 || !strings.HasPrefix(c[0], "Bearer ") || !strings.HasPrefix(c[1], "Basic ") {
			t.Fatalf("status %d, WWW-Authenticate %q", r.Status, c)
		}
	})

	t.Run("password change refuses the cached old password at once", func(t *testing.T) {
		expectAuthenticated(t, h.basic(t, saBase, "carol", pw, nil))
		res, err := h.srv.cmds.SetPassword.Handle(ctx, commands.SetPassword{Meta: sys, UserID: id, Password: pw2})
		h.applied(t, res.Sequence, err, "set password")
		if r := h.basic(t, saBase, "carol", pw, nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("old password: status %d, want 401", r.Status)
		}
		expectAuthenticated(t, h.basic(t, saBase, "carol", pw2, nil))
	})
	t.Run("disabled user is refused at once", func(t *testing.T) {
		res, err := h.srv.cmds.SetUserStatus.Handle(ctx, commands.SetUserStatus{Meta: sys, UserID: id, Status: events.UserStatusDisabled})
		h.applied(t, res.Sequence, err, "disable")
		if r := h.basic(t, saBase, "carol", pw2, nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("disabled: status %d, want 401", r.Status)
		}
		res, err = h.srv.cmds.SetUserStatus.Handle(ctx, commands.SetUserStatus{Meta: sys, UserID: id, Status: events.UserStatusActive})
		h.applied(t, res.Sequence, err, "enable")
		expectAuthenticated(t, h.basic(t, saBase, "carol", pw2, nil))
	})
	t.Run("deleted user is refused and the name can be used again", func(t *testing.T) {
		res, err := h.srv.cmds.DeleteUser.Handle(ctx, commands.DeleteUser{Meta: sys, UserID: id})
		h.applied(t, res.Sequence, err, "delete")
		if r := h.basic(t, saBase, "carol", pw2, nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("deleted: status %d, want 401", r.Status)
		}
		again, err := h.srv.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "carol", Email: "CAROL@acme.example", Password: pw, Tenants: []string{"acme"}})
		h.applied(t, again.Sequence, err, "create carol again")
		expectAuthenticated(t, h.basic(t, saBase, "carol", pw, nil))
	})
	t.Run("failed attempts are throttled", func(t *testing.T) {
		var last httpResp
		for range 8 {
			if last = h.basic(t, saBase, "carol", "not the password!", nil); last.Status == http.StatusTooManyRequests {
				break
			}
		}
		if last.Status != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
			t.Fatalf("after repeated failures: status %d, Retry-After %q; want 429 with Retry-After", last.Status, last.Header.Get("Retry-After"))
		}
		// Another spelling of the login is the same account, and throttled with it.
		if r := h.basic(t, saBase, "CAROL", pw, nil); r.Status != http.StatusTooManyRequests {
			t.Fatalf("the login in capitals: status %d, want 429", r.Status)
		}
	})
	h.assertNoSecretsStored(t)
}

// expectAuthenticated fails unless the request got past authentication:
// a user without a role may be refused (403), never unauthenticated.
func expectAuthenticated(t *testing.T, r httpResp) {
	t.Helper()
	if r.Status != http.StatusOK && r.Status != http.StatusForbidden {
		t.Fatalf("status %d, want authenticated (200 or 403)", r.Status)
	}
}

// TestBootstrapPasswordStdin bootstraps beside a running server with a
// password on stdin; the administrator then signs in with HTTP Basic, and
// the password is nowhere at rest.
func TestBootstrapPasswordStdin(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	h := startServer(t, cfg)
	const pw = "the first admin password"
	h.remember(pw, "bootstrap password")
	for _, tc := range []struct {
		name, stdin, tenant string
		ok                  bool
	}{
		{"too short", "short\n", "short", false},
		{"empty", "", "empty", false},
		{"good", pw + "\r\n", "pwd", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := newRoot()
			root.SetArgs(withShared(root, []string{"bootstrap", "--tenant", tc.tenant, "--username", "root-" + tc.tenant, "--email", "root@" + tc.tenant + ".example", "--password-stdin"},
				"--data-dir", cfg.dataDir, "--database-url", cfg.databaseURL, "--nats-url", "", "--nats-listen", h.natsAddr(), "--log-level", "error"))
			var out, errOut strings.Builder
			root.SetOut(&out)
			root.SetErr(&errOut)
			root.SetIn(strings.NewReader(tc.stdin))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := root.ExecuteContext(ctx)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && strings.Contains(err.Error(), strings.TrimSpace(tc.stdin)) && tc.stdin != "" {
				t.Fatalf("error %q holds the password", err)
			}
			if tc.ok {
				var b bootstrapped
				if err := json.Unmarshal([]byte(out.String()), &b); err != nil {
					t.Fatalf("output %q: %v", out.String(), err)
				}
				h.remember(b.Token, "bootstrap token")
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := h.basic(t, saBase, "root-pwd", pw, map[string]string{"Keyhold-Tenant": "pwd"})
		if r.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Basic as the bootstrapped admin: status %d, want 200", r.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := h.basic(t, saBase, "root-pwd", pw+"!", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("wrong password: status %d, want 401", r.Status)
	}
	h.assertNoSecretsStored(t)
}
