package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/leader"
)

// Projector folds events into tables it owns.
type Projector interface {
	// Name is a stable identifier of lowercase letters and underscores; it
	// names the checkpoint and the generation schemas.
	Name() string
	// Version is the version of the tables' shape and of Apply's logic. When
	// the active generation was built by another version, Prepare rebuilds.
	Version() int
	// Schema returns DDL that creates the tables in the current search_path.
	Schema() string
	// Tables lists the tables exposed as views in the public schema.
	Tables() []string
	// Apply applies events in stream order inside the transaction open on
	// tx, whose search_path starts with the projector's generation schema.
	// It must not commit; an error rolls back the whole batch. Events it
	// does not know are ignored.
	Apply(ctx context.Context, tx Tx, batch []events.Envelope) error
}

// Tx runs statements inside the open transaction a projector applies a
// batch in: a connection with a transaction begun on it by plain
// statements, so Raw reaches the driver (COPY without converting each
// row's arguments).
type Tx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	Raw(f func(driverConn any) error) error
}

// execer runs statements; *sqlx.Tx and *sqlx.Conn both are.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// inTx runs fn in a transaction begun on conn with plain statements.
func inTx(ctx context.Context, conn *sqlx.Conn, fn func() error) error {
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return err
	}
	err := fn()
	if err == nil {
		// COMMIT of a transaction a statement failed in rolls back without
		// an error; SELECT 1 fails there instead, and the COMMIT after it
		// then does not run.
		_, err = conn.ExecContext(ctx, "SELECT 1; COMMIT")
	}
	if err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	}
	return err
}

// Planner is implemented by projectors that can turn a batch into its
// writes without the database. A rebuild plans the next chunk (decoding
// events, encoding rows) while the previous one is being written, so
// Postgres and the planning work run side by side. Apply must do the same
// as Plan followed by Write.
type Planner interface {
	// Plan prepares batch's writes. It must be safe to call while another
	// Plan's writes run, and must not depend on rows written by earlier
	// plans that have not been written yet.
	Plan(batch []events.Envelope) (Plan, error)
}

// Plan is a batch's writes, ready to run in a transaction. Write is
// called at most once: a plan may hand its buffers on once written.
type Plan interface {
	Write(ctx context.Context, tx Tx) error
}

// Indexer is implemented by projectors with secondary indexes. A rebuild
// creates them after the bulk load, which is faster than maintaining them
// row by row.
type Indexer interface {
	// Indexes returns DDL creating the indexes in the current search_path.
	Indexes() string
}

// NotifyChannel is the Postgres channel on which checkpoint moves are
// announced as "name:seq", so replicas that do not run a projector still
// learn its progress for read-your-writes.
const NotifyChannel = "keyhold_projection"

// ErrInvalidOption is returned by NewRunner for an option with a bad value.
var ErrInvalidOption = errors.New("projections: invalid option")

// ErrVersionMismatch means the active generation of a projector's tables
// was built by another version of the projector than this process runs
// (a rolling upgrade, or a downgrade): this process does not apply events
// to them. A newer binary rebuilds at start; an older one refuses to start
// until an operator rebuilds with it.
var ErrVersionMismatch = errors.New("projections: read tables of another projector version")

// ErrRebuildRunning is returned when another process is rebuilding the same projector.
var ErrRebuildRunning = errors.New("projections: a rebuild of this projector is already running")

// Runner applies projectors to the log. Each projector is a consumer of a
// leader.Group of kind "projector": in each process one goroutine per
// projector competes for a Postgres advisory lock; the holder applies
// events, the others stand by, so only one process applies a projector at a
// time. The checkpoint row is locked in every batch transaction as well, so
// even a leader that lost its lock unnoticed never applies an event twice.
type Runner struct {
	db         *sqlx.DB
	dsn        string
	store      *events.Store
	group      *leader.Group
	progress   *Progress
	projectors []Projector
	log        *slog.Logger
	batchSize  int

	mu       sync.Mutex
	prepared bool
}

