package effects

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/leader"
)

var (
	// ErrPermanent marks a failure of React that retrying cannot fix: the
	// runner records the event as failed at once. Senders' own permanent
	// errors (mail.ErrPermanent) wrap it.
	ErrPermanent = errors.New("permanent failure")

	// ErrInvalidOption is returned by NewRunner for a bad reaction or option.
	ErrInvalidOption = errors.New("effects: invalid option")
)

// errAbandoned means the runner stopped while an attempt was under way and
// did not wait for it any longer: its outcome is unknown.
var errAbandoned = errors.New("effects: attempt abandoned at shutdown")

// Runner runs reactions against the log after events are committed.
//
// Positions. Each reaction keeps its own position (the stream sequence it
// has read up to) in effect_positions, apart from the projections'
// checkpoints: rebuilding the read tables never runs a reaction again. A
// reaction new to a log starts at the log's end at its first Prepare, so
// adding one to a running deployment does not act on every old event.
//
// At most once. Before React is called for an event, the runner records
// the attempt in effect_attempts, keyed by reaction and event id, in the
// same transaction that moves the position past the event; an event
// already recorded is never started again. If the process stops before the
// outcome is recorded, the next leader finds the attempt still running and
// marks it unknown: it is reported, never performed again, because the
// effect (a mail) may have happened.
//
// Retries. A retryable failure (any error not wrapping ErrPermanent) is
// retried with exponential back-off, from the minimum (default 1s) doubling
// up to the maximum (default 5m), until the attempts allowed (default 10)
// are spent; then, or at once for a permanent failure, the event is
// recorded as failed with the error's text. Callers must keep secrets out
// of their errors. A failing event does not hold up later ones: the leader
// goes on with the log and retries due events between live ones, so events
// take effect in log order except for retried ones, which take effect
// later. One attempt runs at a time per reaction, each bounded by the
// attempt timeout (default 30s).
//
// Leadership. Each reaction is a consumer of a leader.Group of kind
// "reaction": in each process one goroutine per reaction competes for a
// Postgres advisory lock; the holder runs the reaction, the others stand
// by, so one process runs a reaction at a time. The attempt record is the
// fence: even a leader that lost its lock unnoticed cannot start an event
// another leader recorded.
type Runner struct {
	db             *sqlx.DB
	store          *events.Store
	group          *leader.Group
	reactions      []Reaction
	log            *slog.Logger
	minBackoff     time.Duration
	maxBackoff     time.Duration
	maxAttempts    int
	attemptTimeout time.Duration
	grace          time.Duration
	retryThreshold int
	metrics        *metrics
}

// Option configures NewRunner.
type Option func(*Runner) error

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(r *Runner) error {
		if err := groupOption(r, leader.WithLogger(l)); err != nil {
			return err
		}
		r.log = l
		return nil
	}
}

// WithFollow makes leaders follow the log through l (for example the
// process's fan-out) instead of a consumer of their own.
func WithFollow(l events.Log) Option {
	return func(r *Runner) error { return groupOption(r, leader.WithFollow(l)) }
}

// WithLockRetry sets how often a standby tries to take over a reaction (default 1s).
func WithLockRetry(d time.Duration) Option {
	return func(r *Runner) error { return groupOption(r, leader.WithLockRetry(d)) }
}

// groupOption applies o to the runner's leader group.
func groupOption(r *Runner, o leader.Option) error {
	if err := o(r.group); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOption, err)
	}
	return nil
}

// WithBackoff sets the first retry's delay and the longest one (default 1s and 5m).
func WithBackoff(first, longest time.Duration) Option {
	return func(r *Runner) error {
		if first < time.Millisecond || longest < first || longest > 24*time.Hour {
			return fmt.Errorf("%w: back-off %s..%s", ErrInvalidOption, first, longest)
		}
		r.minBackoff, r.maxBackoff = first, longest
		return nil
	}
}

// WithMaxAttempts sets how many times an event is tried before it is
// recorded as failed (default 10).
func WithMaxAttempts(n int) Option {
	return func(r *Runner) error {
		if n < 1 || n > 1000 {
			return fmt.Errorf("%w: max attempts %d (want 1..1000)", ErrInvalidOption, n)
		}
		r.maxAttempts = n
		return nil
	}
}

