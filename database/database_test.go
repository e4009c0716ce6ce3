package database

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/keyhold/keyhold/internal/testenv"
)

// adminURL is the Postgres server these tests create databases on; set
// KEYHOLD_TEST_DATABASE_URL to point elsewhere.
func adminURL() string {
	if u := os.Getenv("KEYHOLD_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// randomName returns a database name no other test uses.
func randomName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "keyhold_dbtest_" + hex.EncodeToString(b)
}

// urlFor returns the admin URL pointing at database name, and drops that
// database when the test ends.
func urlFor(t *testing.T, name string) string {
	t.Helper()
	u, err := url.Parse(adminURL())
	if err != nil {
		t.Fatalf("parse %s: %v", adminURL(), err)
	}
	u.Path = "/" + name
	t.Cleanup(func() {
		admin, err := sqlx.Open("postgres", adminURL())
		if err != nil {
			return
		}
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + pq.QuoteIdentifier(name) + " WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	return u.String()
}

// testLogger returns a logger writing to the returned buffer.
func testLogger(t *testing.T) (*slog.Logger, *testenv.SyncBuffer) {
	t.Helper()
	buf := &testenv.SyncBuffer{}
	return slog.New(slog.NewTextHandler(buf, nil)), buf
}

// mustOpen opens url with opts and closes the DB when the test ends.
func mustOpen(t *testing.T, url string, opts ...Option) *DB {
	t.Helper()
	db, err := Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// currentDatabase returns the name of the database db is connected to.
func currentDatabase(t *testing.T, db *DB) string {
	t.Helper()
	var name string
	if err := db.SQL().Get(&name, "SELECT current_database()"); err != nil {
		t.Fatalf("current_database: %v", err)
	}
	return name
}

func TestOpenInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
	}{
		{"nil logger", WithLogger(nil)},
		{"empty private cluster dir", WithPrivateCluster("")},
		{"blank private cluster dir", WithPrivateCluster("  ")},
		{"zero max conns", WithMaxConns(0)},
		{"negative max conns", WithMaxConns(-3)},
		{"zero connect timeout", WithConnectTimeout(0)},
		{"negative connect timeout", WithConnectTimeout(-time.Second)},
		{"nil option", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Port 1 refuses connections; options are checked before any dial.
			_, err := Open(context.Background(), "postgres://postgres@127.0.0.1:1/x?sslmode=disable", tt.opt)
			if !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("Open error = %v, want ErrInvalidOption", err)
			}
		})
	}
}

func TestOpenInvalidURL(t *testing.T) {
	_, err := Open(context.Background(), "postgres://u:secret@127.0.0.1:notaport/x")
	if !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("Open error = %v, want ErrInvalidURL", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("error shows the password: %v", err)
	}
}

func TestOpenLocalServer(t *testing.T) {
	tests := []struct {
		name        string
		precreate   bool
		wantCreated bool
	}{
		{"missing database is created", false, true},
		{"existing database is used", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := randomName(t)
			u := urlFor(t, name)
			if tt.precreate {
				admin, err := sqlx.Open("postgres", adminURL())
				if err != nil {
					t.Fatal(err)
				}
				defer admin.Close()
				if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
					t.Fatalf("create database (is Postgres running at %s?): %v", adminURL(), err)
				}
			}
			log, buf := testLogger(t)
			db := mustOpen(t, u, WithLogger(log), WithMaxConns(4))
			if got := currentDatabase(t, db); got != name {
				t.Fatalf("current_database = %q, want %q", got, name)
			}
			if got := db.SQL().Stats().MaxOpenConnections; got != 4 {
				t.Errorf("MaxOpenConnections = %d, want 4", got)
			}
			if db.PrivateDir() != "" {
				t.Errorf("PrivateDir = %q, want empty for a server keyhold does not run", db.PrivateDir())
			}
			created := strings.Contains(buf.String(), "created database "+name)
			if created != tt.wantCreated {
				t.Errorf("logged %q: created = %v, want %v", buf.String(), created, tt.wantCreated)
			}
		})
	}
}

func TestOpenUnreachable(t *testing.T) {
	// Nothing listens on port 1 of the loopback address.
	_, err := Open(context.Background(), "postgres://postgres@127.0.0.1:1/keyhold?sslmode=disable")
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Open error = %v, want ErrUnreachable", err)
	}
	for _, want := range []string{"127.0.0.1:1", "--database-url", "KEYHOLD_DATABASE_URL", "start Postgres"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestIsLocalHost(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"", true},
		{"localhost", true},
		{"LocalHost", true},
		{"127.0.0.1", true},
		{"127.0.0.53", true},
		{"::1", true},
		{"[::1]", true},
		{"/var/run/postgresql", true},
		{"db.localhost", true},
		{"db.example.com", false},
		{"10.0.0.5", false},
		{"postgres", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			if got := isLocalHost(tt.host); got != tt.want {
				t.Fatalf("isLocalHost(%q) = %v, want %v", tt.host, got, tt.want)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"15", "16", -1},
		{"9.6", "15", -1},
		{"16", "9.6", 1},
		{"15", "15", 0},
		{"10", "9", 1},
		{"15.2", "15.10", -1},
	}
	for _, tt := range tests {
		t.Run(tt.a+"_vs_"+tt.b, func(t *testing.T) {
			if got := compareVersions(tt.a, tt.b); got != tt.want {
				t.Fatalf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	got := shellQuote([]string{"/usr/bin/pg_ctl", "-o", "-p 5", "it's"})
	want := `'/usr/bin/pg_ctl' '-o' '-p 5' 'it'\''s'`
	if got != want {
		t.Fatalf("shellQuote = %s, want %s", got, want)
	}
}

// openPrivateDir makes a data directory for a private cluster; as root it
// lets the postgres user reach it, as Open requires.
func openPrivateDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		return dir
	}
	// t.TempDir's directories are 0700; the cluster runs as postgres.
	for d := dir; d != os.TempDir() && d != filepath.Dir(d); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatalf("chmod %s: %v", d, err)
		}
	}
	return dir
}

