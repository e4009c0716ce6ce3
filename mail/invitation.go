package mail

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	texttemplate "text/template"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/effects"
	"github.com/keyhold/keyhold/events"
)

//go:embed templates/invitation.txt templates/invitation.html
var invitationTemplates embed.FS

var (
	invitationText = texttemplate.Must(texttemplate.ParseFS(invitationTemplates, "templates/invitation.txt"))
	invitationHTML = htmltemplate.Must(htmltemplate.ParseFS(invitationTemplates, "templates/invitation.html"))
)

// InvitationKeys opens an invitation's sealed address and derives its
// registration token; *privacy.Store is one.
type InvitationKeys interface {
	events.PersonalReader
	InvitationToken(tenant, id string) string
}

// Invitation mails the invited address its link when an invitation is
// created. It implements effects.Reaction.
type Invitation struct {
	sender Sender
	keys   InvitationKeys
	links  Links
	now    func() time.Time
}

var _ effects.Reaction = (*Invitation)(nil)

// ErrInvalidInvitation is returned by NewInvitation for a missing
// sender, key store or public URL.
var ErrInvalidInvitation = errors.New("mail: invalid invitation mailer")

// NewInvitation returns the reaction; links is the server's public URL,
// under which the link points (auth.InvitationPath and the token).
func NewInvitation(sender Sender, keys InvitationKeys, links Links) (*Invitation, error) {
	if sender == nil || keys == nil || links.Base() == "" {
		return nil, fmt.Errorf("%w: nil sender or key store, or no public URL", ErrInvalidInvitation)
	}
	return &Invitation{sender: sender, keys: keys, links: links, now: time.Now}, nil
}

// Name implements effects.Reaction.
func (*Invitation) Name() string { return "mail.invitation" }

// Types implements effects.Reaction.
func (*Invitation) Types() []string { return []string{events.InvitationCreated{}.EventType()} }

// React implements effects.Reaction: it sends the invitation's mail,
// unless the invitation ended before (accepted or deleted: its address
// is erased) or expired. A key store that does not answer is retried; an
// address that does not open is a permanent failure. The link is a
// secret: it goes into the message only, never into an error.
func (m *Invitation) React(ctx context.Context, env events.Envelope, ev events.Event) error {
	e, ok := ev.(events.InvitationCreated)
	if !ok {
		return fmt.Errorf("%w: %s is not an invitation", ErrPermanent, env.Type)
	}
	p, err := m.keys.Personal(ctx, env.Subject, e)
	switch {
	case errors.Is(err, events.ErrPersonalData):
		return fmt.Errorf("%w: invitation %s: %v", ErrPermanent, env.Subject, err)
	case err != nil:
		return fmt.Errorf("mail: invitation %s: %w", env.Subject, err)
	case p.Erased || p.Email == "" || !m.now().Before(e.ExpiresAt):
		return nil
	}
	data := struct {
		Tenant, Link, Expires string
	}{env.Tenant, m.links.URL(auth.InvitationPath+m.keys.InvitationToken(env.Tenant, env.Subject), nil), e.ExpiresAt.UTC().Format("2 January 2006 15:04 MST")}
	var text, html bytes.Buffer
	if err := invitationText.Execute(&text, data); err != nil {
		return fmt.Errorf("%w: render: %v", ErrPermanent, err)
	}
	if err := invitationHTML.Execute(&html, data); err != nil {
		return fmt.Errorf("%w: render: %v", ErrPermanent, err)
	}
	return m.sender.Send(ctx, Message{
		To:      []string{p.Email},
		Subject: "You are invited to " + env.Tenant + " on Keyhold",
		Text:    text.String(),
		HTML:    html.String(),
		ID:      env.ID,
	})
}