// WithAttemptTimeout bounds one call of React (default 30s).
func WithAttemptTimeout(d time.Duration) Option {
	return func(r *Runner) error {
		if d < time.Millisecond || d > 10*time.Minute {
			return fmt.Errorf("%w: attempt timeout %s", ErrInvalidOption, d)
		}
		r.attemptTimeout = d
		return nil
	}
}

// WithShutdownGrace sets how long a stopping runner waits for an attempt
// under way before it leaves it with an unknown outcome (default 10s).
func WithShutdownGrace(d time.Duration) Option {
	return func(r *Runner) error {
		if d < 0 || d > 10*time.Minute {
			return fmt.Errorf("%w: shutdown grace %s", ErrInvalidOption, d)
		}
		r.grace = d
		return nil
	}
}

// WithRetryThreshold sets how many events may wait for a retry before
// Degraded reports the reaction (default 5).
func WithRetryThreshold(n int) Option {
	return func(r *Runner) error {
		if n < 0 {
			return fmt.Errorf("%w: retry threshold %d", ErrInvalidOption, n)
		}
		r.retryThreshold = n
		return nil
	}
}

// WithRegistry registers the runner's metrics in reg: events sent, failed,
// retried and left with an unknown outcome, per reaction.
func WithRegistry(reg prometheus.Registerer) Option {
	return func(r *Runner) error {
		if reg == nil {
			return fmt.Errorf("%w: nil registry", ErrInvalidOption)
		}
		return r.metrics.register(reg)
	}
}

// NewRunner returns a runner of reactions over db and the log in store.
// Each reaction needs a distinct name of 1 to 64 characters of [a-z0-9_.-]
// and at least one event type.
func NewRunner(db *sqlx.DB, store *events.Store, reactions []Reaction, opts ...Option) (*Runner, error) {
	if db == nil || store == nil {
		return nil, fmt.Errorf("%w: nil dependency", ErrInvalidOption)
	}
	g, err := leader.New(db, store, "reaction")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, err)
	}
	r := &Runner{db: db, store: store, group: g, reactions: reactions, log: g.Logger(),
		minBackoff: time.Second, maxBackoff: 5 * time.Minute, maxAttempts: 10,
		attemptTimeout: 30 * time.Second, grace: 10 * time.Second, retryThreshold: 5,
		metrics: newMetrics()}
	seen := map[string]bool{}
	for _, re := range reactions {
		if re == nil || !validName(re.Name()) {
			return nil, fmt.Errorf("%w: reaction name must be 1 to 64 characters of a-z, 0-9, '_', '.', '-'", ErrInvalidOption)
		}
		if seen[re.Name()] {
			return nil, fmt.Errorf("%w: two reactions named %q", ErrInvalidOption, re.Name())
		}
		seen[re.Name()] = true
		if len(re.Types()) == 0 {
			return nil, fmt.Errorf("%w: reaction %q wants no event type", ErrInvalidOption, re.Name())
		}
	}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// Prepare applies the migrations and gives each reaction that has no
// position yet the log's current end as its position: a reaction acts only
// on events committed after its first Prepare. Call it before the server
// accepts writes, so none falls between start and the first position.
func (r *Runner) Prepare(ctx context.Context) error {
	if err := Migrate(ctx, r.db); err != nil {
		return err
	}
	if len(r.reactions) == 0 {
		return nil
	}
	head, err := r.store.LastSequence(ctx)
	if err != nil {
		return err
	}
	for _, re := range r.reactions {
		if _, err := r.db.ExecContext(ctx, "INSERT INTO effect_positions (reaction, seq) VALUES ($1, $2) ON CONFLICT (reaction) DO NOTHING", re.Name(), head); err != nil {
			return fmt.Errorf("position of %s: %w", re.Name(), err)
		}
	}
	return nil
}

// Run runs the reactions (or stands by while another process does) until
// ctx ends. Call Prepare first.
func (r *Runner) Run(ctx context.Context) error {
	consumers := make([]leader.Consumer, len(r.reactions))
	for i, re := range r.reactions {
		consumers[i] = leader.Consumer{Name: re.Name(), Lead: func(ctx context.Context, s *leader.Session) error { return r.lead(ctx, s, re) }}
	}
	r.group.Run(ctx, consumers)
	<-ctx.Done()
	return ctx.Err()
}

// Leading reports whether this process currently runs reaction name.
func (r *Runner) Leading(name string) bool { return r.group.Leading(name) }

