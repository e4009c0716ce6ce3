package main

import (
	"bytes"
	"context"
	"database/sql"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
)

// runCLI runs keyhold's main logic in-process and returns its exit code
// and output.
func runCLI(t *testing.T, timeout time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out, errOut bytes.Buffer
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestVersion checks both spellings print the version, commit and Go
// version, and that -ldflags' version wins over the module's.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, out, _ := runCLI(t, 10*time.Second, args...)
		if code != 0 || !strings.HasPrefix(out, "keyhold ") || !strings.Contains(out, "commit ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("keyhold %v: exit %d, output %q", args, code, out)
		}
	}
	info := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "v0.0.0-20261202-abc"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}}}
	for _, tt := range []struct {
		name, version string
		info          *debug.BuildInfo
		want          string
	}{
		{"ldflags version", "v1.2.3", info, "keyhold v1.2.3\ncommit  0123abcd (modified)\ngo      go1.99.1"},
		{"module version", "", info, "keyhold v0.0.0-20261202-abc\ncommit  0123abcd (modified)\ngo      go1.99.1"},
		{"no build info", "", nil, "keyhold (devel)\ncommit  unknown\ngo      " + runtime.Version()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := describeBuild(tt.version, tt.info); got != tt.want {
				t.Errorf("describeBuild = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestUsageErrors: an unknown command, subcommand or flag prints the
// message and the usage, and exits 2.
func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args      []string
		msg, used string
	}{
		{[]string{"bogus"}, `unknown command "bogus" for "keyhold"`, "Available Commands:"},
		{[]string{"projections", "bogus"}, `unknown command "bogus" for "keyhold projections"`, "rebuild"},
		{[]string{"tokens", "isue"}, `unknown command "isue" for "keyhold tokens"`, "revoke"},
		{[]string{"audit", "--bogus"}, "unknown flag: --bogus", "--aggregate"},
		{[]string{"bootstrap", "--tenant", "acme"}, `required flag(s) "email", "username" not set`, "--username"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, 10*time.Second, tt.args...)
			if code != exitUsage || out != "" || !strings.Contains(errOut, tt.msg) || !strings.Contains(errOut, "Usage:") || !strings.Contains(errOut, tt.used) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 with %q and the usage", code, out, errOut, tt.msg)
			}
		})
	}
}

// TestHelpListsOnlyUsedFlags checks each command's help lists the shared
// flags it takes, not those it does not, and an example.
func TestHelpListsOnlyUsedFlags(t *testing.T) {
	all := serveFlags
	for _, tt := range []struct {
		cmd  []string
		uses []string
	}{
		{[]string{"serve"}, serveFlags},
		{[]string{"bootstrap"}, tableFlags},
		{[]string{"projections", "status"}, tableFlags},
		{[]string{"projections", "rebuild"}, tableFlags},
		{[]string{"audit"}, tableFlags},
		{[]string{"tokens", "issue"}, tableFlags},
		{[]string{"tokens", "revoke"}, tableFlags},
		{[]string{"users", "create"}, tableFlags},
		{[]string{"users", "list"}, tableFlags},
		{[]string{"users", "show"}, tableFlags},
		{[]string{"users", "disable"}, tableFlags},
		{[]string{"users", "enable"}, tableFlags},
		{[]string{"users", "delete"}, tableFlags},
		{[]string{"users", "set-password"}, tableFlags},
		{[]string{"privacy", "erase"}, tableFlags},
		{[]string{"effects", "status"}, tableFlags},
		{[]string{"effects", "retry"}, tableFlags},
		{[]string{"effects", "dismiss"}, tableFlags},
		{[]string{"mail", "list"}, []string{"data-dir", "log-level"}},
		{[]string{"mail", "show"}, []string{"data-dir", "log-level"}},
		{[]string{"bench"}, []string{"database-url", "log-level", "read-wait"}},
		{[]string{"version"}, nil},
	} {
		t.Run(strings.Join(tt.cmd, " "), func(t *testing.T) {
			code, out, _ := runCLI(t, 10*time.Second, append(tt.cmd, "--help")...)
			if code != 0 || !strings.Contains(out, "Examples:\n  keyhold "+tt.cmd[0]) {
				t.Fatalf("exit %d, help without an example:\n%s", code, out)
			}
			for _, f := range all {
				want := false
				for _, u := range tt.uses {
					want = want || u == f
				}
				if got := strings.Contains(out, "--"+f+" "); got != want {
					t.Errorf("help lists --%s: %v, want %v", f, got, want)
				}
			}
		})
	}
}

