package mail

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/privacy"
)

// recorder is a Sender that keeps what it is given.
type recorder struct {
	mu   sync.Mutex
	sent []Message
}

func (r *recorder) Send(_ context.Context, m Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, m)
	return nil
}

func (r *recorder) messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.sent...)
}

// created returns the InvitationCreated of invitation id as the log holds it.
func created(t *testing.T, store *events.Store, tenant, id string) (events.Envelope, events.Event) {
	t.Helper()
	envs, _, err := store.Load(context.Background(), tenant, events.AggregateInvitation, id)
	testenv.Must(t, err, "load invitation")
	for _, env := range envs {
		if env.Type == (events.InvitationCreated{}).EventType() {
			e, err := events.Decode(env)
			testenv.Must(t, err, "decode")
			return env, e
		}
	}
	t.Fatalf("no created event for %s", id)
	return events.Envelope{}, nil
}

func TestInvitationMail(t *testing.T) {
	store, _ := testenv.Store(t)
	personal := privacy.NewMemory()
	cmds, err := commands.New(store, commands.WithPersonalData(personal))
	testenv.Must(t, err, "commands")
	ctx := context.Background()
	meta := commands.Meta{Caller: auth.SystemIn("acme")}
	invite := func(email string) string {
		t.Helper()
		res, err := cmds.CreateInvitation.Handle(ctx, commands.CreateInvitation{Meta: meta, Email: email})
		testenv.Must(t, err, "invite %s", email)
		return res.Invitation.ID()
	}
	rec := &recorder{}
	links, err := NewLinks("https://iam.example.com/keyhold/")
	testenv.Must(t, err, "links")
	m, err := NewInvitation(rec, personal, links)
	testenv.Must(t, err, "reaction")

	t.Run("sends the link to the invited address", func(t *testing.T) {
		id := invite("Ann@Example.com")
		env, e := created(t, store, "acme", id)
		testenv.Must(t, m.React(ctx, env, e), "react")
		sent := rec.messages()
		if len(sent) != 1 {
			t.Fatalf("%d messages, want 1", len(sent))
		}
		msg := sent[0]
		if len(msg.To) != 1 || msg.To[0] != "ann@example.com" || msg.ID != env.ID || !strings.Contains(msg.Subject, "acme") {
			t.Fatalf("message to %v, id %q (event %q), subject %q", msg.To, msg.ID, env.ID, msg.Subject)
		}
		token := personal.InvitationToken("acme", id)
		link := "https://iam.example.com/keyhold" + auth.InvitationPath + token
		if !strings.Contains(msg.Text, link) || !strings.Contains(msg.HTML, `href="`+link+`"`) {
			t.Fatalf("link %s missing from\n%s\n%s", link, msg.Text, msg.HTML)
		}
		if tn, got, ok := personal.VerifyInvitationToken(token); !ok || tn != "acme" || got != id {
			t.Fatalf("token verifies as %q %q %v", tn, got, ok)
		}
		if strings.Contains(string(env.Data), token) || strings.Contains(string(env.Data), "ann@") {
			t.Fatalf("the event holds the token or the address: %s", env.Data)
		}
	})
	t.Run("nothing for an invitation deleted since", func(t *testing.T) {
		before := len(rec.messages())
		id := invite("bob@example.com")
		_, err := cmds.DeleteInvitation.Handle(ctx, commands.DeleteInvitation{Meta: meta, ID: id})
		testenv.Must(t, err, "delete")
		env, e := created(t, store, "acme", id)
		testenv.Must(t, m.React(ctx, env, e), "react")
		if n := len(rec.messages()); n != before {
			t.Fatalf("%d messages after a deleted invitation, want %d", n, before)
		}
	})
	t.Run("nothing once expired", func(t *testing.T) {
		before := len(rec.messages())
		id := invite("cy@example.com")
		env, e := created(t, store, "acme", id)
		late := *m
		late.now = func() time.Time { return time.Now().Add(commands.DefaultInvitationLifetime + time.Minute) }
		testenv.Must(t, late.React(ctx, env, e), "react")
		if n := len(rec.messages()); n != before {
			t.Fatalf("%d messages after expiry, want %d", n, before)
		}
	})
	t.Run("a broken address is permanent", func(t *testing.T) {
		id := invite("dee@example.com")
		env, e := created(t, store, "acme", id)
		x := e.(events.InvitationCreated)
		x.PersonalEnc[len(x.PersonalEnc)-1] ^= 1
		if err := m.React(ctx, env, x); !errors.Is(err, ErrPermanent) {
			t.Fatalf("err %v, want ErrPermanent", err)
		}
	})
}

func TestNewInvitationRefusesBadInput(t *testing.T) {
	links, err := NewLinks("https://a.test")
	testenv.Must(t, err, "links")
	for _, tc := range []struct {
		name  string
		s     Sender
		keys  InvitationKeys
		links Links
	}{
		{"no sender", nil, privacy.NewMemory(), links},
		{"no keys", &recorder{}, nil, links},
		{"no public URL", &recorder{}, privacy.NewMemory(), Links{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewInvitation(tc.s, tc.keys, tc.links); !errors.Is(err, ErrInvalidInvitation) {
				t.Fatalf("err %v, want ErrInvalidInvitation", err)
			}
		})
	}
}