// turn is one reaction led on conn, the connection holding its lock.
type turn struct {
	r       *Runner
	conn    *sqlx.Conn
	re      Reaction
	types   map[string]bool
	pos     uint64 // last sequence read
	written uint64 // position last written
	// retryAt is when the next retry is due (zero: none waits); rearm
	// says it changed.
	retryAt time.Time
	rearm   bool
}

// lead follows the log live from the reaction's position on s, the
// session holding its lock, and handles each event and, between them, the
// retries that are due.
func (r *Runner) lead(ctx context.Context, s *leader.Session, re Reaction) error {
	l := &turn{r: r, conn: s.Conn(), re: re, types: map[string]bool{}}
	for _, t := range re.Types() {
		l.types[t] = true
	}
	if err := l.start(ctx); err != nil {
		return err
	}
	feed, err := s.Follow(ctx, l.pos, 1024)
	if err != nil {
		return err
	}
	defer feed.Stop()
	defer l.flush(ctx)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	retry := time.NewTimer(time.Until(l.retryAt))
	defer retry.Stop()
	ticks := 0
	for {
		if err := feed.Err(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := l.flush(ctx); err != nil {
				return err
			}
			if ticks++; ticks%3600 == 1 {
				if err := l.sweep(ctx); err != nil {
					return err
				}
			}
			if ticks%5 == 0 {
				if err := s.Ping(ctx); err != nil {
					return err
				}
			}
			if ticks%int(RearmEvery/time.Second) != 0 {
				continue
			}
			// Retries made due by someone else (Retry, from the CLI).
			if err := l.armRetry(ctx); err != nil {
				return err
			}
		case <-retry.C:
			if err := l.retryDue(ctx); err != nil {
				return err
			}
			if err := l.armRetry(ctx); err != nil {
				return err
			}
		case env := <-feed.Events():
			if err := l.handle(ctx, env); err != nil {
				return err
			}
		}
		if l.rearm && !l.retryAt.IsZero() {
			retry.Reset(max(time.Until(l.retryAt), 0))
		}
		l.rearm = false
	}
}

// start reads the position and marks the attempts a stopped leader left
// running as unknown.
func (l *turn) start(ctx context.Context) error {
	name := l.re.Name()
	if _, err := l.conn.ExecContext(ctx, "INSERT INTO effect_positions (reaction, seq) VALUES ($1, 0) ON CONFLICT (reaction) DO NOTHING", name); err != nil {
		return err
	}
	if err := l.conn.GetContext(ctx, &l.pos, "SELECT seq FROM effect_positions WHERE reaction = $1", name); err != nil {
		return fmt.Errorf("read position of %s: %w", name, err)
	}
	l.written = l.pos
	var lost []struct {
		Seq  uint64 `db:"seq"`
		Type string `db:"event_type"`
	}
	err := l.conn.SelectContext(ctx, &lost, `UPDATE effect_attempts SET state = 'unknown', next_at = NULL, updated_at = now(),
		last_error = 'outcome unknown: the attempt was under way when its process stopped; not performed again'
		WHERE reaction = $1 AND state = 'running' RETURNING seq, event_type`, name)
	if err != nil {
		return err
	}
	for _, a := range lost {
		l.r.metrics.unknown.WithLabelValues(name).Inc()
		l.r.log.Error("reaction attempt has an unknown outcome; not performed again", "reaction", name, "seq", a.Seq, "type", a.Type)
	}
	return l.armRetry(ctx)
}

