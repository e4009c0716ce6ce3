package main

import (
	"net/http"
	"path/filepath"
	"testing"
)

// TestReplicasShareOneDatabase runs two servers on one NATS stream and one
// database, as replicas do: only one applies each projector, and a write
// answered by either is visible to reads through both at once.
func TestReplicasShareOneDatabase(t *testing.T) {
	a := startServer(t, nil)
	cfg := testConfig(t)
	cfg.databaseURL = a.cfg.databaseURL
	cfg.natsURL = "nats://" + a.natsAddr()
	// Replicas share the key-encryption key of the signing keys.
	cfg.keyFile = filepath.Join(a.cfg.dataDir, "keyhold.key")
	b := startServer(t, cfg)

	if a.srv.runner.Leading("iam") == b.srv.runner.Leading("iam") {
		t.Fatalf("iam leading on a=%v b=%v, want exactly one", a.srv.runner.Leading("iam"), b.srv.runner.Leading("iam"))
	}
	adm := a.bootstrap(t, "acme")
	for i, pair := range []struct {
		name        string
		write, read *harness
	}{
		{"write a read a", a, a},
		{"write b read b", b, b},
		{"write a read b", a, b},
		{"write b read a", b, a},
	} {
		t.Run(pair.name, func(t *testing.T) {
			created := pair.write.createSA(t, adm.token, tenantSA(pair.name))
			// The writer answered only after the shared read tables held the
			// write, so a read through either replica sees it.
			r := pair.read.do(t, http.MethodGet, saBase+"/"+created.ID, adm.token, nil)
			expectStatus(t, r, http.StatusOK, "read the write")
			if n := len(pair.read.listSAs(t, adm.token, "")); n < i+1 {
				t.Fatalf("list through the reader shows %d service accounts, want at least %d", n, i+1)
			}
		})
	}
	if got := a.srv.runner.Leading("iam") || b.srv.runner.Leading("iam"); !got {
		t.Fatal("no replica applies iam")
	}
}
