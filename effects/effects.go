// Package effects runs side effects (mail, later webhooks) of committed
// events: each reaction sees every event of the types it names once, in
// log order, after the event is committed and never during a rebuild of
// the read tables.
package effects

import (
	"context"

	"github.com/keyhold/keyhold/events"
)

// Reaction is one side effect. The runner calls React at most once per
// event it succeeds for, retries it with back-off when it fails with a
// retryable error, and records what it gave up on.
type Reaction interface {
	// Name is stable: the runner keeps each reaction's position under it.
	Name() string
	// Types are the event types the reaction wants.
	Types() []string
	// React performs the effect of one event. ev is env decoded (and
	// upcast). It must not append events.
	React(ctx context.Context, env events.Envelope, ev events.Event) error
}
