package mail

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// StartTLS policies of SMTPConfig.StartTLS, for smtp:// URLs.
const (
	// StartTLSMandatory refuses to send unless the server offers STARTTLS.
	StartTLSMandatory = "mandatory"
	// StartTLSOpportunistic upgrades when the server offers STARTTLS and
	// sends in the clear otherwise.
	StartTLSOpportunistic = "opportunistic"
	// StartTLSNone never upgrades: for a relay on the same host only.
	StartTLSNone = "none"
)

// Authentication mechanisms of SMTPConfig.Auth.
const (
	// AuthAuto picks the strongest mechanism the server offers.
	AuthAuto    = "auto"
	AuthPlain   = "plain"
	AuthLogin   = "login"
	AuthCRAMMD5 = "cram-md5"
)

// SMTPConfig are the settings of an SMTP sender.
type SMTPConfig struct {
	// URL is smtp://[user@]host[:port] (port 587 unless given; STARTTLS as
	// StartTLS says) or smtps://[user@]host[:port] (TLS from the first
	// byte, port 465 unless given). A password in the URL is refused: it
	// would show in process listings and logs.
	URL string
	// Password authenticates the URL's user; it is never logged nor shown
	// in errors.
	Password string
	// From is the sender address.
	From string
	// StartTLS is StartTLSMandatory (default), StartTLSOpportunistic or
	// StartTLSNone; smtps:// URLs ignore it.
	StartTLS string
	// Auth is AuthAuto (default), AuthPlain, AuthLogin or AuthCRAMMD5; used
	// only when the URL names a user. PLAIN and LOGIN are refused on a
	// connection that is not encrypted (except to a loopback address), and
	// a user with StartTLSNone is refused.
	Auth string
	// TLS, when set, is the TLS configuration (for example a private CA);
	// its ServerName defaults to the URL's host.
	TLS *tls.Config
	// Timeout bounds connecting and each SMTP command (default 30s).
	Timeout time.Duration
}

// SMTP sends messages through an SMTP server, one connection per message.
type SMTP struct {
	host     string
	port     int
	implicit bool
	user     string
	password string
	from     string
	policy   gomail.TLSPolicy
	auth     gomail.SMTPAuthType
	tls      *tls.Config
	timeout  time.Duration
}

// NewSMTP checks cfg and returns a sender; it does not connect.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Parse quotes the whole URL, which may hold a password.
		return nil, fmt.Errorf("%w: SMTP URL does not parse; want smtp[s]://user@host:port", ErrInvalidConfig)
	}
	s := &SMTP{timeout: cfg.Timeout, password: cfg.Password}
	switch u.Scheme {
	case "smtp":
		s.port = 587
	case "smtps":
		s.port, s.implicit = 465, true
	default:
		return nil, fmt.Errorf("%w: SMTP URL scheme %q: want smtp or smtps", ErrInvalidConfig, u.Scheme)
	}
	if _, has := u.User.Password(); has {
		return nil, fmt.Errorf("%w: the SMTP URL holds a password: give it in a file or the environment instead", ErrInvalidConfig)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: SMTP URL: want only smtp[s]://user@host:port", ErrInvalidConfig)
	}
	s.host = u.Hostname()
	if s.host == "" {
		return nil, fmt.Errorf("%w: SMTP URL has no host", ErrInvalidConfig)
	}
	if p := u.Port(); p != "" {
		if s.port, err = strconv.Atoi(p); err != nil || s.port < 1 || s.port > 65535 {
			return nil, fmt.Errorf("%w: SMTP port %q", ErrInvalidConfig, p)
		}
	}
	s.user = u.User.Username()
	if s.user != "" && cfg.Password == "" {
		return nil, fmt.Errorf("%w: the SMTP URL names user %q but no password is given", ErrInvalidConfig, s.user)
	}
	if s.user == "" && cfg.Password != "" {
		return nil, fmt.Errorf("%w: an SMTP password is given but the URL names no user (smtp://user@host)", ErrInvalidConfig)
	}
	switch cfg.StartTLS {
	case "", StartTLSMandatory:
		s.policy = gomail.TLSMandatory
	case StartTLSOpportunistic:
		s.policy = gomail.TLSOpportunistic
	case StartTLSNone:
		s.policy = gomail.NoTLS
	default:
		return nil, fmt.Errorf("%w: STARTTLS policy %q: want %s, %s or %s", ErrInvalidConfig, cfg.StartTLS, StartTLSMandatory, StartTLSOpportunistic, StartTLSNone)
	}
	if s.user != "" && s.policy == gomail.NoTLS && !s.implicit {
		return nil, fmt.Errorf("%w: STARTTLS %s with a user would send the password in the clear; use %s or %s, or smtps://", ErrInvalidConfig, StartTLSNone, StartTLSMandatory, StartTLSOpportunistic)
	}
	switch cfg.Auth {
	case "", AuthAuto:
		s.auth = gomail.SMTPAuthAutoDiscover
	case AuthPlain:
		s.auth = gomail.SMTPAuthPlain
	case AuthLogin:
		s.auth = gomail.SMTPAuthLogin
	case AuthCRAMMD5:
		s.auth = gomail.SMTPAuthCramMD5
	default:
		return nil, fmt.Errorf("%w: SMTP auth %q: want %s, %s, %s or %s", ErrInvalidConfig, cfg.Auth, AuthAuto, AuthPlain, AuthLogin, AuthCRAMMD5)
	}
	if s.from, err = ParseFrom(cfg.From); err != nil {
		return nil, err
	}
	if cfg.TLS != nil {
		s.tls = cfg.TLS.Clone()
	} else {
		s.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if s.tls.ServerName == "" {
		s.tls.ServerName = s.host
	}
	if s.timeout <= 0 {
		s.timeout = 30 * time.Second
	}
	return s, nil
}