func TestOpenPrivateCluster(t *testing.T) {
	if _, err := findBinaries(); err != nil {
		t.Skipf("no Postgres binaries (initdb, pg_ctl) on this machine, so no private cluster can be started: %v", err)
	}
	if testing.Short() {
		t.Skip("starts a Postgres cluster (seconds); skipped with -short")
	}
	dataDir := openPrivateDir(t)
	// Nothing listens on port 1, so Open falls back to a private cluster.
	u := "postgres://keyhold@127.0.0.1:1/keyhold_private?sslmode=disable"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	steps := []struct {
		name     string
		wantLogs []string
	}{
		{"first start initialises the cluster", []string{"initialised private Postgres cluster", "started private Postgres cluster", "created database keyhold_private"}},
		{"second start reuses it", []string{"started private Postgres cluster"}},
	}
	for i, step := range steps {
		ok := t.Run(step.name, func(t *testing.T) {
			log, buf := testLogger(t)
			db, err := Open(ctx, u, WithLogger(log), WithPrivateCluster(dataDir))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			closed := false
			defer func() {
				if !closed {
					db.Close()
				}
			}()
			if got := currentDatabase(t, db); got != "keyhold_private" {
				t.Errorf("current_database = %q, want keyhold_private", got)
			}
			if want := filepath.Join(dataDir, "postgres"); db.PrivateDir() != want {
				t.Errorf("PrivateDir = %q, want %q", db.PrivateDir(), want)
			}
			for _, want := range step.wantLogs {
				if !strings.Contains(buf.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, buf.String())
				}
			}
			if i > 0 && strings.Contains(buf.String(), "initialised") {
				t.Errorf("second Open initialised the cluster again:\n%s", buf.String())
			}
			closed = true
			if err := db.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := db.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dataDir, "postgres", "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("postmaster.pid after Close: %v; want the server stopped", err)
			}
		})
		if !ok {
			return
		}
	}

	t.Run("a running cluster is used and left running", func(t *testing.T) {
		first, err := Open(ctx, u, WithPrivateCluster(dataDir))
		if err != nil {
			t.Fatalf("first Open: %v", err)
		}
		defer first.Close()
		log, buf := testLogger(t)
		second, err := Open(ctx, u, WithLogger(log), WithPrivateCluster(dataDir))
		if err != nil {
			t.Fatalf("second Open: %v", err)
		}
		if !strings.Contains(buf.String(), "already running") {
			t.Errorf("log lacks %q:\n%s", "already running", buf.String())
		}
		if err := second.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if got := currentDatabase(t, first); got != "keyhold_private" {
			t.Errorf("after the second Close: current_database = %q", got)
		}
		if err := first.Close(); err != nil {
			t.Fatalf("first Close: %v", err)
		}
	})
}

func TestFindBinariesPrefersPath(t *testing.T) {
	p, err := exec.LookPath("pg_ctl")
	if err != nil {
		t.Skip("pg_ctl is not in PATH")
	}
	dir, err := findBinaries()
	if err != nil {
		t.Fatalf("findBinaries: %v", err)
	}
	real, _ := filepath.EvalSymlinks(p)
	if dir != filepath.Dir(real) && dir != filepath.Dir(p) {
		t.Fatalf("findBinaries = %s, want the directory of %s", dir, p)
	}
}

func TestCommandRunsAsPostgresWhenRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs cluster programs through runuser/su only as root")
	}
	bin, err := findBinaries()
	if err != nil {
		t.Skipf("no Postgres binaries on this machine: %v", err)
	}
	base := &cluster{bin: bin}
	if _, err := base.setRunAs(); err != nil {
		t.Skipf("no postgres user to run as: %v", err)
	}
	runuser, _ := exec.LookPath("runuser")
	su, _ := exec.LookPath("su")
	tests := []struct {
		name string
		cl   cluster
	}{
		{"runuser", cluster{bin: bin, runAs: base.runAs, runuser: runuser}},
		{"su", cluster{bin: bin, runAs: base.runAs, su: su}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cl.runuser == "" && tt.cl.su == "" {
				t.Skipf("%s is not installed", tt.name)
			}
			// pg_ctl refuses root, so an answer about the directory shows it ran as postgres.
			out, err := tt.cl.command(context.Background(), "pg_ctl", "status", "-D", "/nonexistent dir").CombinedOutput()
			if strings.Contains(string(out), "root") {
				t.Fatalf("pg_ctl ran as root: %s", out)
			}
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatalf("run pg_ctl: %v", err)
			}
			if !strings.Contains(string(out), "/nonexistent dir") {
				t.Fatalf("pg_ctl did not get its argument intact: %s", out)
			}
		})
	}
}

func TestPrivateClusterUnreachableDirWhenRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to the postgres user")
	}
	if _, err := findBinaries(); err != nil {
		t.Skipf("no Postgres binaries on this machine: %v", err)
	}
	dataDir := t.TempDir() // 0700, owned by root: postgres cannot enter it
	if err := os.Chmod(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), "postgres://postgres@127.0.0.1:1/x?sslmode=disable", WithPrivateCluster(dataDir))
	if !errors.Is(err, ErrPrivateCluster) {
		t.Fatalf("Open error = %v, want ErrPrivateCluster", err)
	}
	if !strings.Contains(err.Error(), "chmod o+x") {
		t.Fatalf("error %q does not say how to fix it", err)
	}
}
