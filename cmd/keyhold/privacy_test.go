package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

// TestErasePersonalData creates a user with values found nowhere else,
// erases it over HTTP, then scans the raw stream, every table of the
// database and the server's log for them and finds none; readers show
// the fields as erased, the user cannot log in by name, and the values
// can be registered again.
func TestErasePersonalData(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	h := startServer(t, cfg)
	adm := h.bootstrap(t, "acme")
	const pw = "a long password for quintessa"
	h.remember(pw, "password")
	plain := map[string]string{
		"username":     "zq-erasable-7731",
		"email":        "zq.erasable.7731@vantablack.example",
		"first name":   "Quintessa",
		"last name":    "Vantablackova",
		"display name": "Quintessa the Unforgettable",
	}
	out, err := cliIn(t, cfg, h, pw+"\n", "users", "create", "--username", plain["username"], "--email", plain["email"],
		"--first-name", plain["first name"], "--last-name", plain["last name"], "--display-name", plain["display name"],
		"--tenant", "acme", "--password-stdin")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	var u struct {
		UserID string `json:"user_id"`
	}
	if err := json.Unmarshal([]byte(out), &u); err != nil || u.UserID == "" {
		t.Fatalf("create printed %q (%v)", out, err)
	}
	h.eventually(t, plain["username"], pw, http.StatusOK)
	h.eventually(t, plain["email"], pw, http.StatusOK)

	// Before the erase: the log holds the values only encrypted, while the
	// read table and the audit CLI show them, so the scans below can see
	// them when they are there.
	stream, db, _ := h.dump(t)
	for what, v := range plain {
		if strings.Contains(stream, v) {
			t.Errorf("%s in the event log in the clear", what)
		}
		if !strings.Contains(db, v) {
			t.Errorf("%s not in the database before the erase: the scan would miss it", what)
		}
	}
	if !strings.Contains(stream, u.UserID) || !strings.Contains(stream, `"personal_enc"`) {
		t.Fatal("the user's encrypted events are not in the scanned log")
	}
	trail, err := cliIn(t, cfg, h, "", "audit", "--tenant", "_", "--aggregate", u.UserID, "--json")
	if err != nil || !strings.Contains(trail, plain["display name"]) {
		t.Fatalf("audit before the erase: %v\n%s", err, trail)
	}

	// A keyed request whose recorded response holds the user: a Kestra
	// group member. Its replay must not keep the values after the erase.
	g := h.send(t, httpReq{method: http.MethodPost, path: "/api/v1/acme/groups", token: adm.token, body: map[string]any{"name": "erasers"}})
	expectStatus(t, g, http.StatusOK, "create a group")
	var group struct{ ID string }
	g.decode(t, &group)
	member := httpReq{method: http.MethodPut, path: "/api/v1/acme/groups/" + group.ID + "/members/" + u.UserID, token: adm.token,
		header: map[string]string{"Idempotency-Key": "add-quintessa"}}
	expectStatus(t, h.send(t, member), http.StatusOK, "add the user under a key")

	_, saToken := h.principal(t, adm.token, "ops", authz.RoleTenantAdmin)
	path := "/v1/privacy/principals/" + u.UserID
	for _, tc := range []struct {
		name  string
		token string
		path  string
		want  int
	}{
		{"not a superadmin", saToken, path, http.StatusForbidden},
		{"unknown user", adm.token, "/v1/privacy/principals/" + events.NewID(), http.StatusNotFound},
		{"bad id", adm.token, "/v1/privacy/principals/a.b", http.StatusBadRequest},
		{"erase", adm.token, path, http.StatusNoContent},
		{"again", adm.token, path, http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(t, http.MethodDelete, tc.path, tc.token, nil)
			if tc.want == http.StatusNoContent {
				expectStatus(t, r, tc.want, tc.name)
				return
			}
			checkProblem(t, r, tc.want)
		})
	}
	if _, err := cliIn(t, cfg, h, "", "privacy", "erase", "--principal", u.UserID); err != nil {
		t.Fatalf("erase from the CLI after the API: %v", err)
	}
	h.eventually(t, plain["username"], pw, http.StatusUnauthorized)
	h.eventually(t, plain["email"], pw, http.StatusUnauthorized)

	show, err := cliIn(t, cfg, h, "", "users", "show", "--user", u.UserID, "--json")
	var shown userRow
	if err != nil || json.Unmarshal([]byte(show), &shown) != nil || shown.Username != events.ErasedMarker || shown.Email != events.ErasedMarker ||
		shown.DisplayName != events.ErasedMarker || shown.Status != "active" {
		t.Fatalf("users show after the erase: %v\n%s", err, show)
	}
	trail, err = cliIn(t, cfg, h, "", "audit", "--tenant", "_", "--aggregate", u.UserID, "--json")
	if err != nil || !strings.Contains(trail, events.ErasedMarker) || !strings.Contains(trail, "iam.user.personal_data_erased") {
		t.Fatalf("audit after the erase: %v\n%s", err, trail)
	}

	stream, db, logs := h.dump(t)
	if !strings.Contains(logs, "/v1/privacy/principals/{id}") {
		t.Fatal("the erase requests are not in the scanned server log")
	}
	for what, v := range plain {
		for _, f := range []string{v, strings.ToLower(v), hex.EncodeToString([]byte(v))} {
			if strings.Contains(stream, f) {
				t.Errorf("%s found in the event log", what)
			}
			if strings.Contains(db, f) {
				t.Errorf("%s found in the database", what)
			}
			if strings.Contains(logs, f) {
				t.Errorf("%s found in the server log", what)
			}
			if strings.Contains(trail, f) {
				t.Errorf("%s found in the audit trail", what)
			}
		}
	}

	// The keyed request still replays, without the erased values.
	again := h.send(t, member)
	if again.Status != http.StatusOK || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay after the erase: %s", again)
	}

	// The values are free again.
	if _, err := cliIn(t, cfg, h, pw+"\n", "users", "create", "--username", plain["username"], "--email", plain["email"], "--tenant", "acme", "--password-stdin"); err != nil {
		t.Fatalf("register the erased values again: %v", err)
	}
	h.eventually(t, plain["username"], pw, http.StatusOK)
	h.assertNoSecretsStored(t)

	// Nor is anything the server leaves in its data dir in the clear: the
	// NATS store, the key file, the directory's snapshot written on stop.
	h.stop()
	if _, err := os.Stat(cfg.snapshotPath()); err != nil {
		t.Fatalf("no directory snapshot after the stop: %v", err)
	}
	files := 0
	err = filepath.WalkDir(cfg.dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for what, v := range plain {
			for _, f := range []string{v, strings.ToLower(v)} {
				if bytes.Contains(b, []byte(f)) {
					t.Errorf("%s found in %s", what, path)
				}
			}
		}
		return nil
	})
	testenv.Must(t, err, "scan the data dir")
	if files < 3 {
		t.Fatalf("scanned %d files in the data dir", files)
	}
}

