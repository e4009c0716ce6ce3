package effects

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RearmEvery is how often a leader looks for retries that were made due
// by someone else (Retry, from another process): one small query.
const RearmEvery = 2 * time.Second

// ErrNoSuchReaction means no reaction of that name has run against this
// log (it has no position).
var ErrNoSuchReaction = errors.New("no such reaction")

// ErrNothingToResolve means the reaction has no failed or unknown-outcome
// event (at that sequence, when one was given).
var ErrNothingToResolve = errors.New("no failed or unknown-outcome event")

// Retry gives the failed and unknown-outcome events of reaction (only the
// one at seq when seq > 0) a fresh set of attempts, due at once: the
// process leading the reaction takes them up within RearmEvery. An
// unknown outcome may already have been performed (a mail may have gone
// out), so retrying it may perform it twice; that is why the runner never
// does so by itself and only an operator can ask. It returns how many
// events were put back; none is ErrNothingToResolve.
func (r *Runner) Retry(ctx context.Context, reaction string, seq uint64) (int64, error) {
	return r.resolve(ctx, reaction, seq, `state = 'retry', attempts = 0, next_at = now(),
		last_error = 'retry asked by an operator after: ' || COALESCE(last_error, '')`)
}

// Dismiss records the failed and unknown-outcome events of reaction (only
// the one at seq when seq > 0) as handled without performing them: the
// operator took care of them (sent the mail by hand, or decided it is not
// needed). They no longer count as failed, nor degrade readiness; their
// records go after DoneKept like those of events performed.
func (r *Runner) Dismiss(ctx context.Context, reaction string, seq uint64) (int64, error) {
	return r.resolve(ctx, reaction, seq, `state = 'done', next_at = NULL,
		last_error = 'dismissed by an operator after: ' || COALESCE(last_error, '')`)
}

func (r *Runner) resolve(ctx context.Context, reaction string, seq uint64, set string) (int64, error) {
	var known bool
	if err := r.db.GetContext(ctx, &known, `SELECT EXISTS (SELECT 1 FROM effect_positions WHERE reaction = $1)`, reaction); err != nil {
		return 0, err
	}
	if !known {
		return 0, fmt.Errorf("%w %q: `keyhold effects status` lists those that ran", ErrNoSuchReaction, reaction)
	}
	res, err := r.db.ExecContext(ctx, `UPDATE effect_attempts SET `+set+`, updated_at = now()
		WHERE reaction = $1 AND state IN ('failed', 'unknown') AND ($2 = 0 OR seq = $2)`, reaction, int64(seq))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	if n == 0 {
		if seq > 0 {
			return 0, fmt.Errorf("%w of %s at sequence %d", ErrNothingToResolve, reaction, seq)
		}
		return 0, fmt.Errorf("%w of %s", ErrNothingToResolve, reaction)
	}
	return n, nil
}
