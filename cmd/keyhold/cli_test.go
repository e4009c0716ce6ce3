package main

import (
	"hash/fnv"

	"bytes"
	"context"
	"encoding/json"
	"github.com/jmoiron/sqlx"
	"github.com/spf13/cobra"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/projections"
)

// cli runs keyhold in-process with the flags of cfg; natsAddr names a
// running server's NATS to join ("" lets the command start its own).
func cli(t *testing.T, cfg *config, natsAddr string, args ...string) (string, error) {
	t.Helper()
	return cliWithin(t, 60*time.Second, cfg, natsAddr, args...)
}

// cliWithin is cli with the command's context ending after timeout.
func cliWithin(t *testing.T, timeout time.Duration, cfg *config, natsAddr string, args ...string) (string, error) {
	t.Helper()
	if natsAddr == "" {
		natsAddr = cfg.natsListen
	}
	root := newRoot()
	root.SetArgs(withShared(root, args, "--data-dir", cfg.dataDir, "--database-url", cfg.databaseURL, "--nats-url", "",
		"--nats-listen", natsAddr, "--log-level", "error"))
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// withShared appends to args those of the flag-value pairs in shared that
// the command args name takes.
func withShared(root *cobra.Command, args []string, shared ...string) []string {
	cmd, _, err := root.Find(args)
	if err != nil {
		return args
	}
	out := slices.Clone(args)
	for i := 0; i+1 < len(shared); i += 2 {
		if cmd.Flags().Lookup(strings.TrimPrefix(shared[i], "--")) != nil {
			out = append(out, shared[i], shared[i+1])
		}
	}
	return out
}

type bootstrapped struct {
	Tenant string `json:"tenant"`
	UserID string `json:"user_id"`
	Token  string `json:"token"`
}

func cliBootstrap(t *testing.T, cfg *config, natsAddr, tenant string) bootstrapped {
	t.Helper()
	out, err := cli(t, cfg, natsAddr, "bootstrap", "--tenant", tenant, "--username", "root-"+tenant, "--email", "root@"+tenant+".example")
	if err != nil {
		t.Fatalf("bootstrap %s: %v", tenant, err)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("bootstrap printed %q, want one line", out)
	}
	var b bootstrapped
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("bootstrap output %q: %v", out, err)
	}
	if b.Tenant != tenant || len(b.UserID) != 26 || auth.CheckFormat(auth.PrefixAPIToken, b.Token) != nil {
		t.Fatalf("bootstrap output %+v", b)
	}
	return b
}

// readTables dumps every read table, through the public views.
func (h *harness) readTables(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, tb := range (projections.IAM{}).Tables() {
		var rows []string
		if err := h.env.db.SQL().Select(&rows, "SELECT t::text FROM public."+tb+" t ORDER BY 1"); err != nil {
			t.Fatalf("dump %s: %v", tb, err)
		}
		out[tb] = rows
	}
	return out
}

