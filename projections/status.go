package projections

import (
	"context"
	"fmt"
	"time"
)

// Status is one projector's state as the database records it.
type Status struct {
	Name       string    `json:"name" db:"name"`
	Generation int       `json:"generation" db:"generation"`
	Version    int       `json:"version" db:"version"`
	Checkpoint uint64    `json:"checkpoint" db:"seq"`
	UpdatedAt  time.Time `json:"updated_at" db:"updated_at"`
	// Head is the log's last sequence; Lag how far the checkpoint is behind it.
	Head uint64 `json:"head" db:"-"`
	Lag  uint64 `json:"lag" db:"-"`
	// Failures counts events recorded as not applicable; LastFailure describes the newest.
	Failures    int     `json:"failures" db:"failures"`
	LastFailure *string `json:"last_failure,omitempty" db:"last_failure"`
}

// Status reports every projector's checkpoint, lag and recorded failures.
func (r *Runner) Status(ctx context.Context) ([]Status, error) {
	head, err := r.store.LastSequence(ctx)
	if err != nil {
		return nil, err
	}
	var out []Status
	err = r.db.SelectContext(ctx, &out, `
		SELECT c.name, c.generation, c.version, c.seq, c.updated_at,
		       (SELECT count(*) FROM projection_failures f WHERE f.projector = c.name) AS failures,
		       (SELECT 'seq ' || f.seq || ' (' || f.event_type || '): ' || f.error FROM projection_failures f
		         WHERE f.projector = c.name ORDER BY f.seq DESC LIMIT 1) AS last_failure
		FROM projection_checkpoints c ORDER BY c.name`)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Head = head
		if head > out[i].Checkpoint {
			out[i].Lag = head - out[i].Checkpoint
		}
	}
	return out, nil
}

// Readiness is the projections' part of a server's readiness: an error
// while a projector has not applied the log up to head (its end when the
// server started), else a reason to report the server degraded (events a
// projector could not apply: one bad event must not take every replica
// out of service), else "".
func (r *Runner) Readiness(ctx context.Context, progress *Progress, head uint64) (degraded string, err error) {
	for _, n := range r.Names() {
		if pos := progress.Position(n); pos < head {
			return "", fmt.Errorf("%s catching up: at %d of %d", n, pos, head)
		}
	}
	st, err := r.Status(ctx)
	if err != nil {
		return "", err
	}
	for _, p := range st {
		if p.Failures > 0 {
			return fmt.Sprintf("%s: %d event(s) could not be applied; see keyhold projections status", p.Name, p.Failures), nil
		}
	}
	return "", nil
}