// String describes the sender without its password.
func (s *SMTP) String() string {
	scheme := "smtp"
	if s.implicit {
		scheme = "smtps"
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(s.host, strconv.Itoa(s.port))}
	if s.user != "" {
		u.User = url.User(s.user)
	}
	return u.String()
}

// Send implements Sender. A 5xx answer to the envelope or the data, or a
// message that cannot be composed, wraps ErrPermanent; connection and
// authentication failures and 4xx answers do not (the server or its
// settings may be fixed meanwhile). Errors never hold the password.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg, err := compose(m, s.from)
	if err != nil {
		return err
	}
	opts := []gomail.Option{gomail.WithPort(s.port), gomail.WithTimeout(s.timeout), gomail.WithTLSConfig(s.tls)}
	if s.implicit {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(s.policy))
	}
	if s.user != "" {
		opts = append(opts, gomail.WithSMTPAuth(s.auth), gomail.WithUsername(s.user), gomail.WithPassword(s.password))
	}
	c, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return s.clean(err, false, m.To)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return s.clean(err, permanent(err), m.To)
	}
	return nil
}

// replaceFold replaces every occurrence of old in s, ignoring ASCII case
// (servers may echo an address in another case), with repl.
func replaceFold(s, old, repl string) string {
	if old == "" {
		return s
	}
	var b strings.Builder
	lower, lowerOld := strings.ToLower(s), strings.ToLower(old)
	for {
		i := strings.Index(lower, lowerOld)
		if i < 0 || len(lower) != len(s) {
			break
		}
		b.WriteString(s[:i])
		b.WriteString(repl)
		s, lower = s[i+len(old):], lower[i+len(old):]
	}
	b.WriteString(s)
	return b.String()
}

// permanent reports a definite refusal: a 5xx reply to MAIL, RCPT or DATA.
func permanent(err error) bool {
	var se *gomail.SendError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Reason {
	case gomail.ErrSMTPMailFrom, gomail.ErrSMTPRcptTo, gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
		return se.ErrorCode() >= 500 && se.ErrorCode() < 600
	}
	return false
}

// clean returns err's text as a new error, without the password in any
// form a server or the library might echo, and without the recipients'
// addresses, which are personal data: the error is logged and recorded
// where erasing a user cannot reach. The original is not wrapped, so no
// caller can reach text that holds them.
func (s *SMTP) clean(err error, perm bool, to []string) error {
	msg := err.Error()
	for _, rcpt := range to {
		if a, perr := netmail.ParseAddress(rcpt); perr == nil {
			msg = replaceFold(msg, a.Address, "[recipient]")
		}
		msg = replaceFold(msg, rcpt, "[recipient]")
	}
	if s.password != "" {
		for _, secret := range []string{s.password, base64.StdEncoding.EncodeToString([]byte(s.password)),
			base64.StdEncoding.EncodeToString([]byte("\x00" + s.user + "\x00" + s.password))} {
			msg = strings.ReplaceAll(msg, secret, "xxxxx")
		}
	}
	msg = "smtp " + s.String() + ": " + msg
	if perm {
		return fmt.Errorf("%s: %w", msg, ErrPermanent)
	}
	return errors.New(msg)
}
