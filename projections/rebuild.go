package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/leader"
)

// RebuildProgress reports how a rebuild is going.
type RebuildProgress struct {
	Projector string
	// Applied is the last sequence applied to the new generation; Head the
	// log's end when the current pass began.
	Applied, Head uint64
	Events        uint64
	Elapsed       time.Duration
	Done          bool
}

// rebuildStatisticsTarget is the statistics target of a rebuild's
// ANALYZE: samples of 3000 rows a table instead of the default's 30000.
// The reads are keyset pages and lookups along indexes, planned from row
// counts and the leading columns' common values, which such a sample
// gives; at the default target the analysis took as long as building
// the secondary indexes. Later analyses (autovacuum's, or an operator's
// ANALYZE) use the database's own target.
const rebuildStatisticsTarget = 10

// rebuildChunk is how many events one rebuild transaction applies: large,
// so COPY does the work.
const rebuildChunk = 5000

// rebuildFirstChunk is the size of a pass's first chunk; later ones
// double up to rebuildChunk.
const rebuildFirstChunk = 500

// Rebuild rebuilds every projector from sequence 0 into a new generation
// and switches reads over to it in one transaction, without stopping a
// running server's reads or its live projector. report, if non-nil, is
// called after each chunk and once at the end of each projector.
func (r *Runner) Rebuild(ctx context.Context, report func(RebuildProgress)) error {
	if err := Migrate(ctx, r.db); err != nil {
		return err
	}
	if report == nil {
		report = func(RebuildProgress) {}
	}
	for _, p := range r.projectors {
		if _, _, err := r.ensureGeneration(ctx, p); err != nil {
			return err
		}
		if err := r.rebuild(ctx, p, report); err != nil {
			return err
		}
	}
	return r.loadProgress(ctx)
}

func (r *Runner) logProgress(p RebuildProgress) {
	r.log.Info("rebuild", "projector", p.Projector, "applied", p.Applied, "head", p.Head, "events", p.Events, "elapsed", p.Elapsed.Round(time.Millisecond).String(), "done", p.Done)
}

type failure struct {
	seq   uint64
	typ   string
	cause string
}

func (r *Runner) rebuild(ctx context.Context, p Projector, report func(RebuildProgress)) error {
	lockConn, err := r.db.Connx(ctx)
	if err != nil {
		return err
	}
	defer lockConn.Close()
	var got bool
	if err := lockConn.GetContext(ctx, &got, "SELECT pg_try_advisory_lock($1)", leader.Key("rebuild", p.Name())); err != nil {
		return err
	}
	if !got {
		return fmt.Errorf("%w: %s", ErrRebuildRunning, p.Name())
	}
	defer lockConn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", leader.Key("rebuild", p.Name()))

	var oldGen int
	if err := r.db.GetContext(ctx, &oldGen, "SELECT generation FROM projection_checkpoints WHERE name = $1", p.Name()); err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	gen := oldGen + 1
	schema := schemaName(p.Name(), gen)
	tx, err := r.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := createGeneration(ctx, tx, p, schema, false); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			_, _ = r.db.ExecContext(context.Background(), "DROP SCHEMA IF EXISTS "+pq.QuoteIdentifier(schema)+" CASCADE")
		}
	}()

	// Rebuild transactions run on one connection of their own, begun with
	// plain statements so the projector can COPY through the driver.
	wc, err := r.db.Connx(ctx)
	if err != nil {
		return err
	}
	defer leader.Discard(wc)

	start := time.Now()
	var applied, count uint64
	var failures []failure
	apply := func(ctx context.Context, tx Tx, c chunk) error {
		f, err := r.applyRebuildBatch(ctx, tx, p, schema, c)
		if err != nil {
			return err
		}
		failures = append(failures, f...)
		applied = c.batch[len(c.batch)-1].Sequence
		count += uint64(len(c.batch))
		return nil
	}
	// Passes over the log until what is left is small; the last stretch is
	// applied while holding the checkpoint row, so the live projector pauses
	// only for that.
	for {
		head, err := r.store.LastSequence(ctx)
		if err != nil {
			return err
		}
		if head <= applied+rebuildChunk && applied > 0 || head == applied {
			break
		}
		if err := r.pass(ctx, wc, p, applied, head, apply, func() {
			report(RebuildProgress{Projector: p.Name(), Applied: applied, Head: head, Events: count, Elapsed: time.Since(start)})
		}); err != nil {
			return err
		}
	}

	if err := r.indexGeneration(ctx, p, schema); err != nil {
		return err
	}

	err = inTx(ctx, wc, func() error {
		var liveSeq uint64
		if err := wc.GetContext(ctx, &liveSeq, "SELECT seq FROM projection_checkpoints WHERE name = $1 FOR UPDATE", p.Name()); err != nil {
			return err
		}
		head, err := r.store.LastSequence(ctx)
		if err != nil {
			return err
		}
		if head > applied {
			var batch []events.Envelope
			if err := r.store.Read(ctx, events.Filter{StartSeq: applied + 1}, func(env events.Envelope) error {
				if env.Sequence > head {
					return events.ErrStop
				}
				batch = append(batch, env)
				return nil
			}); err != nil {
				return err
			}
			if len(batch) > 0 {
				if err := apply(ctx, wc, chunk{batch: batch}); err != nil {
					return err
				}
			}
		}
		if applied < liveSeq {
			return fmt.Errorf("rebuild of %s reached %d but the live checkpoint is %d", p.Name(), applied, liveSeq)
		}
		if _, err := wc.ExecContext(ctx, "SET LOCAL search_path TO public"); err != nil {
			return err
		}
		if err := swapViews(ctx, wc, p, schema); err != nil {
			return err
		}
		if _, err := wc.ExecContext(ctx, "UPDATE projection_checkpoints SET generation = $2, version = $3, seq = $4, updated_at = now() WHERE name = $1",
			p.Name(), gen, p.Version(), applied); err != nil {
			return err
		}
		if _, err := wc.ExecContext(ctx, "DELETE FROM projection_failures WHERE projector = $1", p.Name()); err != nil {
			return err
		}
		for _, f := range failures {
			if _, err := wc.ExecContext(ctx, "INSERT INTO projection_failures (projector, seq, event_type, error) VALUES ($1, $2, $3, $4)", p.Name(), f.seq, f.typ, f.cause); err != nil {
				return err
			}
		}
		_, err = wc.ExecContext(ctx, "SELECT pg_notify($1, $2)", NotifyChannel, p.Name()+":"+strconv.FormatUint(applied, 10))
		return err
	})
	if err != nil {
		return err
	}
	keep = true
	r.progress.Advance(p.Name(), applied)
	if _, err := r.db.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+pq.QuoteIdentifier(schemaName(p.Name(), oldGen))+" CASCADE"); err != nil {
		r.log.Warn("drop old generation", "schema", schemaName(p.Name(), oldGen), "err", err)
	}
	report(RebuildProgress{Projector: p.Name(), Applied: applied, Head: applied, Events: count, Elapsed: time.Since(start), Done: true})
	return nil
}