// dump returns every event of the stream as raw message bytes (one per
// line), the text of every row of every table in the test's database,
// and the server's log.
func (h *harness) dump(t *testing.T) (stream, db, logs string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := h.env.nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	info, err := js.StreamInfo(h.env.store.StreamName())
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	var sb strings.Builder
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := js.GetMsg(h.env.store.StreamName(), seq)
		if err != nil {
			continue // deleted
		}
		sb.WriteString(m.Subject)
		sb.WriteByte(' ')
		for k, v := range m.Header {
			fmt.Fprintf(&sb, "%s=%s ", k, v)
		}
		sb.Write(m.Data)
		sb.WriteByte('\n')
	}
	if sb.Len() == 0 {
		t.Fatal("the stream is empty")
	}
	var tables []struct {
		Schema string `db:"table_schema"`
		Name   string `db:"table_name"`
	}
	if err := h.env.db.SQL().SelectContext(ctx, &tables, `SELECT table_schema, table_name FROM information_schema.tables
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`); err != nil {
		t.Fatalf("list tables: %v", err)
	}
	var rows strings.Builder
	for _, tb := range tables {
		q := "SELECT t::text FROM " + pq.QuoteIdentifier(tb.Schema) + "." + pq.QuoteIdentifier(tb.Name) + " t"
		var texts []string
		if err := h.env.db.SQL().SelectContext(ctx, &texts, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for _, s := range texts {
			fmt.Fprintf(&rows, "%s.%s: %s\n", tb.Schema, tb.Name, s)
		}
	}
	if !strings.Contains(rows.String(), "privacy_keys") {
		t.Fatal("the key table was not scanned")
	}
	return sb.String(), rows.String(), h.logs.String()
}