// RunnerOption configures NewRunner.
type RunnerOption func(*Runner) error

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) RunnerOption {
	return func(r *Runner) error {
		if err := groupOption(r, leader.WithLogger(l)); err != nil {
			return err
		}
		r.log = l
		return nil
	}
}

// groupOption applies o to the runner's leader group.
func groupOption(r *Runner, o leader.Option) error {
	if err := o(r.group); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOption, err)
	}
	return nil
}

// WithBatchSize caps how many events one live transaction applies (default 500).
func WithBatchSize(n int) RunnerOption {
	return func(r *Runner) error {
		if n < 1 || n > 10000 {
			return fmt.Errorf("%w: batch size %d (want 1..10000)", ErrInvalidOption, n)
		}
		r.batchSize = n
		return nil
	}
}

// WithFollow makes leaders follow the log through l (for example a
// fan-out shared with other followers in the process) instead of a
// consumer of their own.
func WithFollow(l events.Log) RunnerOption {
	return func(r *Runner) error { return groupOption(r, leader.WithFollow(l)) }
}

// WithLockRetry sets how often a standby tries to take over a projector (default 1s).
func WithLockRetry(d time.Duration) RunnerOption {
	return func(r *Runner) error { return groupOption(r, leader.WithLockRetry(d)) }
}

// NewRunner returns a runner over db (whose connection string is dsn, used
// to LISTEN for other replicas' progress).
func NewRunner(db *sqlx.DB, dsn string, store *events.Store, progress *Progress, projectors []Projector, opts ...RunnerOption) (*Runner, error) {
	if db == nil || store == nil || progress == nil {
		return nil, fmt.Errorf("%w: nil dependency", ErrInvalidOption)
	}
	g, err := leader.New(db, store, "projector")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, err)
	}
	r := &Runner{db: db, dsn: dsn, store: store, group: g, progress: progress, projectors: projectors,
		log: g.Logger(), batchSize: 500}
	for _, p := range projectors {
		if !validName(p.Name()) {
			return nil, fmt.Errorf("%w: projector name %q", ErrInvalidOption, p.Name())
		}
	}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// validName accepts the names that make schema names (name_gN) and lock
// keys.
func validName(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// Names returns the projector names.
func (r *Runner) Names() []string {
	out := make([]string, len(r.projectors))
	for i, p := range r.projectors {
		out[i] = p.Name()
	}
	return out
}

func schemaName(name string, gen int) string { return name + "_g" + strconv.Itoa(gen) }

// Prepare applies migrations and gives every projector an active
// generation of its current version, creating or rebuilding it as needed
// (with progress reported through the logger). It loads each checkpoint
// into the progress tracker.
func (r *Runner) Prepare(ctx context.Context) error {
	if err := Migrate(ctx, r.db); err != nil {
		return err
	}
	for _, p := range r.projectors {
		version, exists, err := r.ensureGeneration(ctx, p)
		if err != nil {
			return err
		}
		if exists && version > p.Version() {
			// Rebuilding down would undo a newer binary's work, and it would
			// rebuild up again: two versions rebuilding over each other.
			return fmt.Errorf("%w: %s's tables were built by version %d, newer than this binary's %d; run a newer keyhold, or rebuild with this one (keyhold projections rebuild)",
				ErrVersionMismatch, p.Name(), version, p.Version())
		}
		if exists && version != p.Version() {
			r.log.Info("projector version changed, rebuilding", "projector", p.Name(), "from", version, "to", p.Version())
			if err := r.rebuild(ctx, p, r.logProgress); err != nil {
				return err
			}
		}
	}
	if err := r.loadProgress(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	r.prepared = true
	r.mu.Unlock()
	return nil
}

// ensureGeneration creates generation 1 for a projector that has none.
func (r *Runner) ensureGeneration(ctx context.Context, p Projector) (version int, existed bool, err error) {
	tx, err := r.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", leader.Key("prepare", p.Name())); err != nil {
		return 0, false, err
	}
	err = tx.GetContext(ctx, &version, "SELECT version FROM projection_checkpoints WHERE name = $1", p.Name())
	if err == nil {
		return version, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, false, err
	}
	schema := schemaName(p.Name(), 1)
	if err := createGeneration(ctx, tx, p, schema, true); err != nil {
		return 0, false, err
	}
	if err := swapViews(ctx, tx, p, schema); err != nil {
		return 0, false, err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO projection_checkpoints (name, generation, version, seq) VALUES ($1, 1, $2, 0)", p.Name(), p.Version()); err != nil {
		return 0, false, err
	}
	return p.Version(), false, tx.Commit()
}

func createGeneration(ctx context.Context, tx execer, p Projector, schema string, withIndexes bool) error {
	if _, err := tx.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+pq.QuoteIdentifier(schema)+" CASCADE"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "CREATE SCHEMA "+pq.QuoteIdentifier(schema)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL search_path TO "+pq.QuoteIdentifier(schema)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, p.Schema()); err != nil {
		return fmt.Errorf("create %s tables: %w", p.Name(), err)
	}
	if withIndexes {
		if err := createIndexes(ctx, tx, p); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, "SET LOCAL search_path TO public")
	return err
}

