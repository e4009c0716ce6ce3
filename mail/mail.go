// Package mail sends Keyhold's mail: through SMTP when it is configured,
// otherwise into a development outbox of .eml files under the data dir.
// Mail is only ever sent by a reaction of the effects runner, after the
// event that asks for it is committed; commands never send mail.
package mail

import "context"

// Message is one mail to send. Text is required; HTML is optional and
// sent as an alternative part when set.
type Message struct {
	To      []string
	Subject string
	Text    string
	HTML    string
	// ID identifies the message for deduplication and for the outbox file
	// name: the id of the event the message answers, plus the reaction's
	// name when one event causes several messages.
	ID string
}

// Sender delivers messages. Implementations are safe for concurrent use.
// Send returns an error wrapping ErrPermanent when retrying cannot help
// (a refused recipient, a message too large); any other error is retried.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Settings is what an operator may see of how mail is sent: never a
// password.
type Settings struct {
	// Transport is "smtp" or "outbox".
	Transport string
	// Server is the SMTP server as smtp[s]://[user@]host:port; "" for the
	// outbox.
	Server string
	// StartTLS is the STARTTLS policy of an smtp:// server (StartTLSMandatory,
	// ...), "tls" for smtps://, "" for the outbox.
	StartTLS string
	// From is the sender address; PublicURL the base of links in mail.
	From      string
	PublicURL string
}