// flush writes the position if it moved. Events the reaction does not want
// move it only here, once a second, so a busy log costs one write a second.
func (l *turn) flush(ctx context.Context) error {
	if l.pos == l.written {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := l.conn.ExecContext(ctx, "UPDATE effect_positions SET seq = $2, updated_at = now() WHERE reaction = $1 AND seq < $2", l.re.Name(), l.pos); err != nil {
		return err
	}
	l.written = l.pos
	return nil
}

// DoneKept is how long the record of an event performed is kept. Only
// events at or before the position are ever read again, and only by a
// leader that lost its lock moments ago, so old records fence nothing.
const DoneKept = 30 * 24 * time.Hour

// sweep deletes the records of events performed longer than DoneKept
// ago; failed and unknown ones stay for the operator.
func (l *turn) sweep(ctx context.Context) error {
	_, err := l.conn.ExecContext(ctx, `DELETE FROM effect_attempts WHERE reaction = $1 AND state = 'done'
		AND updated_at < now() - $2 * interval '1 second' AND seq < $3`, l.re.Name(), int64(DoneKept/time.Second), l.written)
	return err
}

// handle takes one event of the log.
func (l *turn) handle(ctx context.Context, env events.Envelope) error {
	if env.Sequence <= l.pos {
		return nil
	}
	if !l.types[env.Type] {
		l.pos = env.Sequence
		return nil
	}
	ev, decodeErr := events.Decode(env)
	started, err := l.record(ctx, env)
	if err != nil {
		return err
	}
	if !started {
		return nil // recorded before: by an earlier leader, or a replay
	}
	if decodeErr != nil {
		return l.finish(ctx, env, 1, fmt.Errorf("%w: %w", ErrPermanent, decodeErr))
	}
	return l.attempt(ctx, env, ev, 1)
}

// record writes the first attempt at env and moves the position past it
// in one transaction. started is false when the event was recorded before.
func (l *turn) record(ctx context.Context, env events.Envelope) (started bool, err error) {
	tx, err := l.conn.BeginTxx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO effect_attempts (reaction, event_id, seq, event_type, state, attempts)
		VALUES ($1, $2, $3, $4, 'running', 1) ON CONFLICT (reaction, event_id) DO NOTHING`, l.re.Name(), env.ID, env.Sequence, env.Type)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE effect_positions SET seq = $2, updated_at = now() WHERE reaction = $1 AND seq < $2", l.re.Name(), env.Sequence); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	l.pos, l.written = env.Sequence, env.Sequence
	return n == 1, nil
}

// attempt calls React (its attempt-th try at env, already recorded as
// running) and records the outcome.
func (l *turn) attempt(ctx context.Context, env events.Envelope, ev events.Event, n int) error {
	err := l.call(ctx, env, ev)
	if errors.Is(err, errAbandoned) {
		l.r.log.Warn("reaction attempt abandoned at shutdown; its outcome is unknown", "reaction", l.re.Name(), "seq", env.Sequence, "type", env.Type)
		return nil
	}
	return l.finish(ctx, env, n, err)
}

// call runs React with the attempt timeout. When ctx ends meanwhile it
// waits up to the shutdown grace for React to return, then gives up on it.
func (l *turn) call(ctx context.Context, env events.Envelope, ev events.Event) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.r.attemptTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("reaction panicked: %v", p)
			}
		}()
		done <- l.re.React(rctx, env, ev)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	select {
	case err := <-done:
		return err
	case <-time.After(l.r.grace):
		return errAbandoned
	}
}

// finish records the outcome of the n-th attempt at env: done, a retry
// after back-off, or failed.
func (l *turn) finish(ctx context.Context, env events.Envelope, n int, failure error) error {
	// The outcome is recorded even when the runner is stopping: the effect
	// has happened (or not) already.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	name := l.re.Name()
	var err error
	switch {
	case failure == nil:
		_, err = l.conn.ExecContext(ctx, `UPDATE effect_attempts SET state = 'done', next_at = NULL, updated_at = now()
			WHERE reaction = $1 AND event_id = $2 AND state = 'running' AND attempts = $3`, name, env.ID, n)
		l.r.metrics.sent.WithLabelValues(name).Inc()
	case errors.Is(failure, ErrPermanent) || n >= l.r.maxAttempts:
		msg := failure.Error()
		if !errors.Is(failure, ErrPermanent) {
			msg = fmt.Sprintf("gave up after %d attempts: %s", n, msg)
		}
		_, err = l.conn.ExecContext(ctx, `UPDATE effect_attempts SET state = 'failed', next_at = NULL, last_error = $4, updated_at = now()
			WHERE reaction = $1 AND event_id = $2 AND state = 'running' AND attempts = $3`, name, env.ID, n, msg)
		l.r.metrics.failed.WithLabelValues(name).Inc()
		l.r.log.Error("reaction failed; recorded", "reaction", name, "seq", env.Sequence, "type", env.Type, "attempts", n, "err", msg)
	default:
		delay := l.r.backoff(n)
		if at := time.Now().Add(delay); l.retryAt.IsZero() || at.Before(l.retryAt) {
			l.retryAt, l.rearm = at, true
		}
		_, err = l.conn.ExecContext(ctx, `UPDATE effect_attempts SET state = 'retry', next_at = now() + $4 * interval '1 microsecond',
			last_error = $5, updated_at = now()
			WHERE reaction = $1 AND event_id = $2 AND state = 'running' AND attempts = $3`, name, env.ID, n, delay.Microseconds(), failure.Error())
		l.r.metrics.retried.WithLabelValues(name).Inc()
		l.r.log.Warn("reaction failed; will retry", "reaction", name, "seq", env.Sequence, "type", env.Type, "attempt", n, "retry_in", delay.String(), "err", failure.Error())
	}
	if err != nil {
		// The attempt stays running: the next leader reports it unknown.
		return fmt.Errorf("record outcome of %s at %d: %w", name, env.Sequence, err)
	}
	return nil
}

// backoff is the delay before attempt n+1: the minimum doubled n-1 times,
// at most the maximum, less up to a tenth at random so that retries of
// many events spread out.
func (r *Runner) backoff(n int) time.Duration {
	d := r.minBackoff
	for i := 1; i < n && d < r.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.maxBackoff)
	return d - time.Duration(rand.Int64N(int64(d)/10+1))
}

// armRetry sets retryAt to when the next retry is due (zero: none
// waits). The delay is measured by the database's clock, which decides
// what is due, so clocks that differ cannot make the leader spin.
func (l *turn) armRetry(ctx context.Context) error {
	var ms sql.NullInt64
	if err := l.conn.GetContext(ctx, &ms, `SELECT ceil(EXTRACT(EPOCH FROM (min(next_at) - now())) * 1000)::bigint
		FROM effect_attempts WHERE reaction = $1 AND state = 'retry'`, l.re.Name()); err != nil {
		return err
	}
	l.retryAt, l.rearm = time.Time{}, true
	if ms.Valid {
		l.retryAt = time.Now().Add(max(time.Duration(ms.Int64)*time.Millisecond, 10*time.Millisecond))
	}
	return nil
}

// retryDue tries again the events whose retry is due, a few at a time.
func (l *turn) retryDue(ctx context.Context) error {
	var due []struct {
		EventID  string `db:"event_id"`
		Seq      uint64 `db:"seq"`
		Attempts int    `db:"attempts"`
	}
	if err := l.conn.SelectContext(ctx, &due, `SELECT event_id, seq, attempts FROM effect_attempts
		WHERE reaction = $1 AND state = 'retry' AND next_at <= now() ORDER BY next_at LIMIT 20`, l.re.Name()); err != nil {
		return err
	}
	for _, d := range due {
		if ctx.Err() != nil {
			return nil
		}
		env, err := l.load(ctx, d.Seq, d.EventID)
		if err != nil {
			return err
		}
		n := d.Attempts + 1
		res, err := l.conn.ExecContext(ctx, `UPDATE effect_attempts SET state = 'running', attempts = $3, updated_at = now()
			WHERE reaction = $1 AND event_id = $2 AND state = 'retry' AND attempts = $4`, l.re.Name(), d.EventID, n, d.Attempts)
		if err != nil {
			return err
		}
		if k, err := res.RowsAffected(); err != nil || k != 1 {
			continue // taken by another leader meanwhile
		}
		if env == nil {
			if err := l.finish(ctx, events.Envelope{ID: d.EventID, Sequence: d.Seq}, n, fmt.Errorf("%w: event %d is no longer in the log", ErrPermanent, d.Seq)); err != nil {
				return err
			}
			continue
		}
		ev, err := events.Decode(*env)
		if err != nil {
			if err := l.finish(ctx, *env, n, fmt.Errorf("%w: %w", ErrPermanent, err)); err != nil {
				return err
			}
			continue
		}
		if err := l.attempt(ctx, *env, ev, n); err != nil {
			return err
		}
	}
	return nil
}

// load reads the event stored at seq, or nil when the log no longer holds it.
func (l *turn) load(ctx context.Context, seq uint64, id string) (*events.Envelope, error) {
	var found *events.Envelope
	err := l.r.store.Scan(ctx, events.Filter{StartSeq: seq}, func(env events.Envelope) error {
		if env.Sequence == seq && env.ID == id {
			found = &env
		}
		return events.ErrStop
	})
	return found, err
}