func createIndexes(ctx context.Context, tx execer, p Projector) error {
	ix, ok := p.(Indexer)
	if !ok {
		return nil
	}
	if _, err := tx.ExecContext(ctx, ix.Indexes()); err != nil {
		return fmt.Errorf("create %s indexes: %w", p.Name(), err)
	}
	return nil
}

func swapViews(ctx context.Context, tx execer, p Projector, schema string) error {
	for _, t := range p.Tables() {
		view, target := "public."+pq.QuoteIdentifier(t), pq.QuoteIdentifier(schema)+"."+pq.QuoteIdentifier(t)
		// Replacing keeps the view's identity, so reads waiting on it carry
		// on; only a changed column list needs drop and create.
		if _, err := tx.ExecContext(ctx, "SAVEPOINT swap"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "CREATE OR REPLACE VIEW "+view+" AS SELECT * FROM "+target); err == nil {
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT swap"); err != nil {
				return err
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT swap"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DROP VIEW IF EXISTS "+view+"; CREATE VIEW "+view+" AS SELECT * FROM "+target); err != nil {
			return fmt.Errorf("swap view %s: %w", t, err)
		}
	}
	return nil
}

func (r *Runner) loadProgress(ctx context.Context) error {
	var rows []struct {
		Name string `db:"name"`
		Seq  uint64 `db:"seq"`
	}
	if err := r.db.SelectContext(ctx, &rows, "SELECT name, seq FROM projection_checkpoints"); err != nil {
		return err
	}
	for _, row := range rows {
		r.progress.Advance(row.Name, row.Seq)
	}
	return nil
}

// Run applies the projectors (or stands by while another process does)
// and follows other processes' progress until ctx ends. Call Prepare first.
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	prepared := r.prepared
	r.mu.Unlock()
	if !prepared {
		return errors.New("projections: Run before Prepare")
	}
	var wg sync.WaitGroup
	if r.dsn != "" {
		wg.Add(1)
		go func() { defer wg.Done(); r.listen(ctx) }()
	}
	consumers := make([]leader.Consumer, len(r.projectors))
	for i, p := range r.projectors {
		consumers[i] = r.consumer(p)
	}
	r.group.Run(ctx, consumers)
	wg.Wait()
	return ctx.Err()
}

// Leading reports whether this process currently applies projector name.
func (r *Runner) Leading(name string) bool { return r.group.Leading(name) }

// listen feeds other processes' checkpoint moves into the progress tracker.
func (r *Runner) listen(ctx context.Context) {
	l := pq.NewListener(r.dsn, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			r.log.Warn("projection listener", "err", err)
		}
	})
	defer l.Close()
	if err := l.Listen(NotifyChannel); err != nil {
		r.log.Error("listen for projection progress", "err", err)
		return
	}
	poll := time.NewTicker(5 * time.Second)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-l.Notify:
			if n == nil { // reconnected: notifications may have been missed
				_ = r.loadProgress(ctx)
				continue
			}
			name, seqStr, ok := strings.Cut(n.Extra, ":")
			if seq, err := strconv.ParseUint(seqStr, 10, 64); ok && err == nil {
				r.progress.Advance(name, seq)
			}
		case <-poll.C:
			_ = r.loadProgress(ctx)
		}
	}
}

