package effects

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Status is one reaction's state as the database records it.
type Status struct {
	Name string `json:"name" db:"reaction"`
	// Position is the last sequence the reaction has read; Head the log's
	// last sequence; Lag how far the position is behind it.
	Position  uint64    `json:"position" db:"seq"`
	Head      uint64    `json:"head" db:"-"`
	Lag       uint64    `json:"lag" db:"-"`
	UpdatedAt time.Time `json:"updated_at" db:"updated_at"`
	// Done counts events performed (in the last DoneKept); Retrying those waiting for a retry;
	// Failed those given up on; Unknown attempts whose outcome was never
	// recorded (the process stopped during them), never performed again.
	Done     int `json:"done" db:"done"`
	Retrying int `json:"retrying" db:"retrying"`
	Failed   int `json:"failed" db:"failed"`
	Unknown  int `json:"unknown" db:"unknown"`
	// LastError describes the newest event that failed, waits for a retry
	// or has an unknown outcome.
	LastError *string `json:"last_error,omitempty" db:"last_error"`
}

// Status reports every reaction that has a position, whether or not this
// runner runs it: its position, lag, and events done, retrying, failed
// and of unknown outcome.
func (r *Runner) Status(ctx context.Context) ([]Status, error) {
	head, err := r.store.LastSequence(ctx)
	if err != nil {
		return nil, err
	}
	var out []Status
	err = r.db.SelectContext(ctx, &out, `
		SELECT p.reaction, p.seq, p.updated_at,
		       count(*) FILTER (WHERE a.state = 'done') AS done,
		       count(*) FILTER (WHERE a.state = 'retry') AS retrying,
		       count(*) FILTER (WHERE a.state = 'failed') AS failed,
		       count(*) FILTER (WHERE a.state = 'unknown') AS unknown,
		       (SELECT 'seq ' || l.seq || ' (' || l.event_type || ', ' || l.state || ' after ' || l.attempts || ' attempt(s)): ' || l.last_error
		          FROM effect_attempts l WHERE l.reaction = p.reaction AND l.state IN ('retry', 'failed', 'unknown')
		          ORDER BY l.updated_at DESC, l.seq DESC LIMIT 1) AS last_error
		FROM effect_positions p LEFT JOIN effect_attempts a ON a.reaction = p.reaction
		GROUP BY p.reaction, p.seq, p.updated_at ORDER BY p.reaction`)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Head = head
		if head > out[i].Position {
			out[i].Lag = head - out[i].Position
		}
	}
	return out, nil
}

// Degraded describes the reactions that need an operator's eye: events
// failed or of unknown outcome, or more waiting for a retry than the
// threshold (WithRetryThreshold). It returns "" when there are none.
func (r *Runner) Degraded(ctx context.Context) (string, error) {
	// Only open attempts are counted (the partial index): done ones pile
	// up, and readiness is asked often.
	var st []Status
	if err := r.db.SelectContext(ctx, &st, `
		SELECT reaction,
		       count(*) FILTER (WHERE state = 'retry') AS retrying,
		       count(*) FILTER (WHERE state = 'failed') AS failed,
		       count(*) FILTER (WHERE state = 'unknown') AS unknown
		FROM effect_attempts WHERE state <> 'done' GROUP BY reaction ORDER BY reaction`); err != nil {
		return "", err
	}
	var bad []string
	for _, s := range st {
		var what []string
		if s.Failed > 0 {
			what = append(what, fmt.Sprintf("%d event(s) failed", s.Failed))
		}
		if s.Unknown > 0 {
			what = append(what, fmt.Sprintf("%d of unknown outcome", s.Unknown))
		}
		if s.Retrying > r.retryThreshold {
			what = append(what, fmt.Sprintf("%d waiting for a retry", s.Retrying))
		}
		if len(what) > 0 {
			bad = append(bad, s.Name+": "+strings.Join(what, ", "))
		}
	}
	if len(bad) == 0 {
		return "", nil
	}
	return strings.Join(bad, "; ") + "; see keyhold effects status", nil
}