// indexGeneration creates the projector's secondary indexes in schema
// and gathers planner statistics of its tables. Tables go at once, and a
// table's index builds at once, each statement on its own connection:
// index builds are CPU bound in Postgres, one core each, and the rebuild
// waits for them. A table is analysed after its indexes (ANALYZE and
// CREATE INDEX lock each other out), so a table without indexes is
// analysed while the others' are built. Without the statistics, reads
// right after the switch-over are planned blind (autovacuum analyses new
// tables only later) and may scan a table a page needs a few rows of. The
// generation is not visible yet, so statements that commit apart are
// safe; a failure fails the rebuild, which drops the schema.
func (r *Runner) indexGeneration(ctx context.Context, p Projector, schema string) error {
	byTable := map[string][]string{}
	if ix, ok := p.(Indexer); ok {
		for _, st := range statements(ix.Indexes()) {
			t, err := indexTable(st)
			if err != nil {
				return fmt.Errorf("%s indexes: %w", p.Name(), err)
			}
			byTable[t] = append(byTable[t], st)
		}
	}
	tables := p.Tables()
	for t := range byTable {
		if !slices.Contains(tables, t) {
			return fmt.Errorf("%s indexes: table %s is not one of the projector's tables", p.Name(), t)
		}
	}
	return allAtOnce(len(tables), func(i int) error {
		t := tables[i]
		if err := r.runApart(ctx, schema, byTable[t]); err != nil {
			return fmt.Errorf("create %s indexes: %w", t, err)
		}
		analyze := fmt.Sprintf("SET LOCAL default_statistics_target = %d; ANALYZE %s", rebuildStatisticsTarget, pq.QuoteIdentifier(t))
		if err := r.execIn(ctx, schema, analyze); err != nil {
			return fmt.Errorf("analyze %s: %w", t, err)
		}
		return nil
	})
}

// indexTable returns the table a CREATE INDEX statement indexes: the name
// after its ON.
func indexTable(stmt string) (string, error) {
	fields := strings.Fields(stmt)
	for i, f := range fields {
		if strings.EqualFold(f, "ON") && i+1 < len(fields) {
			return strings.Trim(fields[i+1], `"`), nil
		}
	}
	return "", fmt.Errorf("no table in %q", stmt)
}