// consumer runs p as a consumer of the group: it applies events while
// this process holds p's lock.
func (r *Runner) consumer(p Projector) leader.Consumer {
	standingBy := false
	return leader.Consumer{
		Name: p.Name(),
		Lead: func(ctx context.Context, s *leader.Session) error { return r.lead(ctx, s, p) },
		Ended: func(err error) bool {
			switch {
			case errors.Is(err, leader.ErrBehind):
				r.log.Info("projector fell behind the live feed; catching up from its checkpoint", "projector", p.Name())
				return true
			case errors.Is(err, ErrVersionMismatch):
				// Said once: the condition lasts until a rebuild or a restart.
				if !standingBy {
					r.log.Warn("projector standing by: its tables belong to another version", "projector", p.Name(), "err", err)
				}
				standingBy = true
				return true
			}
			standingBy = false
			return false
		},
	}
}

// lead streams events from the checkpoint on: the live feed is drained
// into batches, so a projector that is behind
// catches up many events per transaction and one that is current applies
// each event as soon as it arrives. Batches are applied on the session
// holding the projector's lock.
func (r *Runner) lead(ctx context.Context, s *leader.Session, p Projector) error {
	lv, err := r.openLive(ctx, s.Conn(), p)
	if err != nil {
		return err
	}
	// A long backlog is read straight from the stream first, in full
	// batches: a follower shared with others must not have to buffer it.
	head, err := r.store.LastSequence(ctx)
	if err != nil {
		return err
	}
	if head > lv.seq+uint64(r.batchSize) {
		if err := lv.catchUp(ctx, head); err != nil {
			return err
		}
	}
	// When the feed's buffer is full the leader applies what it holds and
	// starts again from its checkpoint, reading the backlog from the stream.
	feed, err := s.Follow(ctx, lv.seq, 4*r.batchSize)
	if err != nil {
		return err
	}
	defer feed.Stop()
	ping := time.NewTicker(5 * time.Second)
	defer ping.Stop()
	batch := make([]events.Envelope, 0, r.batchSize)
	for {
		if err := feed.Err(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ping.C:
			if err := s.Ping(ctx); err != nil {
				return err
			}
			continue
		case env := <-feed.Events():
			batch = append(batch[:0], env)
		}
	drain:
		for len(batch) < r.batchSize {
			select {
			case env := <-feed.Events():
				batch = append(batch, env)
			default:
				break drain
			}
		}
		if err := lv.apply(ctx, batch); err != nil {
			return err
		}
	}
}

// live applies batches for a leader on its own connection, whose session
// is set up once: synchronous_commit off (safe: rows and checkpoint commit
// together and the log is the truth, so a commit lost in a crash is
// applied again) and the search_path of the active generation. It keeps
// the checkpoint it last wrote, and sends a batch as one script (BEGIN,
// the projector's argument-free writes, one statement that moves the
// checkpoint and notifies, COMMIT): new rows cost one round trip.
type live struct {
	r          *Runner
	conn       *sqlx.Conn
	p          Projector
	generation int
	seq        uint64
}

// errFenced means the checkpoint row moved under the leader (a rebuild
// switched generations, or another process applied events after this one
// lost its lock unnoticed); the batch was rolled back.
var errFenced = errors.New("projections: checkpoint moved under the leader")

func (r *Runner) openLive(ctx context.Context, conn *sqlx.Conn, p Projector) (*live, error) {
	if _, err := conn.ExecContext(ctx, "SET synchronous_commit = off"); err != nil {
		return nil, err
	}
	lv := &live{r: r, conn: conn, p: p}
	return lv, lv.reload(ctx)
}

