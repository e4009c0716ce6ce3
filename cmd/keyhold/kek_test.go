package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/internal/testenv"
)

// serve makes <data-dir>/keyhold.key (0600) and keeps the signing keys in
// Postgres wrapped by it; a server given another key-encryption key for
// the same database refuses to start, saying so, and one given the old key
// as --previous-key-file rotates.
func TestSigningKeysWrappedByKeyFile(t *testing.T) {
	a := startServer(t, nil)
	keyFile := filepath.Join(a.cfg.dataDir, "keyhold.key")
	st, err := os.Stat(keyFile)
	testenv.Must(t, err, "key file")
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	keyText, err := os.ReadFile(keyFile)
	testenv.Must(t, err, "read key file")
	var blobs [][]byte
	testenv.Must(t, a.env.db.SQL().Select(&blobs, `SELECT private_key FROM signing_keys`), "dump signing_keys")
	for _, b := range blobs {
		if !bytes.HasPrefix(b, []byte("KHK1")) {
			t.Fatalf("a signing key is stored unwrapped: %x...", b[:8])
		}
	}
	a.stop()

	start := func(cfg *config) error {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		e, err := openWith(ctx, cfg, true, slog.New(slog.DiscardHandler))
		testenv.Must(t, err, "open env")
		defer e.close()
		_, err = newServer(ctx, e)
		return err
	}
	other := testConfig(t)
	other.databaseURL = a.cfg.databaseURL
	err = start(other)
	if !errors.Is(err, auth.ErrWrongKEK) || !strings.Contains(err.Error(), "key file") {
		t.Fatalf("another data dir's new key: err = %v, want ErrWrongKEK saying what to do", err)
	}

	rotated := testConfig(t)
	rotated.databaseURL = a.cfg.databaseURL
	rotated.keyFile = filepath.Join(other.dataDir, "keyhold.key")
	rotated.previousKeyFile = keyFile
	testenv.Must(t, start(rotated), "rotate to the other key")
	again := testConfig(t)
	again.databaseURL = a.cfg.databaseURL
	t.Setenv("KEYHOLD_KEY", strings.TrimSpace(string(keyText)))
	if err := start(again); !errors.Is(err, auth.ErrWrongKEK) {
		t.Fatalf("the rotated-out key after the rotation: err = %v, want ErrWrongKEK", err)
	}
}