func TestCLI(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	// Bootstrap works without a server: the command runs NATS itself.
	early := cliBootstrap(t, cfg, "", "early")

	h := startServer(t, cfg)
	h.remember(early.Token, "early API token")
	expectStatus(t, h.do(t, http.MethodGet, saBase, early.Token, nil), http.StatusOK, "token of a bootstrap made before serve")

	// With a server running the CLI joins its NATS.
	acme := cliBootstrap(t, cfg, h.natsAddr(), "acme")
	h.remember(acme.Token, "acme API token")
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := h.do(t, http.MethodGet, saBase, acme.Token, nil)
		if r.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new administrator's token does not work: %s", r)
		}
		time.Sleep(10 * time.Millisecond)
	}

	t.Run("bootstrap refuses", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--tenant", "acme", "--username", "second", "--email", "second@acme.example"}, "already bootstrapped"},
			{[]string{"--tenant", "early", "--username", "third", "--email", "third@early.example"}, "already bootstrapped"},
			{[]string{"--tenant", "Not_A_Tenant", "--username", "x", "--email", "x@example.com"}, "tenant"},
			{[]string{"--tenant", "fresh", "--username", "root-acme", "--email", "new@fresh.example"}, "username"},
			{[]string{"--tenant", "fresh", "--username", "x"}, "email"},
		} {
			out, err := cli(t, cfg, h.natsAddr(), append([]string{"bootstrap"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("bootstrap %v: err %v, want one mentioning %q", tc.args, err, tc.want)
			}
			if out != "" {
				t.Errorf("bootstrap %v printed %q", tc.args, out)
			}
		}
	})

	s := h.createSA(t, acme.Token, tenantSA("svc", "viewer"))
	c := h.createCredential(t, acme.Token, s.ID, nil)
	h.accessToken(t, s.ClientID, *c.ClientSecret)

	t.Run("audit --json", func(t *testing.T) {
		out, err := cli(t, cfg, h.natsAddr(), "audit", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var stored int
		if err := h.env.store.Read(context.Background(), events.Filter{}, func(e events.Envelope) error {
			if e.Aggregate != events.AggregateUnique {
				stored++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != stored {
			t.Fatalf("%d lines for %d events", len(lines), stored)
		}
		var last uint64
		types := map[string]int{}
		for _, l := range lines {
			var e events.Envelope
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			if e.ID == "" || e.Type == "" || e.Time.IsZero() || e.Sequence <= last || e.Tenant == "" {
				t.Fatalf("line %q", l)
			}
			last = e.Sequence
			types[e.Type]++
		}
		if types["iam.tenant.created"] != 2 || types["iam.service_account.created"] != 1 || types["iam.user.api_token_issued"] != 2 {
			t.Errorf("event types %v", types)
		}

		out, err = cli(t, cfg, h.natsAddr(), "audit", "--json", "--tenant", "acme", "--type", "iam.service_account.created")
		if err != nil {
			t.Fatal(err)
		}
		var e events.Envelope
		if strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &e) != nil || e.Subject != s.ID {
			t.Fatalf("filtered audit %q", out)
		}
		out, err = cli(t, cfg, h.natsAddr(), "audit", "--tenant", "acme", "--since", "1h")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "iam.tenant.created") || !strings.Contains(out, "actor=system:system") || strings.Contains(out, "{") {
			t.Errorf("plain audit output %q", out)
		}
		if _, err := cli(t, cfg, h.natsAddr(), "audit", "--since", "last tuesday"); err == nil || !strings.Contains(err.Error(), "--since") {
			t.Errorf("bad --since: %v", err)
		}
	})

	status := func(t *testing.T) projections.Status {
		t.Helper()
		out, err := cli(t, cfg, h.natsAddr(), "projections", "status", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var st projections.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil || strings.Count(out, "\n") != 1 {
			t.Fatalf("status --json %q: %v", out, err)
		}
		return st
	}
	t.Run("projections status", func(t *testing.T) {
		out, err := cli(t, cfg, h.natsAddr(), "projections", "status")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "PROJECTOR") {
			t.Fatalf("status output %q", out)
		}
		header, row := strings.Fields(lines[0]), strings.Fields(lines[1])
		get := func(col string) string {
			for i, h := range header {
				if h == col && i < len(row) {
					return row[i]
				}
			}
			return ""
		}
		if row[0] != "iam" || get("LAG") != "0" || get("FAILURES") != "0" || get("CHECKPOINT") != get("HEAD") {
			t.Fatalf("status output %q", out)
		}
		if st := status(t); st.Name != "iam" || st.Lag != 0 || st.Failures != 0 || st.Generation != 1 {
			t.Fatalf("status --json %+v", st)
		}
	})

	t.Run("projections rebuild while serving", func(t *testing.T) {
		before := h.readTables(t)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var reads int
		var bad []string
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					if i >= 5 {
						return
					}
				default:
				}
				path := saBase
				if i%2 == 1 {
					path = saBase + "/" + s.ID
				}
				r, err := h.try(httpReq{method: http.MethodGet, path: path, token: acme.Token})
				mu.Lock()
				reads++
				if err != nil || r.Status != http.StatusOK {
					bad = append(bad, r.String())
				}
				mu.Unlock()
			}
		}()
		out, err := cli(t, cfg, h.natsAddr(), "projections", "rebuild")
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatalf("rebuild: %v (%s)", err, out)
		}
		if !strings.Contains(out, "iam: rebuilt") || !strings.Contains(out, "reads switched over") {
			t.Errorf("rebuild output %q", out)
		}
		if len(bad) > 0 || reads == 0 {
			t.Fatalf("%d reads during the rebuild, failures: %v", reads, bad)
		}
		t.Logf("%d reads during the rebuild", reads)
		after := h.readTables(t)
		for tb, rows := range before {
			if strings.Join(after[tb], "\n") != strings.Join(rows, "\n") {
				t.Errorf("%s differs after the rebuild:\n%v\n%v", tb, rows, after[tb])
			}
		}
		if len(after["service_accounts"]) != 1 || len(after["credentials"]) != 1 || len(after["tenants"]) != 2 {
			t.Errorf("tables after the rebuild: %v", after)
		}
		if st := status(t); st.Generation != 2 || st.Lag != 0 {
			t.Fatalf("status after the rebuild %+v", st)
		}
		// The live projector writes into the new generation.
		n := h.createSA(t, acme.Token, tenantSA("after rebuild"))
		if got := h.listSAs(t, acme.Token, ""); len(got) != 2 || !slices.Contains(ids(got), n.ID) {
			t.Fatalf("list after the rebuild: %v", ids(got))
		}
		if st := status(t); st.Lag != 0 {
			t.Fatalf("status after a write %+v", st)
		}
	})

	h.assertNoSecretsStored(t)
}