func (lv *live) reload(ctx context.Context) error {
	var cp struct {
		Generation int    `db:"generation"`
		Version    int    `db:"version"`
		Seq        uint64 `db:"seq"`
	}
	if err := lv.conn.GetContext(ctx, &cp, "SELECT generation, version, seq FROM projection_checkpoints WHERE name = $1", lv.p.Name()); err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	if cp.Version != lv.p.Version() {
		return fmt.Errorf("%w: %s's tables are of version %d, this process applies version %d", ErrVersionMismatch, lv.p.Name(), cp.Version, lv.p.Version())
	}
	if _, err := lv.conn.ExecContext(ctx, "SET search_path TO "+pq.QuoteIdentifier(schemaName(lv.p.Name(), cp.Generation))+", public"); err != nil {
		return err
	}
	lv.generation, lv.seq = cp.Generation, cp.Seq
	lv.r.progress.Advance(lv.p.Name(), cp.Seq)
	return nil
}

// apply applies a batch, skipping events at or below the checkpoint. If
// the batch fails, its events are applied one at a time and the one that
// fails is recorded in projection_failures and skipped.
func (lv *live) apply(ctx context.Context, batch []events.Envelope) error {
	err := lv.applyTx(ctx, batch, nil)
	if err == nil || isTransient(err) {
		return err
	}
	lv.r.log.Warn("projector batch failed, applying one event at a time", "projector", lv.p.Name(), "err", err)
	for _, env := range batch {
		one := []events.Envelope{env}
		if err = lv.applyTx(ctx, one, nil); err == nil {
			continue
		}
		if isTransient(err) {
			return err
		}
		if err = lv.applyTx(ctx, one, err); err != nil {
			return err
		}
	}
	return nil
}

// applyTx runs one batch transaction; with failure set it records that
// failure for the batch's single event instead of applying it. When the
// checkpoint moved under it, it reloads and tries again.
func (lv *live) applyTx(ctx context.Context, batch []events.Envelope, failure error) error {
	for {
		err := lv.tryTx(ctx, batch, failure)
		if !errors.Is(err, errFenced) {
			return err
		}
		if err := lv.reload(ctx); err != nil {
			return err
		}
	}
}

func (lv *live) tryTx(ctx context.Context, batch []events.Envelope, failure error) (err error) {
	i := 0
	for i < len(batch) && batch[i].Sequence <= lv.seq {
		i++
	}
	if i == len(batch) {
		return nil
	}
	todo := batch[i:]
	last := todo[len(todo)-1].Sequence
	tx := &script{conn: lv.conn}
	tx.hold("BEGIN")
	committed := false
	defer func() {
		if !committed {
			if _, rerr := lv.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil && err == nil {
				err = rerr
			}
		}
	}()
	if failure != nil {
		env := todo[0]
		lv.r.log.Error("projector could not apply event; recorded and skipped", "projector", lv.p.Name(), "seq", env.Sequence, "type", env.Type, "err", failure)
		if _, err := tx.ExecContext(ctx, `INSERT INTO projection_failures (projector, seq, event_type, error) VALUES ($1, $2, $3, $4)
			ON CONFLICT (projector, seq) DO UPDATE SET error = EXCLUDED.error, failed_at = now()`,
			lv.p.Name(), env.Sequence, env.Type, failure.Error()); err != nil {
			return err
		}
	} else if err := lv.p.Apply(ctx, tx, todo); err != nil {
		return err
	}
	// The checkpoint moves only from the value this leader last wrote, in
	// the generation and version it writes; otherwise the division by zero
	// aborts the transaction and the COMMIT after it does not run.
	seq := strconv.FormatUint(last, 10)
	name := pq.QuoteLiteral(lv.p.Name())
	err = tx.send(ctx, `WITH moved AS (
			UPDATE projection_checkpoints SET seq = `+seq+`, updated_at = now()
			WHERE name = `+name+` AND seq = `+strconv.FormatUint(lv.seq, 10)+` AND generation = `+strconv.Itoa(lv.generation)+`
			  AND version = `+strconv.Itoa(lv.p.Version())+` RETURNING 1)
		SELECT pg_notify(`+pq.QuoteLiteral(NotifyChannel)+`, `+pq.QuoteLiteral(lv.p.Name()+":"+seq)+`), 1 / (SELECT count(*)::int FROM moved);
		COMMIT`)
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "22012" && lv.fenced(ctx) {
		return errFenced
	}
	if err != nil {
		return err
	}
	committed = true
	lv.seq = last
	lv.r.progress.Advance(lv.p.Name(), last)
	return nil
}

