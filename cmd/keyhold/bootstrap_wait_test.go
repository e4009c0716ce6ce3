package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/keyhold/keyhold/internal/testenv"
)

// TestBootstrapGivesUpWaiting: when the read tables cannot catch up within
// --wait, bootstrap still prints the token (shown only once), says on
// stderr how to check, exits 0, and does so in about --wait.
func TestBootstrapGivesUpWaiting(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	natsAddr := freeAddr(t)
	// A first command creates the database and the control tables.
	if _, err := cli(t, cfg, natsAddr, "projections", "status"); err != nil {
		t.Fatal(err)
	}
	db, err := sqlx.Open("postgres", cfg.databaseURL)
	testenv.Must(t, err, "open db")
	defer db.Close()
	// Hold the checkpoints locked: the read side cannot move while we do.
	tx, err := db.Beginx()
	testenv.Must(t, err, "begin")
	defer tx.Rollback()
	_, err = tx.Exec(`LOCK TABLE projection_checkpoints IN ACCESS EXCLUSIVE MODE`)
	testenv.Must(t, err, "lock")

	root := newRoot()
	args := withShared(root, []string{"bootstrap", "--tenant", "acme", "--username", "root", "--email", "root@acme.example", "--wait", "500ms"},
		"--data-dir", cfg.dataDir, "--database-url", cfg.databaseURL, "--nats-url", "", "--nats-listen", natsAddr, "--log-level", "error")
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	began := time.Now()
	code := run(ctx, args, &out, &errOut)
	took := time.Since(began)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var res struct{ Tenant, Token string }
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Tenant != "acme" || !strings.HasPrefix(res.Token, "khpat_") {
		t.Fatalf("stdout %q: %v", out.String(), err)
	}
	if msg := errOut.String(); !strings.Contains(msg, "still behind after --wait 500ms") || !strings.Contains(msg, "keyhold projections status") {
		t.Fatalf("stderr %q", msg)
	}
	if took > 20*time.Second {
		t.Fatalf("bootstrap took %s with --wait 500ms", took)
	}
}
