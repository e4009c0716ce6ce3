// Package smtptest runs an SMTP receiver in the test's process, on a
// random loopback port, with a self-signed certificate for STARTTLS or
// implicit TLS and PLAIN, LOGIN and CRAM-MD5 authentication, and keeps
// what it receives for the test to look at.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TLS modes of Options.
const (
	// Plain offers no TLS at all.
	Plain = iota
	// StartTLS offers STARTTLS on a plain connection.
	StartTLS
	// Implicit speaks TLS from the first byte (smtps).
	Implicit
)

// Options configure Start.
type Options struct {
	// TLS is Plain, StartTLS or Implicit.
	TLS int
	// User and Password, when User is set, are the only credentials
	// accepted; AUTH is then required before MAIL.
	User, Password string
	// Mechanisms offered (default PLAIN, LOGIN, CRAM-MD5).
	Mechanisms []string
	// Reject, when set, refuses recipients it returns an error for (as
	// an *smtp.SMTPError, to choose the code).
	Reject func(rcpt string) error
}

// Received is one message the server accepted.
type Received struct {
	From     string
	To       []string
	Data     []byte
	AuthUser string
	AuthMech string
	TLS      bool
}

// Server is a running receiver.
type Server struct {
	// Addr is host:port; Host and Port its parts.
	Addr string
	Host string
	Port int
	// Roots trusts the server's certificate; CertPEM is that certificate.
	Roots   *x509.CertPool
	CertPEM []byte

	opts Options
	mu   sync.Mutex
	got  []Received
	// Transcript is everything said on every connection, both ways.
	transcript bytes.Buffer
}

// Start runs a server until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Mechanisms == nil {
		opts.Mechanisms = []string{sasl.Plain, sasl.Login, "CRAM-MD5"}
	}
	cert, roots := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	s := &Server{Addr: ln.Addr().String(), Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Roots: roots, opts: opts,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{s: s, conn: c}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.Debug = &syncWriter{s: s}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	switch opts.TLS {
	case StartTLS:
		srv.TLSConfig = tlsConf
	case Implicit:
		ln = tls.NewListener(ln, tlsConf)
	default:
		srv.AllowInsecureAuth = true
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// Messages returns what the server accepted so far.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.got...)
}

// Transcript returns every line exchanged so far.
func (s *Server) Transcript() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transcript.String()
}

type syncWriter struct{ s *Server }

func (w *syncWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.transcript.Write(p)
}

type session struct {
	s        *Server
	conn     *smtp.Conn
	user     string
	mech     string
	from     string
	to       []string
	authDone bool
}

func (ss *session) AuthMechanisms() []string { return ss.s.opts.Mechanisms }

func (ss *session) check(mech, user, password string) error {
	if user != ss.s.opts.User || password != ss.s.opts.Password || ss.s.opts.User == "" {
		return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication failed"}
	}
	ss.user, ss.mech, ss.authDone = user, mech, true
	return nil
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, password string) error { return ss.check(mech, user, password) }), nil
	case sasl.Login:
		return &loginServer{check: func(u, p string) error { return ss.check(mech, u, p) }}, nil
	case "CRAM-MD5":
		return &cramServer{s: ss}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.User != "" && !ss.authDone {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.opts.Reject != nil {
		if err := ss.s.opts.Reject(to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := ss.conn.TLSConnectionState()
	ss.s.mu.Lock()
	ss.s.got = append(ss.s.got, Received{From: ss.from, To: ss.to, Data: b, AuthUser: ss.user, AuthMech: ss.mech, TLS: isTLS})
	ss.s.mu.Unlock()
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// loginServer is the LOGIN mechanism: username and password asked for in turn.
type loginServer struct {
	check func(user, password string) error
	user  *string
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch {
	case l.user == nil && response == nil:
		return []byte("Username:"), false, nil
	case l.user == nil:
		u := string(response)
		l.user = &u
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(*l.user, string(response))
	}
}

// cramServer is CRAM-MD5 (RFC 2195): the client answers a challenge with
// its user and the challenge's HMAC-MD5 under the password.
type cramServer struct {
	s         *session
	challenge string
}

func (c *cramServer) Next(response []byte) ([]byte, bool, error) {
	if c.challenge == "" {
		n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
		c.challenge = fmt.Sprintf("<%d.%d@localhost>", n, time.Now().UnixNano())
		return []byte(c.challenge), false, nil
	}
	user, digest, ok := strings.Cut(string(response), " ")
	if !ok {
		return nil, true, errors.New("malformed CRAM-MD5 response")
	}
	mac := hmac.New(md5.New, []byte(c.s.s.opts.Password))
	mac.Write([]byte(c.challenge))
	if !hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(digest)) {
		return nil, true, c.s.check("CRAM-MD5", user, "\x00wrong")
	}
	return nil, true, c.s.check("CRAM-MD5", user, c.s.s.opts.Password)
}

// selfSigned makes a certificate for 127.0.0.1 and localhost and a pool
// that trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtptest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
