// Package testenv gives tests their own real services: an embedded NATS
// server with JetStream on a random port, a stream of their own, and a
// Postgres database of their own, all removed when the test ends.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // Postgres driver
	"github.com/nats-io/nats.go"

	"github.com/keyhold/keyhold/events"
)

// AdminURL is the Postgres server tests create their databases on; set
// KEYHOLD_TEST_DATABASE_URL to point elsewhere.
func AdminURL() string {
	if u := os.Getenv("KEYHOLD_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Suffix returns a short random lowercase hex string.
func Suffix() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NATS starts an embedded server storing under dir (a new temp dir when
// empty) on a random port; it is shut down when the test ends.
func NATS(t testing.TB, dir string) *events.Embedded {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	srv, err := events.StartEmbedded(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// Conn connects to srv; the connection is closed when the test ends.
func Conn(t testing.TB, srv *events.Embedded) *nats.Conn {
	t.Helper()
	nc, err := srv.Connect("test")
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// StreamOptions returns options giving a test a stream and subject prefix of its own.
func StreamOptions() []events.Option {
	s := Suffix()
	return []events.Option{events.WithStream("T" + strings.ToUpper(s)), events.WithSubjectPrefix("t" + s)}
}

// Store starts a server and opens a store on a stream of the test's own.
func Store(t testing.TB) (*events.Store, *nats.Conn) {
	t.Helper()
	nc := Conn(t, NATS(t, ""))
	st, err := events.Open(context.Background(), nc, StreamOptions()...)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return st, nc
}

// DatabaseURL creates a database of the test's own and returns its URL; the
// database is dropped when the test ends.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	admin, err := sqlx.Open("postgres", AdminURL())
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer admin.Close()
	name := "keyhold_test_" + Suffix()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database (is Postgres running at %s?): %v", AdminURL(), err)
	}
	t.Cleanup(func() {
		a, err := sqlx.Open("postgres", AdminURL())
		if err != nil {
			return
		}
		defer a.Close()
		if _, err := a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(AdminURL())
	if err != nil {
		t.Fatalf("parse %s: %v", AdminURL(), err)
	}
	u.Path = "/" + name
	return u.String()
}

// DB opens a database of the test's own; it is closed and dropped when the test ends.
func DB(t testing.TB) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("postgres", DatabaseURL(t))
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatalf("ping database: %v", err)
	}
	return db
}

// Must fails the test on err.
func Must(t testing.TB, err error, what string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

// SyncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Eventually polls cond every few milliseconds until it holds, failing the
// test with what when it does not within within.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
