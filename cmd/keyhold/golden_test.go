package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

// goldenDir holds an event log written by an older Keyhold (see its README).
var goldenDir = filepath.Join("..", "..", "events", "testdata", "golden")

// goldenHeaders are the message headers the fixture keeps: the ones a
// reader of the log looks at. Batch and expectation headers only steer the
// append and are not kept.
var goldenHeaders = []string{"Keyhold-Type", "Nats-Msg-Id"}

// goldenMessage is one stored stream message of the fixture.
type goldenMessage struct {
	Seq     uint64            `json:"seq"`
	Subject string            `json:"subject"`
	Header  map[string]string `json:"header"`
	// Data is the message's data, byte for byte.
	Data string `json:"data"`
}

// loadGolden publishes the fixture's messages, in order, into the stream of
// h, which must be empty, and checks each lands at its original sequence.
func loadGolden(t *testing.T, h *harness) {
	t.Helper()
	f, err := os.Open(filepath.Join(goldenDir, "stream.jsonl"))
	testenv.Must(t, err, "open fixture")
	defer f.Close()
	ctx := context.Background()
	js := h.env.store.JetStream()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		var m goldenMessage
		testenv.Must(t, json.Unmarshal(sc.Bytes(), &m), "decode fixture line")
		msg := nats.NewMsg(m.Subject)
		msg.Data = []byte(m.Data)
		for k, v := range m.Header {
			msg.Header.Set(k, v)
		}
		ack, err := js.PublishMsg(ctx, msg)
		testenv.Must(t, err, "publish fixture message")
		if ack.Sequence != m.Seq {
			t.Fatalf("fixture message %d stored at sequence %d", m.Seq, ack.Sequence)
		}
		n++
	}
	testenv.Must(t, sc.Err(), "read fixture")
	if n == 0 {
		t.Fatal("empty fixture")
	}
}

// goldenJSON decodes one of the fixture's JSON side files.
func goldenJSON(t *testing.T, name string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, name))
	testenv.Must(t, err, "read %s", name)
	var m map[string]string
	testenv.Must(t, json.Unmarshal(b, &m), "decode %s", name)
	return m
}

