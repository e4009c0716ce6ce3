package auth_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/internal/testenv"
)

func newKEK(t *testing.T) auth.KEK {
	t.Helper()
	k, err := auth.NewKEK()
	testenv.Must(t, err, "new KEK")
	return k
}

func storedKeys(t *testing.T, db *sqlx.DB) map[string][]byte {
	t.Helper()
	var rows []struct {
		KID  string `db:"kid"`
		Blob []byte `db:"private_key"`
	}
	testenv.Must(t, db.Select(&rows, `SELECT kid, private_key FROM signing_keys`), "select keys")
	out := map[string][]byte{}
	for _, r := range rows {
		out[r.KID] = r.Blob
	}
	return out
}

// Keys an older Keyhold stored in the clear are wrapped when loaded, and
// keep verifying the tokens they signed.
func TestPlaintextKeysAreWrappedOnLoad(t *testing.T) {
	db := testenv.DB(t)
	_, err := db.Exec(auth.SigningKeysDDL)
	testenv.Must(t, err, "ddl")
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	testenv.Must(t, err, "generate")
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	testenv.Must(t, err, "encode")
	_, err = db.Exec(`INSERT INTO signing_keys (kid, private_key, created_at) VALUES ('old', $1, now() - interval '1 day')`, der)
	testenv.Must(t, err, "insert a key in the clear")

	k := loadKeys(t, db)
	blob := storedKeys(t, db)["old"]
	if bytes.Contains(blob, der) || bytes.Contains(blob, priv.Seed()) {
		t.Fatal("the old key is still stored in the clear")
	}
	if len(storedKeys(t, db)) != 1 || onlyKID(t, k) != "old" {
		t.Fatalf("keys %v, want only the old one, rewrapped", storedKeys(t, db))
	}
	tok := issue(t, k, claims(time.Now()))
	if _, err := loadKeys(t, db).Verify(tok, time.Now()); err != nil {
		t.Fatalf("a token of the rewrapped key: %v", err)
	}
}

// A key-encryption key other than the one the keys were wrapped with
// refuses to start, names both keys and creates nothing; rotation with the
// old key as previous rewraps them, after which the old key alone fails.
func TestWrongKEKAndRotation(t *testing.T) {
	db := testenv.DB(t)
	ctx := context.Background()
	oldKEK, newKEK := newKEK(t), newKEK(t)
	k, err := auth.LoadKeys(ctx, db, auth.WithKEK(oldKEK))
	testenv.Must(t, err, "load with the old KEK")
	tok := issue(t, k, claims(time.Now()))
	before := storedKeys(t, db)

	_, err = auth.LoadKeys(ctx, db, auth.WithKEK(newKEK))
	if !errors.Is(err, auth.ErrWrongKEK) || !errors.Is(err, auth.ErrSigningKeys) {
		t.Fatalf("new KEK alone: err = %v, want ErrWrongKEK", err)
	}
	for _, id := range []string{oldKEK.ID(), newKEK.ID()} {
		if !bytes.Contains([]byte(err.Error()), []byte(id)) {
			t.Fatalf("error %q does not name key-encryption key %s", err, id)
		}
	}
	if after := storedKeys(t, db); len(after) != len(before) {
		t.Fatalf("a refused start changed the keys: %d before, %d after", len(before), len(after))
	}

	rotated, err := auth.LoadKeys(ctx, db, auth.WithKEK(newKEK, oldKEK))
	testenv.Must(t, err, "rotate")
	if _, err := rotated.Verify(tok, time.Now()); err != nil {
		t.Fatalf("a token from before the rotation: %v", err)
	}
	for kid, blob := range storedKeys(t, db) {
		if bytes.Equal(blob, before[kid]) {
			t.Fatalf("key %s was not rewrapped", kid)
		}
	}
	if _, err := auth.LoadKeys(ctx, db, auth.WithKEK(newKEK)); err != nil {
		t.Fatalf("new KEK alone after the rotation: %v", err)
	}
	if _, err := auth.LoadKeys(ctx, db, auth.WithKEK(oldKEK)); !errors.Is(err, auth.ErrWrongKEK) {
		t.Fatalf("old KEK after the rotation: err = %v, want ErrWrongKEK", err)
	}
	if _, err := auth.LoadKeys(ctx, db); !errors.Is(err, auth.ErrInvalidOption) {
		t.Fatalf("no KEK: err = %v, want ErrInvalidOption", err)
	}
}

func TestLoadKEKFile(t *testing.T) {
	dir := t.TempDir()
	made := filepath.Join(dir, "made.key")
	k, err := auth.LoadKEKFile(made, true)
	testenv.Must(t, err, "create")
	st, err := os.Stat(made)
	testenv.Must(t, err, "stat")
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("new key file has mode %04o, want 0600", st.Mode().Perm())
	}
	again, err := auth.LoadKEKFile(made, true)
	testenv.Must(t, err, "load again")
	if again.ID() != k.ID() {
		t.Fatal("loading a key file again gave another key")
	}
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		testenv.Must(t, os.WriteFile(p, []byte(text), mode), "write %s", name)
		testenv.Must(t, os.Chmod(p, mode), "chmod %s", name)
		return p
	}
	tests := []struct {
		name   string
		path   string
		create bool
	}{
		{"missing without create", filepath.Join(dir, "none.key"), false},
		{"readable by others", write("open.key", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", 0o644), false},
		{"not base64", write("bad.key", "not a key\n", 0o600), false},
		{"too short", write("short.key", "AAECAw==\n", 0o600), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := auth.LoadKEKFile(tt.path, tt.create); !errors.Is(err, auth.ErrInvalidKEK) {
				t.Fatalf("err = %v, want ErrInvalidKEK", err)
			}
		})
	}
	good := write("good.key", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", 0o600)
	fromFile, err := auth.LoadKEKFile(good, false)
	testenv.Must(t, err, "good file")
	fromText, err := auth.ParseKEK([]byte("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"))
	testenv.Must(t, err, "parse unpadded")
	if fromFile.ID() != fromText.ID() {
		t.Fatal("the same key read from a file and from text differs")
	}
}

// MAC keys differ by purpose and by KEK, and the zero KEK has none.
func TestMACKey(t *testing.T) {
	a, b := newKEK(t), newKEK(t)
	ka := a.MACKey("directory snapshot")
	if len(ka) != 32 {
		t.Fatalf("key of %d bytes", len(ka))
	}
	for name, other := range map[string][]byte{
		"same KEK, same purpose":    a.MACKey("directory snapshot"),
		"same KEK, another purpose": a.MACKey("something else"),
		"another KEK":               b.MACKey("directory snapshot"),
	} {
		if equal := bytes.Equal(ka, other); equal != (name == "same KEK, same purpose") {
			t.Errorf("%s: equal %v", name, equal)
		}
	}
	if k := (auth.KEK{}).MACKey("directory snapshot"); k != nil {
		t.Fatalf("the zero KEK gave %x", k)
	}
}