// runApart runs each statement in its own transaction in schema, all at
// once.
func (r *Runner) runApart(ctx context.Context, schema string, stmts []string) error {
	return allAtOnce(len(stmts), func(i int) error { return r.execIn(ctx, schema, stmts[i]) })
}

// allAtOnce runs fn(0) to fn(n-1) each in its own goroutine and returns
// once all have, with their errors joined.
func allAtOnce(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *Runner) execIn(ctx context.Context, schema, stmt string) error {
	tx, err := r.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SET LOCAL search_path TO "+pq.QuoteIdentifier(schema)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, stmt); err != nil {
		return err
	}
	return tx.Commit()
}

// statements splits DDL into its statements, dropping "--" comment lines.
func statements(ddl string) []string {
	var b strings.Builder
	for _, line := range strings.Split(ddl, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	var out []string
	for _, st := range strings.Split(b.String(), ";") {
		if st = strings.TrimSpace(st); st != "" {
			out = append(out, st)
		}
	}
	return out
}

// chunk is a stretch of events a rebuild applies in one transaction,
// with its plan when the projector is a Planner and planning succeeded.
type chunk struct {
	batch []events.Envelope
	plan  Plan
}

// pass applies events (from, to] in chunks through a pipeline: one
// goroutine reads and decodes envelopes, a second plans each chunk (for a
// Planner), and the caller's goroutine writes, so reading and planning the
// next chunks overlap with Postgres writing this one.
func (r *Runner) pass(ctx context.Context, wc *sqlx.Conn, p Projector, from, to uint64, apply func(context.Context, Tx, chunk) error, tick func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	read := make(chan []events.Envelope, 2)
	readErr := make(chan error, 1)
	go func() {
		defer close(read)
		// Chunks start small and double, so Postgres starts writing soon
		// instead of waiting for a whole chunk to be read and planned.
		size := rebuildFirstChunk
		batch := make([]events.Envelope, 0, size)
		readErr <- r.store.Read(ctx, events.Filter{StartSeq: from + 1}, func(env events.Envelope) error {
			if env.Sequence > to {
				return events.ErrStop
			}
			batch = append(batch, env)
			if len(batch) == size || env.Sequence == to {
				select {
				case read <- batch:
				case <-ctx.Done():
					return ctx.Err()
				}
				size = min(2*size, rebuildChunk)
				batch = make([]events.Envelope, 0, size)
			}
			return nil
		})
		if len(batch) > 0 {
			select {
			case read <- batch:
			case <-ctx.Done():
			}
		}
	}()
	planned := make(chan chunk, 1)
	go func() {
		defer close(planned)
		pl, _ := p.(Planner)
		for batch := range read {
			c := chunk{batch: batch}
			if pl != nil {
				// A chunk that cannot be planned is applied event by
				// event by the writer, which records what fails.
				c.plan, _ = pl.Plan(batch)
			}
			select {
			case planned <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	for c := range planned {
		err := inTx(ctx, wc, func() error {
			if _, err := wc.ExecContext(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
				return err
			}
			return apply(ctx, wc, c)
		})
		if err != nil {
			return err
		}
		tick()
	}
	return <-readErr
}

// applyRebuildBatch applies a chunk to the new generation inside tx; if
// the chunk fails, it is applied event by event under savepoints and the
// failing events are returned to be recorded.
func (r *Runner) applyRebuildBatch(ctx context.Context, tx Tx, p Projector, schema string, c chunk) ([]failure, error) {
	if _, err := tx.ExecContext(ctx, "SET LOCAL search_path TO "+pq.QuoteIdentifier(schema)+", public"); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, "SAVEPOINT chunk"); err != nil {
		return nil, err
	}
	batch := c.batch
	var err error
	if c.plan != nil {
		err = c.plan.Write(ctx, tx)
	} else {
		err = p.Apply(ctx, tx, batch)
	}
	if err == nil {
		return nil, nil
	}
	if isTransient(err) {
		return nil, err
	}
	r.log.Warn("rebuild chunk failed, applying one event at a time", "projector", p.Name(), "from", batch[0].Sequence, "to", batch[len(batch)-1].Sequence, "err", err)
	if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT chunk"); err != nil {
		return nil, err
	}
	var failed []failure
	for _, env := range batch {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT one"); err != nil {
			return nil, err
		}
		if err := p.Apply(ctx, tx, []events.Envelope{env}); err != nil {
			if isTransient(err) {
				return nil, err
			}
			failed = append(failed, failure{seq: env.Sequence, typ: env.Type, cause: err.Error()})
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT one"); err != nil {
				return nil, err
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT one"); err != nil {
			return nil, err
		}
	}
	return failed, nil
}
