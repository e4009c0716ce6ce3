package effects_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/keyhold/keyhold/effects"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/mail"
)

// TestOperatorResolvesFailedEvents: an event the reaction gave up on is
// performed again when an operator asks for a retry, or recorded as
// handled, unperformed, when the operator dismisses it; either way it no
// longer degrades readiness. Asking about a reaction or an event that has
// nothing to resolve says so.
func TestOperatorResolvesFailedEvents(t *testing.T) {
	t.Parallel()
	refuseFirst := func(_ context.Context, _ events.Envelope, n int) error {
		if n == 1 {
			return fmt.Errorf("550 mailbox unavailable: %w", mail.ErrPermanent)
		}
		return nil
	}
	for _, tt := range []struct {
		name      string
		resolve   func(r *effects.Runner, env events.Envelope) (int64, error)
		wantCalls int
		wantDone  int
	}{
		{"retry all", func(r *effects.Runner, _ events.Envelope) (int64, error) {
			return r.Retry(context.Background(), "flaky", 0)
		}, 2, 1},
		{"dismiss one", func(r *effects.Runner, env events.Envelope) (int64, error) {
			return r.Dismiss(context.Background(), "flaky", env.Sequence)
		}, 1, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			p := &probe{name: "flaky", react: refuseFirst}
			r, _ := f.start(t, []effects.Reaction{p})
			waitLeading(t, r, "flaky")
			env := f.createSA(t)
			eventually(t, "recorded as failed", func() bool { return status(t, r, "flaky").Failed == 1 })

			if _, err := r.Retry(context.Background(), "flaky", env.Sequence+1); !errors.Is(err, effects.ErrNothingToResolve) {
				t.Fatalf("retry of another sequence: %v, want ErrNothingToResolve", err)
			}
			n, err := tt.resolve(r, env)
			testenv.Must(t, err, "resolve")
			if n != 1 {
				t.Fatalf("%d events resolved, want 1", n)
			}
			eventually(t, "resolved", func() bool {
				s := status(t, r, "flaky")
				return s.Failed == 0 && s.Retrying == 0 && s.Done == tt.wantDone && len(p.callsOf(env.ID)) == tt.wantCalls
			})
			msg, err := r.Degraded(context.Background())
			testenv.Must(t, err, "degraded")
			if msg != "" {
				t.Fatalf("still degraded: %q", msg)
			}
			if _, err := tt.resolve(r, env); !errors.Is(err, effects.ErrNothingToResolve) {
				t.Fatalf("resolving again: %v, want ErrNothingToResolve", err)
			}
			if _, err := r.Dismiss(context.Background(), "no-such", 0); !errors.Is(err, effects.ErrNoSuchReaction) {
				t.Fatalf("dismiss of an unknown reaction: %v, want ErrNoSuchReaction", err)
			}
		})
	}
}