// TestGoldenLogLoads replays the golden log, written by an older Keyhold,
// into a fresh stream, starts Keyhold on it and checks the reads answer
// what that history implies. It guards that old logs keep loading across
// schema changes: when wire shapes change, adapt only how a response maps
// to the domain values in the table.
func TestGoldenLogLoads(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	h1 := startServer(t, cfg)
	loadGolden(t, h1)
	h1.stop()
	h := startServer(t, cfg)
	secrets := goldenJSON(t, "secrets.json")
	acme, globex := secrets["acme bootstrap token"], secrets["globex API token"]

	type account struct {
		id, tenantToken, displayName, status, scope, scopeID string
		roles                                                []string
		credentials                                          map[string]string // id -> expiresAt
		secret                                               string
		grant                                                int // status of a client-credentials grant
	}
	for _, tc := range []struct {
		name string
		account
	}{
		{"renamed namespace account", account{"01m8w9h5yv2v39btnz3ncmg668", acme, "Deployer", "active", "folder", "team.app", []string{"viewer"},
			map[string]string{"01m8w9h5yzccg75na2esq2wsce": "2027-03-01T00:00:00Z"}, secrets["deployer secret"], 200}},
		{"tenant account with a revoked token", account{"01m8w9h5ywm9ppd3q32a3m8v54", acme, "ops", "active", "organization", "acme", []string{"auditor", "tenant-admin"},
			map[string]string{"01m8w9h5z1gc5mnxcytd13wt6n": "2027-01-01T21:10:54Z"}, secrets["ops secret"], 200}},
		{"disabled account", account{"01m8w9h5yxpj5cscdw98xj89gf", acme, "watcher", "disabled", "organization", "acme", []string{"viewer"},
			map[string]string{"01m8w9h5z1gc5mnxcytj9p5e5h": "2027-01-01T21:10:54Z"}, secrets["watcher secret"], 401}},
		{"other tenant's namespace account", account{"01m8w9h5yzccg75na2ejcg6zds", globex, "reader", "active", "folder", "data", []string{"auditor", "viewer"},
			map[string]string{"01m8w9h5z3cmpfmm6hrz8a8y3f": "2027-03-02T21:10:54Z"}, secrets["reader secret"], 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(t, "GET", saBase+"/"+tc.id, tc.tenantToken, nil)
			expectStatus(t, r, 200, "get")
			var got sa
			r.decode(t, &got)
			roles := slices.Clone(got.Roles)
			slices.Sort(roles)
			if got.DisplayName != tc.displayName || got.Status != tc.status || got.Scope != tc.scope || got.ScopeID != tc.scopeID || !slices.Equal(roles, tc.roles) {
				t.Errorf("got %+v, want %+v", got, tc.account)
			}
			if !slices.Contains(ids(h.listSAs(t, tc.tenantToken, "")), tc.id) {
				t.Errorf("%s not listed", tc.id)
			}
			r = h.do(t, "GET", saBase+"/"+tc.id+"/credentials", tc.tenantToken, nil)
			expectStatus(t, r, 200, "credentials")
			var page credentialPage
			r.decode(t, &page)
			creds := map[string]string{}
			for _, c := range page.Credentials {
				creds[c.ID] = parseTime(t, "expiresAt", c.ExpiresAt).UTC().Format(time.RFC3339)
			}
			if !maps.Equal(creds, tc.credentials) {
				t.Errorf("credentials %v, want %v", creds, tc.credentials)
			}
			if g := h.grant(t, "khc-"+tc.id, tc.secret); g.Status != tc.grant {
				t.Errorf("grant: %s, want %d", g, tc.grant)
			}
		})
	}
	t.Run("deleted account and credential gone", func(t *testing.T) {
		expectStatus(t, h.do(t, "GET", saBase+"/01m8w9h5yy7k4km1t42s1nr766", acme, nil), 404, "deleted account")
		if g := h.grant(t, "khc-01m8w9h5yy7k4km1t42s1nr766", secrets["gone secret"]); g.Status != 401 {
			t.Errorf("grant of deleted account: %s", g)
		}
		if g := h.grant(t, "khc-01m8w9h5yv2v39btnz3ncmg668", secrets["deployer deleted credential secret"]); g.Status != 401 {
			t.Errorf("grant with deleted credential: %s", g)
		}
	})
	t.Run("API tokens", func(t *testing.T) {
		expectStatus(t, h.do(t, "GET", saBase, globex, nil), 200, "live API token")
		expectStatus(t, h.do(t, "GET", saBase, secrets["globex revoked API token"], nil), 401, "revoked API token")
		expectStatus(t, h.do(t, "GET", saBase, secrets["globex bootstrap token"], nil), 401, "revoked bootstrap token")
	})
	t.Run("audit history", func(t *testing.T) {
		var types []string
		for _, e := range h.auditAll(t, acme, "aggregate=01m8w9h5ywm9ppd3q32a3m8v54") {
			types = append(types, e.Type)
		}
		want := []string{"iam.service_account.created", "iam.service_account.credential_created", "iam.service_account.access_token_revoked"}
		if !slices.Equal(types, want) {
			t.Errorf("history %v, want %v", types, want)
		}
	})
	t.Run("plaintext users, reservations under bare hashes, erase", func(t *testing.T) {
		ids := goldenJSON(t, "ids.json")
		globexUser := ids["globex user"]
		username := func() string {
			var name string
			testenv.Must(t, h.env.db.SQL().Get(&name, `SELECT username FROM users WHERE id = $1`, globexUser), "read users")
			return name
		}
		if got := username(); got != "root-globex" {
			t.Fatalf("username %q, want the plaintext of the old event", got)
		}
		ctx := context.Background()
		sys := commands.Meta{Caller: auth.System()}
		if _, err := h.srv.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "root-globex", Email: "new@globex.example"}); !errors.Is(err, commands.ErrAlreadyExists) {
			t.Fatalf("username claimed by the old log: %v, want ErrAlreadyExists", err)
		}
		expectStatus(t, h.do(t, "DELETE", "/v1/privacy/principals/"+globexUser, acme, nil), 204, "erase")
		if got := username(); got != events.ErasedMarker {
			t.Fatalf("username %q after the erase, want %q", got, events.ErasedMarker)
		}
		if _, err := h.srv.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "root-globex", Email: "root@globex.example"}); err != nil {
			t.Fatalf("register the erased old user's values again: %v", err)
		}
		// Tokens are not personal data: the user's API token still works.
		expectStatus(t, h.do(t, "GET", saBase, globex, nil), 200, "API token of the erased user")
	})
}
