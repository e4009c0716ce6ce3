package mail

import (
	"errors"
	"fmt"
	"io"
	netmail "net/mail"
	"strings"

	gomail "github.com/wneessen/go-mail"
)

// ErrInvalidMessage is returned for a message that cannot be sent as
// given (no recipient, a malformed address, no text, no ID). It wraps
// ErrPermanent: sending it again cannot help.
var ErrInvalidMessage = fmt.Errorf("invalid message: %w", ErrPermanent)

// ErrInvalidConfig is returned for mail settings that cannot work.
var ErrInvalidConfig = errors.New("mail: invalid settings")

// ParseFrom checks a sender address ("Keyhold <iam@example.com>" or a
// bare address) and returns it normalised.
func ParseFrom(from string) (string, error) {
	a, err := netmail.ParseAddress(from)
	if err != nil {
		return "", fmt.Errorf("%w: from address %q: %v", ErrInvalidConfig, from, err)
	}
	return a.String(), nil
}

// validID reports whether id may name an outbox file and sit in a
// Message-ID header as it is.
func validID(id string) bool {
	if id == "" || len(id) > 200 || id[0] == '.' || id[0] == '-' {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// compose builds m as an RFC 5322 message from from: a text part, and
// multipart/alternative with an HTML part when m.HTML is set. The
// Message-ID is m.ID at the sender's domain, so the same message composed
// twice (a retry) carries the same id.
func compose(m Message, from string) (*gomail.Msg, error) {
	if len(m.To) == 0 {
		return nil, fmt.Errorf("%w: no recipient", ErrInvalidMessage)
	}
	if m.Text == "" {
		return nil, fmt.Errorf("%w: no text", ErrInvalidMessage)
	}
	if !validID(m.ID) {
		return nil, fmt.Errorf("%w: id %q: want 1 to 200 of a-z, A-Z, 0-9, '.', '_', '-', not starting with '.' or '-'", ErrInvalidMessage, m.ID)
	}
	for _, to := range m.To {
		if _, err := netmail.ParseAddress(to); err != nil {
			return nil, fmt.Errorf("%w: recipient %q: %v", ErrInvalidMessage, to, err)
		}
	}
	msg := gomail.NewMsg()
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("%w: from %q: %v", ErrInvalidConfig, from, err)
	}
	if err := msg.To(m.To...); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	msg.Subject(m.Subject)
	domain := "keyhold.invalid"
	if a, err := netmail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok && d != "" {
			domain = d
		}
	}
	msg.SetMessageIDWithValue(m.ID + "@" + domain)
	msg.SetDate()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// write writes m, composed from from, to w.
func write(w io.Writer, m Message, from string) error {
	msg, err := compose(m, from)
	if err != nil {
		return err
	}
	_, err = msg.WriteTo(w)
	return err
}
