package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/keyhold/keyhold/effects"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/smtptest"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/mail"
)

// welcome is a test reaction: it mails the owner of every new service
// account a link to it, to an address made of the account's display name.
type welcome struct{ d reactionDeps }

func (welcome) Name() string    { return "welcome" }
func (welcome) Types() []string { return []string{events.ServiceAccountCreated{}.EventType()} }

func (w welcome) React(ctx context.Context, env events.Envelope, ev events.Event) error {
	sa := ev.(events.ServiceAccountCreated)
	link := w.d.Links.URL("/service-accounts", url.Values{"id": {env.Subject}})
	return w.d.Mail.Send(ctx, mail.Message{ID: env.ID, To: []string{sa.DisplayName + "@acme.example"},
		Subject: "New service account " + sa.DisplayName, Text: "See " + link + "\n", HTML: "<a href=\"" + link + "\">" + sa.DisplayName + "</a>"})
}

func withWelcome(cfg *config) *config {
	cfg.reactions = func(d reactionDeps) []effects.Reaction { return []effects.Reaction{welcome{d}} }
	return cfg
}

// eventually polls cond for up to 15 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, what, cond)
}

// TestServeSendsMailThroughSMTP runs a reaction in serve against an SMTP
// server with STARTTLS, a self-signed certificate and AUTH: a committed
// event mails once, with a link on the public URL; a refused recipient is
// recorded as failed and makes /readyz degraded (still 200), shows in
// keyhold effects status and the metrics; a rebuild of the read tables
// sends nothing again; the SMTP password is in no log, table or event.
func TestServeSendsMailThroughSMTP(t *testing.T) {
	const password = "smtp-pw-9f2c-never-logged"
	srv := smtptest.Start(t, smtptest.Options{TLS: smtptest.StartTLS, User: "keyhold", Password: password, Reject: func(rcpt string) error {
		if strings.HasPrefix(rcpt, "gone@") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
		}
		return nil
	}})
	cfg := withWelcome(testConfig(t))
	dir := t.TempDir()
	cfg.mail.smtpURL = "smtp://keyhold@" + srv.Addr
	cfg.mail.smtpPasswordFile = filepath.Join(dir, "smtp-password")
	cfg.mail.smtpCAFile = filepath.Join(dir, "ca.pem")
	cfg.mail.publicURL = "https://iam.example.com/keyhold/"
	cfg.mail.from = "Keyhold <iam@acme.example>"
	if err := os.WriteFile(cfg.mail.smtpPasswordFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.mail.smtpCAFile, srv.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	h := startServer(t, cfg)
	h.remember(password, "SMTP password")
	adm := h.bootstrap(t, testTenant)

	ada := h.createSA(t, adm.token, tenantSA("ada"))
	eventually(t, "a mail", func() bool { return len(srv.Messages()) == 1 })
	m := srv.Messages()[0]
	if !m.TLS || m.AuthUser != "keyhold" || len(m.To) != 1 || m.To[0] != "ada@acme.example" || m.From != "iam@acme.example" {
		t.Fatalf("received TLS %v, user %q, from %q to %v", m.TLS, m.AuthUser, m.From, m.To)
	}
	text, err := mail.TextPart(m.Data)
	if want := "https://iam.example.com/keyhold/service-accounts?id=" + ada.ID; err != nil || !strings.Contains(text, want) {
		t.Fatalf("text %q (%v), want the link %s", text, err, want)
	}

	h.createSA(t, adm.token, tenantSA("gone"))
	eventually(t, "the refusal recorded", func() bool {
		st, err := h.srv.effects.Status(context.Background())
		if err != nil {
			return false
		}
		for _, r := range st {
			if r.Name == "welcome" {
				return r.Failed == 1
			}
		}
		return false
	})
	r := h.do(t, http.MethodGet, "/readyz", "", nil)
	expectStatus(t, r, http.StatusOK, "readyz")
	var ready struct {
		Checks map[string]string `json:"checks"`
	}
	r.decode(t, &ready)
	if c := ready.Checks["effects"]; !strings.HasPrefix(c, "degraded: welcome: 1 event(s) failed") {
		t.Fatalf("readyz effects check %q, want degraded by the failed event", c)
	}
	out, err := cli(t, cfg, h.natsAddr(), "effects", "status")
	if err != nil {
		t.Fatalf("effects status: %v", err)
	}
	if strings.Contains(out, password) || strings.Contains(out, "gone@acme.example") {
		t.Errorf("effects status shows the SMTP password or the recipient:\n%s", out)
	}
	// A header, then a row per reaction: serve's own (the invitation
	// mail) and the test's.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "REACTION") {
		t.Fatalf("effects status printed:\n%s", out)
	}
	row := ""
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "welcome ") {
			row = l
		}
	}
	f := strings.Fields(row)
	// REACTION POSITION HEAD LAG DONE RETRYING FAILED UNKNOWN LAST ERROR
	if len(f) < 8 || f[4] != "1" || f[5] != "0" || f[6] != "1" || f[7] != "0" || !strings.Contains(row, "550") {
		t.Fatalf("effects status row %q, want welcome with one done, one failed and the server's answer", row)
	}
	metrics := h.do(t, http.MethodGet, "/metrics", "", nil)
	for _, want := range []string{`keyhold_effects_sent_total{reaction="welcome"} 1`, `keyhold_effects_failed_total{reaction="welcome"} 1`} {
		if !strings.Contains(string(metrics.Body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// The operator asks for the refused mail again (refused again: the
	// server's answer stands), then records it as handled.
	if out, err := cli(t, cfg, h.natsAddr(), "effects", "retry", "welcome"); err != nil || !strings.Contains(out, "welcome: 1 event(s) put back for a retry") {
		t.Fatalf("effects retry: %v\n%s", err, out)
	}
	eventually(t, "the retry refused again", func() bool {
		m := h.do(t, http.MethodGet, "/metrics", "", nil)
		return strings.Contains(string(m.Body), `keyhold_effects_failed_total{reaction="welcome"} 2`)
	})
	if out, err := cli(t, cfg, h.natsAddr(), "effects", "dismiss", "welcome"); err != nil || !strings.Contains(out, "welcome: 1 event(s) recorded as handled") {
		t.Fatalf("effects dismiss: %v\n%s", err, out)
	}
	if out, err := cli(t, cfg, h.natsAddr(), "effects", "dismiss", "welcome"); err == nil || !strings.Contains(out+err.Error(), "no failed or unknown-outcome event") {
		t.Fatalf("a second dismiss: %v\n%s", err, out)
	}
	r = h.do(t, http.MethodGet, "/readyz", "", nil)
	r.decode(t, &ready)
	if c := ready.Checks["effects"]; c != "ok" {
		t.Fatalf("readyz effects check %q after the dismissal, want ok", c)
	}

	if out, err := cli(t, cfg, h.natsAddr(), "projections", "rebuild"); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out)
	}
	h.createSA(t, adm.token, tenantSA("bob"))
	eventually(t, "the mail after the rebuild", func() bool { return len(srv.Messages()) == 2 })
	time.Sleep(200 * time.Millisecond) // time for a repeat to show
	if got := srv.Messages(); len(got) != 2 || got[1].To[0] != "bob@acme.example" {
		t.Fatalf("after the rebuild the server received %d messages, want only bob's new one", len(got))
	}
	h.assertNoSecretsStored(t)
}

