package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/keyhold/keyhold/mail"
)

// mailConfig holds the settings of outgoing mail and of the links in it.
type mailConfig struct {
	smtpURL          string
	smtpPasswordFile string
	smtpCAFile       string
	from             string
	startTLS         string
	auth             string
	publicURL        string
	// password is read once by smtpPassword.
	password *string
}

// defaultFrom is the sender of mail unless --mail-from says otherwise.
const defaultFrom = "Keyhold <keyhold@localhost>"

func (c *config) bindMail(f *pflag.FlagSet) {
	m := &c.mail
	f.StringVar(&m.smtpURL, "smtp-url", envOr("KEYHOLD_SMTP_URL", ""),
		"SMTP server as smtp://[user@]host[:port] (STARTTLS, port 587) or smtps://[user@]host[:port] (TLS, port 465); empty writes mail to <data-dir>/outbox instead (KEYHOLD_SMTP_URL)")
	f.StringVar(&m.smtpPasswordFile, "smtp-password-file", envOr("KEYHOLD_SMTP_PASSWORD_FILE", ""),
		"file holding the SMTP user's password; KEYHOLD_SMTP_PASSWORD may hold the password itself instead (KEYHOLD_SMTP_PASSWORD_FILE)")
	f.StringVar(&m.smtpCAFile, "smtp-ca-file", envOr("KEYHOLD_SMTP_CA_FILE", ""),
		"PEM file of the certificate authorities to trust for the SMTP server instead of the system's, for a server with a private or self-signed certificate (KEYHOLD_SMTP_CA_FILE)")
	f.StringVar(&m.startTLS, "smtp-starttls", envOr("KEYHOLD_SMTP_STARTTLS", mail.StartTLSMandatory),
		"for smtp:// URLs: mandatory (refuse a server without STARTTLS), opportunistic (upgrade when offered) or none (KEYHOLD_SMTP_STARTTLS)")
	f.StringVar(&m.auth, "smtp-auth", envOr("KEYHOLD_SMTP_AUTH", mail.AuthAuto),
		"SMTP authentication when the URL names a user: auto (the strongest offered), plain, login or cram-md5 (KEYHOLD_SMTP_AUTH)")
	f.StringVar(&m.from, "mail-from", envOr("KEYHOLD_MAIL_FROM", defaultFrom), "sender address of Keyhold's mail (KEYHOLD_MAIL_FROM)")
	f.StringVar(&m.publicURL, "public-url", envOr("KEYHOLD_PUBLIC_URL", ""),
		"the URL clients reach Keyhold at, the base of links in mail such as invitations; empty: http://<http-addr> (KEYHOLD_PUBLIC_URL)")
}

// validateMail checks the mail settings of a command that takes them.
func (c *config) validateMail() error {
	if c.uses != nil && !c.uses("smtp-url") {
		return nil
	}
	// Without --public-url the base comes from --http-addr, which its
	// own checks cover.
	if c.mail.publicURL != "" {
		if _, err := c.links(); err != nil {
			return fmt.Errorf("--public-url: %w", err)
		}
	}
	if _, err := mail.ParseFrom(c.mailFrom()); err != nil {
		return fmt.Errorf("--mail-from: %w", err)
	}
	pw, err := c.smtpPassword()
	if err != nil {
		return err
	}
	if c.mail.smtpURL == "" {
		if pw != "" {
			return errors.New("an SMTP password is given but no --smtp-url")
		}
		return nil
	}
	if _, err := c.smtpConfig(pw); err != nil {
		return err
	}
	return nil
}