// TestBootstrapPrintsTokenBeforeCatchUp covers a bootstrap whose read-side
// catch-up cannot finish (another session holds the projector's lock and
// applies nothing, and the command's time runs out): the token, shown only
// this once, is still printed, the command says on stderr that the read
// tables lag, and the token works once a server runs.
func TestBootstrapPrintsTokenBeforeCatchUp(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	db, err := sqlx.Open("postgres", cfg.databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lock, err := db.Connx(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The key projections derives for the iam projector's lock.
	h := fnv.New64a()
	h.Write([]byte("keyhold.projector.iam"))
	if _, err := lock.ExecContext(context.Background(), "SELECT pg_advisory_lock($1)", int64(h.Sum64())); err != nil {
		t.Fatal(err)
	}

	root := newRoot()
	root.SetArgs([]string{"--data-dir", cfg.dataDir, "--database-url", cfg.databaseURL, "--nats-url", "",
		"--nats-listen", cfg.natsListen, "--log-level", "error",
		"bootstrap", "--tenant", "lagging", "--username", "root", "--email", "root@lagging.example"})
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("bootstrap: %v (stderr %q)", err, errOut.String())
	}
	var b bootstrapped
	if err := json.Unmarshal(out.Bytes(), &b); err != nil || auth.CheckFormat(auth.PrefixAPIToken, b.Token) != nil {
		t.Fatalf("bootstrap printed %q (%v), want the token", out.String(), err)
	}
	if !strings.Contains(errOut.String(), "read tables are not up to date") {
		t.Fatalf("stderr %q does not say the read tables lag", errOut.String())
	}
	if _, err := lock.ExecContext(context.Background(), "SELECT pg_advisory_unlock_all()"); err != nil {
		t.Fatal(err)
	}
	lock.Close()

	srv := startServer(t, cfg)
	srv.remember(b.Token, "lagging API token")
	expectStatus(t, srv.do(t, http.MethodGet, saBase, b.Token, nil), http.StatusOK, "token of a bootstrap whose catch-up timed out")
}

// TestTokensCLI issues and revokes personal API tokens with the CLI while
// a server runs: a new token works, and after revoke neither it nor the
// bootstrap token does. The CLI refuses unknown and malformed users.
func TestTokensCLI(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	h := startServer(t, cfg)
	acme := cliBootstrap(t, cfg, h.natsAddr(), "acme")
	h.remember(acme.Token, "acme API token")
	// eventually polls until the token gets want on a list request.
	eventually := func(t *testing.T, token string, want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := h.do(t, http.MethodGet, saBase, token, nil)
			if r.Status == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("token answered %s, want %d", r, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	eventually(t, acme.Token, http.StatusOK)

	out, err := cli(t, cfg, h.natsAddr(), "tokens", "issue", "--user", acme.UserID)
	testenv.Must(t, err, "tokens issue")
	var issued struct {
		UserID  string `json:"user_id"`
		TokenID string `json:"token_id"`
		Token   string `json:"token"`
	}
	if err := json.Unmarshal([]byte(out), &issued); err != nil || issued.UserID != acme.UserID || auth.CheckFormat(auth.PrefixAPIToken, issued.Token) != nil {
		t.Fatalf("tokens issue printed %q (%v)", out, err)
	}
	h.remember(issued.Token, "issued API token")
	eventually(t, issued.Token, http.StatusOK)

	out, err = cli(t, cfg, h.natsAddr(), "tokens", "revoke", "--user", acme.UserID)
	testenv.Must(t, err, "tokens revoke")
	if !strings.Contains(out, `"revoked":2`) {
		t.Fatalf("tokens revoke printed %q, want 2 revoked", out)
	}
	eventually(t, acme.Token, http.StatusUnauthorized)
	eventually(t, issued.Token, http.StatusUnauthorized)
	if out, err := cli(t, cfg, h.natsAddr(), "tokens", "revoke", "--user", acme.UserID); err != nil || !strings.Contains(out, `"revoked":0`) {
		t.Fatalf("second revoke: %q, %v", out, err)
	}

	for _, tc := range []struct{ user, want string }{{"01nosuchuser", "not found"}, {"../x", "--user"}} {
		if _, err := cli(t, cfg, h.natsAddr(), "tokens", "issue", "--user", tc.user); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("tokens issue --user %s: %v, want an error mentioning %q", tc.user, err, tc.want)
		}
	}
}
