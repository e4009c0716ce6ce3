package mail

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/keyhold/keyhold/internal/atomicfile"
)

// ErrNotFound is returned by Outbox.Read for an id the outbox does not hold.
var ErrNotFound = errors.New("mail: no such message in the outbox")

// Outbox is the development stand-in for SMTP: each message is written to
// <dir>/<id>.eml, whole or not at all (a temporary file renamed into
// place), so a retry of the same message overwrites it instead of adding a
// second. The directory is private to its owner: the messages may hold
// links with single-use tokens.
type Outbox struct {
	dir  string
	from string
}

// NewOutbox returns an outbox in dir (created when missing) whose messages
// come from from.
func NewOutbox(dir, from string) (*Outbox, error) {
	f, err := ParseFrom(from)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mail outbox: %w", err)
	}
	return &Outbox{dir: dir, from: f}, nil
}

// Dir is the directory the outbox writes to.
func (o *Outbox) Dir() string { return o.dir }

// Send implements Sender.
func (o *Outbox) Send(ctx context.Context, m Message) error {
	var buf bytes.Buffer
	if err := write(&buf, m, o.from); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(o.dir, m.ID+".eml"), func(w io.Writer) error {
		_, err := w.Write(buf.Bytes())
		return err
	}); err != nil {
		return fmt.Errorf("mail outbox: %w", err)
	}
	return nil
}

// Entry describes one message of the outbox.
type Entry struct {
	ID      string    `json:"id"`
	Date    time.Time `json:"date"`
	From    string    `json:"from"`
	To      []string  `json:"to"`
	Subject string    `json:"subject"`
	HTML    bool      `json:"html"`
	Size    int64     `json:"size"`
}

// List returns the outbox's messages, newest first. A missing outbox
// holds none.
func (o *Outbox) List() ([]Entry, error) {
	files, err := os.ReadDir(o.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mail outbox: %w", err)
	}
	var out []Entry
	for _, f := range files {
		id, ok := strings.CutSuffix(f.Name(), ".eml")
		if !ok || f.IsDir() || !validID(id) {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(o.dir, f.Name()))
		if err != nil {
			return nil, fmt.Errorf("mail outbox: %w", err)
		}
		e, err := entry(id, raw)
		if err != nil {
			return nil, fmt.Errorf("mail outbox: %s: %w", f.Name(), err)
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := b.Date.Compare(a.Date); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out, nil
}

func entry(id string, raw []byte) (Entry, error) {
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Entry{}, err
	}
	dec := new(mime.WordDecoder)
	e := Entry{ID: id, Size: int64(len(raw)), From: msg.Header.Get("From")}
	if e.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		e.Subject = msg.Header.Get("Subject")
	}
	if d, err := msg.Header.Date(); err == nil {
		e.Date = d
	}
	if to, err := msg.Header.AddressList("To"); err == nil {
		for _, a := range to {
			e.To = append(e.To, a.Address)
		}
	}
	mt, _, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	e.HTML = mt == "multipart/alternative"
	return e, nil
}

// Read returns the message id as stored (RFC 5322).
func (o *Outbox) Read(id string) ([]byte, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	raw, err := os.ReadFile(filepath.Join(o.dir, id+".eml"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return raw, err
}

// TextPart returns the decoded text/plain part of a stored message, with
// its lines ended by "\n".
func TextPart(raw []byte) (string, error) {
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return "", err
	}
	return textOf(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
}

func textOf(ctype, encoding string, body io.Reader) (string, error) {
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return "", fmt.Errorf("content type %q: %w", ctype, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return "", errors.New("no text/plain part")
			}
			if err != nil {
				return "", err
			}
			if t, err := textOf(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err == nil {
				return t, nil
			}
		}
	}
	if mt != "text/plain" {
		return "", fmt.Errorf("not text/plain but %s", mt)
	}
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	return strings.ReplaceAll(string(b), "\r\n", "\n"), err
}

// OpenOutbox returns the outbox in dir for reading (List, Read); it
// creates nothing, and a missing directory lists no message.
func OpenOutbox(dir string) *Outbox { return &Outbox{dir: dir} }