// fenced tells, after a division by zero ended a batch, whether it was
// the fence: the checkpoint row no longer holds what this leader last
// wrote. Otherwise a projector statement divided by zero, a failure of
// the batch's events like any other.
func (lv *live) fenced(ctx context.Context) bool {
	// The failed batch leaves the transaction aborted until rolled back.
	if _, err := lv.conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		return true // the reload that follows a fence reports the fault
	}
	var cp struct {
		Generation int    `db:"generation"`
		Version    int    `db:"version"`
		Seq        uint64 `db:"seq"`
	}
	if err := lv.conn.GetContext(ctx, &cp, "SELECT generation, version, seq FROM projection_checkpoints WHERE name = $1", lv.p.Name()); err != nil {
		return true
	}
	return cp.Generation != lv.generation || cp.Version != lv.p.Version() || cp.Seq != lv.seq
}

// isTransient reports errors worth retrying later rather than recording as
// a failed event: lost connections, cancellations, resource shortages.
func isTransient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code.Class() {
		case "08", "40", "53", "57", "58":
			return true
		}
		return false
	}
	// Errors that are neither Postgres errors nor projector errors come
	// from the driver or the network.
	var perr *ApplyError
	return !errors.As(err, &perr)
}

// ApplyError marks an error a projector raised about an event itself
// (undecodable data, a broken invariant), as opposed to a database fault.
type ApplyError struct {
	Seq uint64
	Err error
}

func (e *ApplyError) Error() string { return fmt.Sprintf("event %d: %v", e.Seq, e.Err) }

// Unwrap returns the cause.
func (e *ApplyError) Unwrap() error { return e.Err }

// CatchUp applies every projector up to the log's current end in this
// process (used by the CLI when no server is running). When another process
// holds a projector, it waits for that process to get there instead.
func (r *Runner) CatchUp(ctx context.Context) error {
	head, err := r.store.LastSequence(ctx)
	if err != nil {
		return err
	}
	for _, p := range r.projectors {
		if err := r.catchUp(ctx, p, head); err != nil {
			return err
		}
	}
	return nil
}

// catchUp brings one projector to head: itself when it can take the
// projector's lock, or by waiting while another process holds it. It keeps
// trying the lock while it waits, because the holder may stop (a closing
// session releases its lock a moment after the process let go).
func (r *Runner) catchUp(ctx context.Context, p Projector, head uint64) error {
	for {
		s, err := r.group.TryLock(ctx, p.Name())
		if err != nil {
			return err
		}
		if s != nil {
			err = r.catchUpLocked(ctx, s.Conn(), p, head)
			s.Close()
			return err
		}
		var cur uint64
		if err := r.db.GetContext(ctx, &cur, "SELECT seq FROM projection_checkpoints WHERE name = $1", p.Name()); err != nil {
			return err
		}
		if cur >= head {
			r.progress.Advance(p.Name(), cur)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *Runner) catchUpLocked(ctx context.Context, conn *sqlx.Conn, p Projector, head uint64) error {
	lv, err := r.openLive(ctx, conn, p)
	if err != nil {
		return err
	}
	return lv.catchUp(ctx, head)
}

// catchUp reads events after the checkpoint up to head from the stream
// and applies them in full batches.
func (lv *live) catchUp(ctx context.Context, head uint64) error {
	if lv.seq >= head {
		return nil
	}
	batch := make([]events.Envelope, 0, lv.r.batchSize)
	err := lv.r.store.Read(ctx, events.Filter{StartSeq: lv.seq + 1}, func(env events.Envelope) error {
		if env.Sequence > head {
			return events.ErrStop
		}
		batch = append(batch, env)
		if len(batch) >= lv.r.batchSize {
			if err := lv.apply(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(batch) > 0 {
		return lv.apply(ctx, batch)
	}
	return nil
}
