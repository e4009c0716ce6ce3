package mail_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/keyhold/keyhold/effects"
	"github.com/keyhold/keyhold/internal/smtptest"
	"github.com/keyhold/keyhold/mail"
)

const (
	user     = "keyhold"
	password = "s3cret-Pa55word-never-shown"
	from     = "Keyhold <iam@keyhold.example>"
)

func message(id string) mail.Message {
	return mail.Message{ID: id, To: []string{"ada@example.com"}, Subject: "Welcome to Keyhold",
		Text: "Hello Ada,\nyour link: https://iam.example.com/invite?x=1\n", HTML: "<p>Hello Ada</p>"}
}

func sender(t *testing.T, srv *smtptest.Server, scheme, starttls, auth, pw string) *mail.SMTP {
	t.Helper()
	u := fmt.Sprintf("%s://%s@%s", scheme, user, srv.Addr)
	s, err := mail.NewSMTP(mail.SMTPConfig{URL: u, Password: pw, From: from, StartTLS: starttls, Auth: auth,
		TLS: &tls.Config{RootCAs: srv.Roots, MinVersion: tls.VersionTLS12}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("NewSMTP: %v", err)
	}
	return s
}

func TestSMTPSends(t *testing.T) {
	for _, tt := range []struct {
		name     string
		tls      int
		scheme   string
		starttls string
		auth     string
		wantMech string
	}{
		{"STARTTLS and PLAIN", smtptest.StartTLS, "smtp", mail.StartTLSMandatory, mail.AuthPlain, "PLAIN"},
		{"STARTTLS and LOGIN", smtptest.StartTLS, "smtp", mail.StartTLSMandatory, mail.AuthLogin, "LOGIN"},
		{"STARTTLS and CRAM-MD5", smtptest.StartTLS, "smtp", mail.StartTLSOpportunistic, mail.AuthCRAMMD5, "CRAM-MD5"},
		{"implicit TLS, mechanism chosen", smtptest.Implicit, "smtps", "", mail.AuthAuto, "CRAM-MD5"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{TLS: tt.tls, User: user, Password: password})
			s := sender(t, srv, tt.scheme, tt.starttls, tt.auth, password)
			if err := s.Send(context.Background(), message("01evt-invite")); err != nil {
				t.Fatalf("send: %v", err)
			}
			got := srv.Messages()
			if len(got) != 1 {
				t.Fatalf("received %d messages", len(got))
			}
			m := got[0]
			if !m.TLS || m.AuthUser != user || m.AuthMech != tt.wantMech {
				t.Errorf("TLS %v, user %q, mechanism %q; want TLS, %q, %q", m.TLS, m.AuthUser, m.AuthMech, user, tt.wantMech)
			}
			if m.From != "iam@keyhold.example" || len(m.To) != 1 || m.To[0] != "ada@example.com" {
				t.Errorf("envelope from %q to %v", m.From, m.To)
			}
			data := string(m.Data)
			for _, want := range []string{"Subject: Welcome to Keyhold", "Message-ID: <01evt-invite@keyhold.example>", "multipart/alternative", "text/html"} {
				if !strings.Contains(data, want) {
					t.Errorf("message lacks %q:\n%s", want, data)
				}
			}
			if text, err := mail.TextPart(m.Data); err != nil || !strings.Contains(text, "https://iam.example.com/invite?x=1") {
				t.Errorf("text part %q, %v", text, err)
			}
		})
	}
}

// TestSMTPWithoutTLS: mandatory STARTTLS refuses a server without it;
// opportunistic sends in the clear.
func TestSMTPWithoutTLS(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{TLS: smtptest.Plain})
	s, err := mail.NewSMTP(mail.SMTPConfig{URL: "smtp://" + srv.Addr, From: from, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), message("m1")); err == nil || errors.Is(err, mail.ErrPermanent) {
		t.Fatalf("mandatory STARTTLS against a server without it: err %v, want a retryable error", err)
	}
	s, err = mail.NewSMTP(mail.SMTPConfig{URL: "smtp://" + srv.Addr, From: from, StartTLS: mail.StartTLSOpportunistic, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), message("m2")); err != nil {
		t.Fatalf("opportunistic: %v", err)
	}
	if got := srv.Messages(); len(got) != 1 || got[0].TLS {
		t.Fatalf("received %+v, want one message in the clear", got)
	}

}

// TestSMTPFailures: refusals are permanent (and so for the effects runner
// too), temporary answers and bad credentials are not, and no error shows
// the password.
func TestSMTPFailures(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{TLS: smtptest.StartTLS, User: user, Password: password, Reject: func(rcpt string) error {
		switch {
		case strings.HasPrefix(rcpt, "gone@"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox: <" + strings.ToUpper(rcpt) + ">"}
		case strings.HasPrefix(rcpt, "full@"):
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
		}
		return nil
	}})
	good := sender(t, srv, "smtp", "", "", password)
	wrong := sender(t, srv, "smtp", "", mail.AuthPlain, password+"-typo")
	for _, tt := range []struct {
		name      string
		s         *mail.SMTP
		to        string
		permanent bool
	}{
		{"refused recipient", good, "gone@example.com", true},
		{"temporary refusal", good, "full@example.com", false},
		{"wrong password", wrong, "ada@example.com", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := message("m-" + strings.ReplaceAll(tt.name, " ", "-"))
			m.To = []string{tt.to}
			err := tt.s.Send(context.Background(), m)
			if err == nil {
				t.Fatal("sent")
			}
			if errors.Is(err, mail.ErrPermanent) != tt.permanent || errors.Is(err, effects.ErrPermanent) != tt.permanent {
				t.Errorf("err %v: permanent %v, want %v", err, errors.Is(err, mail.ErrPermanent), tt.permanent)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error shows the password: %v", err)
			}
			// Addresses are personal data; errors are logged and recorded.
			if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.to)) {
				t.Errorf("error shows the recipient: %v", err)
			}
			if tt.permanent && !strings.Contains(err.Error(), "550") {
				t.Errorf("error lacks the server's answer: %v", err)
			}
		})
	}
	if len(srv.Messages()) != 0 {
		t.Fatalf("received %d messages", len(srv.Messages()))
	}
}