// smtpPassword reads the SMTP password once: from --smtp-password-file
// (trailing newline dropped) or KEYHOLD_SMTP_PASSWORD, not both.
func (c *config) smtpPassword() (string, error) {
	if c.mail.password != nil {
		return *c.mail.password, nil
	}
	inline, hasInline := os.LookupEnv("KEYHOLD_SMTP_PASSWORD")
	var pw string
	switch {
	case hasInline && c.mail.smtpPasswordFile != "":
		return "", errors.New("KEYHOLD_SMTP_PASSWORD and --smtp-password-file (or KEYHOLD_SMTP_PASSWORD_FILE) both give the SMTP password: give one")
	case hasInline:
		pw = inline
	case c.mail.smtpPasswordFile != "":
		b, err := os.ReadFile(c.mail.smtpPasswordFile)
		if err != nil {
			return "", fmt.Errorf("--smtp-password-file: %w", err)
		}
		pw = strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return "", fmt.Errorf("--smtp-password-file %s is empty", c.mail.smtpPasswordFile)
		}
	}
	c.mail.password = &pw
	return pw, nil
}

func (c *config) smtpConfig(password string) (*mail.SMTP, error) {
	cfg := mail.SMTPConfig{URL: c.mail.smtpURL, Password: password, From: c.mailFrom(), StartTLS: c.mail.startTLS, Auth: c.mail.auth}
	if c.mail.smtpCAFile != "" {
		pem, err := os.ReadFile(c.mail.smtpCAFile)
		if err != nil {
			return nil, fmt.Errorf("--smtp-ca-file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--smtp-ca-file %s holds no PEM certificate", c.mail.smtpCAFile)
		}
		cfg.TLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	s, err := mail.NewSMTP(cfg)
	if err != nil {
		return nil, fmt.Errorf("--smtp-url: %w", err)
	}
	return s, nil
}

// mailFrom is --mail-from, or defaultFrom for a config built in code.
func (c *config) mailFrom() string {
	if c.mail.from == "" {
		return defaultFrom
	}
	return c.mail.from
}

// links is the base of links in mail: --public-url, else the HTTP address.
func (c *config) links() (mail.Links, error) {
	base := c.mail.publicURL
	if base == "" {
		host, port, err := net.SplitHostPort(c.httpAddr)
		if err != nil {
			return mail.Links{}, fmt.Errorf("no public URL, and --http-addr %q is not host:port", c.httpAddr)
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		base = "http://" + net.JoinHostPort(host, port)
	}
	return mail.NewLinks(base)
}

// outboxDir is where mail goes when no SMTP server is configured.
func (c *config) outboxDir() string { return filepath.Join(c.dataDir, "outbox") }

// mailSender returns the sender of serve's mail: SMTP when --smtp-url is
// set, else the outbox under the data dir; and a description of it that
// holds no secret.
func (c *config) mailSender() (mail.Sender, string, error) {
	if c.mail.smtpURL == "" {
		o, err := mail.NewOutbox(c.outboxDir(), c.mailFrom())
		if err != nil {
			return nil, "", err
		}
		return o, "outbox " + o.Dir(), nil
	}
	pw, err := c.smtpPassword()
	if err != nil {
		return nil, "", err
	}
	s, err := c.smtpConfig(pw)
	if err != nil {
		return nil, "", err
	}
	return s, s.String(), nil
}

// mailSettings describes how serve sends mail, without the password, for
// the instance's settings.
func (c *config) mailSettings() (mail.Settings, error) {
	links, err := c.links()
	if err != nil {
		return mail.Settings{}, err
	}
	s := mail.Settings{Transport: "outbox", From: c.mailFrom(), PublicURL: links.Base()}
	if c.mail.smtpURL == "" {
		return s, nil
	}
	u, err := url.Parse(c.mail.smtpURL)
	if err != nil {
		return mail.Settings{}, errors.New("--smtp-url does not parse")
	}
	if u.User != nil {
		u.User = url.User(u.User.Username()) // a password here is refused anyway
	}
	s.Transport, s.Server, s.StartTLS = "smtp", u.String(), c.mail.startTLS
	if u.Scheme == "smtps" {
		s.StartTLS = "tls"
	}
	return s, nil
}