// freshTarget is a data dir and a database name no one has created: a
// command refused up front creates neither.
func freshTarget(t *testing.T) (dataDir, dbURL string, exists func() bool) {
	t.Helper()
	dataDir = filepath.Join(t.TempDir(), "data")
	name := "keyhold_never_" + testenv.Suffix()
	u, err := url.Parse(testenv.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	dbURL = u.String()
	admin, err := sql.Open("postgres", testenv.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name)
		admin.Close()
	})
	return dataDir, dbURL, func() bool {
		var n int
		if err := admin.QueryRow("SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		_, statErr := os.Stat(dataDir)
		return n > 0 || statErr == nil
	}
}

// TestRefusedBeforeStarting: bad arguments and taken addresses are refused
// before any data dir, NATS server or database exists.
func TestRefusedBeforeStarting(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"bad tenant", []string{"bootstrap", "--tenant", "ACME", "--username", "admin", "--email", "admin@acme.example"}, "--tenant"},
		{"bad email", []string{"bootstrap", "--tenant", "acme", "--username", "admin", "--email", "not an address"}, "--email"},
		{"bad user", []string{"tokens", "issue", "--user", "../x"}, "--user"},
		{"unknown audit type", []string{"audit", "--type", "iam.service_account.create"}, "not a known event type"},
		{"taken HTTP address", []string{"serve", "--http-addr", taken.Addr().String(), "--nats-listen", "127.0.0.1:0"}, "--http-addr " + taken.Addr().String() + ": address in use"},
		{"taken NATS address", []string{"serve", "--http-addr", "127.0.0.1:0", "--nats-listen", taken.Addr().String()}, "--nats-listen " + taken.Addr().String() + ": address in use"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dataDir, dbURL, exists := freshTarget(t)
			root := newRoot()
			args := withShared(root, tt.args, "--data-dir", dataDir, "--database-url", dbURL, "--log-level", "error")
			code, out, errOut := runCLI(t, 30*time.Second, args...)
			if code != exitFailed || out != "" || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1 and an error naming %q", code, out, errOut, tt.want)
			}
			if exists() {
				t.Errorf("the data dir or the database was created before the command was refused")
			}
		})
	}
}

// TestAuditUnknownTypeListsKnown: a misspelt type is refused with the
// known types, instead of an empty trail.
func TestAuditUnknownTypeListsKnown(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	h := startServer(t, cfg)
	cliBootstrap(t, cfg, h.natsAddr(), "acme")
	out, err := cli(t, cfg, h.natsAddr(), "audit", "--type", "iam.tenant.create")
	if err == nil || out != "" {
		t.Fatalf("audit with an unknown type printed %q, error %v", out, err)
	}
	for _, want := range []string{"--type", "not a known event type", "iam.tenant.created", "iam.service_account.created"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "unique_key") {
		t.Errorf("error %q lists bookkeeping types the trail never shows", err)
	}
	out, err = cli(t, cfg, h.natsAddr(), "audit", "--type", "iam.tenant.created")
	if err != nil || strings.Count(out, "iam.tenant.created") != 1 {
		t.Fatalf("audit --type iam.tenant.created: %q, %v", out, err)
	}
}

// TestBootstrapBesideServerJoinsIt runs the report's case: a bootstrap
// with another --nats-listen beside a running server on the same data dir
// must write into the server's log, so the tenant survives its restart.
func TestBootstrapBesideServerJoinsIt(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	h := startServer(t, cfg)
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := other.Addr().String()
	other.Close() // free: an embedded server could start there
	b := cliBootstrap(t, cfg, addr, "beside")
	h.stop()
	h2 := startServer(t, cfg)
	h2.remember(b.Token, "bootstrap API token")
	expectStatus(t, h2.do(t, http.MethodGet, saBase, b.Token, nil), http.StatusOK, "token of a bootstrap beside the server, after its restart")
}

// TestExplicitDatabaseURLNoPrivateCluster: an explicit URL that does not
// answer fails, flag or environment, and no private cluster is made.
func TestExplicitDatabaseURLNoPrivateCluster(t *testing.T) {
	const dead = "postgres://postgres@127.0.0.1:1/keyhold?sslmode=disable"
	for _, tt := range []struct {
		name string
		env  bool
	}{{"flag", false}, {"environment", true}} {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			args := []string{"projections", "status", "--data-dir", dataDir, "--nats-listen", "127.0.0.1:0", "--log-level", "error"}
			if tt.env {
				t.Setenv("KEYHOLD_DATABASE_URL", dead)
			} else {
				unsetenv(t, "KEYHOLD_DATABASE_URL")
				args = append(args, "--database-url", dead)
			}
			code, _, errOut := runCLI(t, 60*time.Second, args...)
			if code != exitFailed || !strings.Contains(errOut, "127.0.0.1:1") || !strings.Contains(errOut, "only in place of the default database") {
				t.Errorf("exit %d, stderr %q; want an error naming the server", code, errOut)
			}
			if _, err := os.Stat(filepath.Join(dataDir, "postgres")); err == nil {
				t.Errorf("a private cluster was made for an explicit --database-url")
			}
		})
	}
}