func TestNewSMTPRefusesBadSettings(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  mail.SMTPConfig
		want string
	}{
		{"password in the URL", mail.SMTPConfig{URL: "smtp://u:" + password + "@mail.example:587", From: from}, "holds a password"},
		{"unparsable URL with password", mail.SMTPConfig{URL: "smtp://u:" + password + "@mail example:587", From: from}, "does not parse"},
		{"scheme", mail.SMTPConfig{URL: "http://mail.example", From: from}, "scheme"},
		{"user without password", mail.SMTPConfig{URL: "smtp://u@mail.example", From: from}, "no password"},
		{"password without user", mail.SMTPConfig{URL: "smtp://mail.example", Password: password, From: from}, "names no user"},
		{"STARTTLS policy", mail.SMTPConfig{URL: "smtp://mail.example", From: from, StartTLS: "sometimes"}, "STARTTLS policy"},
		{"password in the clear", mail.SMTPConfig{URL: "smtp://u@mail.example", Password: password, From: from, StartTLS: mail.StartTLSNone}, "in the clear"},
		{"auth", mail.SMTPConfig{URL: "smtp://u@mail.example", Password: password, From: from, Auth: "ntlm"}, "SMTP auth"},
		{"from", mail.SMTPConfig{URL: "smtp://mail.example", From: "not an address"}, "from address"},
		{"port", mail.SMTPConfig{URL: "smtp://mail.example:99999", From: from}, "port"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mail.NewSMTP(tt.cfg)
			if !errors.Is(err, mail.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want ErrInvalidConfig saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

func TestOutbox(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	o, err := mail.NewOutbox(dir, from)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	html := message("01aaa-invite")
	text := mail.Message{ID: "01bbb-reset", To: []string{"bob@example.com"}, Subject: "Réinitialiser", Text: "Bonjour Bob, voilà: " + strings.Repeat("long ", 40)}
	for _, m := range []mail.Message{html, text} {
		if err := o.Send(ctx, m); err != nil {
			t.Fatalf("send %s: %v", m.ID, err)
		}
	}
	// A retry of the same message replaces it.
	text.Text = "Bonjour Bob, second try"
	if err := o.Send(ctx, text); err != nil {
		t.Fatal(err)
	}
	files, _ := os.ReadDir(dir)
	var names []string
	for _, f := range files {
		names = append(names, f.Name())
		if info, _ := f.Info(); info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f.Name(), info.Mode().Perm())
		}
	}
	if strings.Join(names, " ") != "01aaa-invite.eml 01bbb-reset.eml" {
		t.Fatalf("outbox holds %v", names)
	}
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
		t.Errorf("outbox mode %v, want 0700", info.Mode().Perm())
	}
	list, err := o.List()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]mail.Entry{}
	for _, e := range list {
		byID[e.ID] = e
	}
	if e := byID["01aaa-invite"]; !e.HTML || e.Subject != "Welcome to Keyhold" || len(e.To) != 1 || e.To[0] != "ada@example.com" || e.Date.IsZero() {
		t.Errorf("entry %+v", e)
	}
	if e := byID["01bbb-reset"]; e.HTML || e.Subject != "Réinitialiser" {
		t.Errorf("entry %+v", e)
	}
	raw, err := o.Read("01bbb-reset")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := mail.TextPart(raw); err != nil || got != "Bonjour Bob, second try" {
		t.Errorf("text %q, %v", got, err)
	}
	raw, _ = o.Read("01aaa-invite")
	if got, err := mail.TextPart(raw); err != nil || got != html.Text {
		t.Errorf("text of the alternative %q, %v", got, err)
	}
	for _, id := range []string{"nope", "../etc/passwd"} {
		if _, err := o.Read(id); !errors.Is(err, mail.ErrNotFound) {
			t.Errorf("Read(%q) = %v, want ErrNotFound", id, err)
		}
	}
	for _, bad := range []mail.Message{
		{ID: "../escape", To: []string{"a@example.com"}, Text: "x"},
		{ID: "ok", Text: "x"},
		{ID: "ok", To: []string{"not an address"}, Text: "x"},
		{ID: "ok", To: []string{"a@example.com"}},
	} {
		if err := o.Send(ctx, bad); !errors.Is(err, mail.ErrInvalidMessage) || !errors.Is(err, effects.ErrPermanent) {
			t.Errorf("Send(%+v) = %v, want a permanent ErrInvalidMessage", bad, err)
		}
	}
	if files, _ := os.ReadDir(dir); len(files) != 2 {
		t.Errorf("outbox holds %d files after refused sends", len(files))
	}
}