// TestOutboxAndMailCommands: without SMTP, mail goes to the outbox, which
// keyhold mail list and show read.
func TestOutboxAndMailCommands(t *testing.T) {
	cfg := withWelcome(testConfig(t))
	h := startServer(t, cfg)
	adm := h.bootstrap(t, testTenant)
	sa := h.createSA(t, adm.token, tenantSA("carol"))
	var id string
	eventually(t, "a mail in the outbox", func() bool {
		files, _ := filepath.Glob(filepath.Join(cfg.dataDir, "outbox", "*.eml"))
		if len(files) == 1 {
			id = strings.TrimSuffix(filepath.Base(files[0]), ".eml")
		}
		return id != ""
	})

	out, err := cli(t, cfg, "", "mail", "list")
	if err != nil {
		t.Fatalf("mail list: %v", err)
	}
	if !strings.Contains(out, id) || !strings.Contains(out, "carol@acme.example") || !strings.Contains(out, "New service account carol") {
		t.Fatalf("mail list printed:\n%s", out)
	}
	out, err = cli(t, cfg, "", "mail", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var e mail.Entry
	if err := json.Unmarshal([]byte(out), &e); err != nil || e.ID != id || !e.HTML {
		t.Fatalf("mail list --json printed %q (%v)", out, err)
	}
	out, err = cli(t, cfg, "", "mail", "show", id, "--text")
	if want := "See http://" + h.cfg.httpAddr; err != nil || !strings.Contains(out, "/service-accounts?id="+sa.ID) {
		t.Fatalf("mail show --text printed %q (%v), want the link (%s...)", out, err, want)
	}
	out, err = cli(t, cfg, "", "mail", "show", id)
	if err != nil || !strings.Contains(out, "Content-Type: multipart/alternative") || !strings.Contains(out, "Message-ID: <"+id+"@localhost>") {
		t.Fatalf("mail show printed:\n%s\n(%v)", out, err)
	}
	if _, err := cli(t, cfg, "", "mail", "show", "nope"); err == nil || !strings.Contains(err.Error(), "keyhold mail list") {
		t.Fatalf("mail show of an unknown id: %v", err)
	}
	res, err := http.Get(h.ts.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `"effects":"ok"`) {
		t.Fatalf("readyz %s, want the effects check ok", body)
	}
}
