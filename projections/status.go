package projections

import (
	"context"
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
