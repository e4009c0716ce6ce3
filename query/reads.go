package query

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// maxPrepared bounds the statements reads keeps prepared. Query texts
// carry no values but a page's size (see pageClause): a few dozen texts in
// common use, more for a client that varies its page size. Beyond the
// bound a new text runs unprepared, as every read did before, so a client
// that fills the cache costs others the preparation's gain, not
// correctness.
const maxPrepared = 512

// reads runs the read side's queries as prepared statements. Postgres then
// parses a query once per connection and, once it has seen a few
// executions, plans it once too: for a list page through the generation
// views that is most of the server's work (pgbench, 8 clients, the first
// list page: 4.7k queries/s unprepared, 8.8k prepared). Safe for
// concurrent use.
type reads struct {
	db    *sqlx.DB
	mu    sync.Mutex
	stmts map[string]*sqlx.Stmt
}

func newReads(db *sqlx.DB) *reads {
	return &reads{db: db, stmts: map[string]*sqlx.Stmt{}}
}

// stmt returns query prepared, or nil when it cannot be (the cache is
// full, or preparing failed: the caller then runs it unprepared, and
// a query that is wrong fails there with its own error).
func (r *reads) stmt(ctx context.Context, query string) *sqlx.Stmt {
	r.mu.Lock()
	st, ok := r.stmts[query]
	full := len(r.stmts) >= maxPrepared
	r.mu.Unlock()
	if ok || full {
		return st
	}
	st, err := r.db.PreparexContext(ctx, query)
	if err != nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if have, ok := r.stmts[query]; ok {
		_ = st.Close()
		return have
	}
	r.stmts[query] = st
	return st
}

// stale reports whether err means that a prepared statement's result
// columns changed under it (a newer projection version swapped the views
// in); forget then drops the statement and the query runs unprepared once.
func stale(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && strings.Contains(pe.Message, "cached plan must not change result type")
}

func (r *reads) forget(query string) {
	r.mu.Lock()
	st := r.stmts[query]
	delete(r.stmts, query)
	r.mu.Unlock()
	if st != nil {
		_ = st.Close()
	}
}

// GetContext is sqlx's GetContext through a prepared statement.
func (r *reads) GetContext(ctx context.Context, dest any, query string, args ...any) error {
	if st := r.stmt(ctx, query); st != nil {
		err := st.GetContext(ctx, dest, args...)
		if !stale(err) {
			return err
		}
		r.forget(query)
	}
	return r.db.GetContext(ctx, dest, query, args...)
}

// Get is GetContext without a context.
func (r *reads) Get(dest any, query string, args ...any) error {
	return r.GetContext(context.Background(), dest, query, args...)
}

// SelectContext is sqlx's SelectContext through a prepared statement.
func (r *reads) SelectContext(ctx context.Context, dest any, query string, args ...any) error {
	if st := r.stmt(ctx, query); st != nil {
		err := st.SelectContext(ctx, dest, args...)
		if !stale(err) {
			return err
		}
		r.forget(query)
	}
	return r.db.SelectContext(ctx, dest, query, args...)
}

// QueryContext runs query through a prepared statement; the caller closes
// the rows.
func (r *reads) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := r.stmt(ctx, query); st != nil {
		rows, err := st.QueryContext(ctx, args...)
		if !stale(err) {
			return rows, err
		}
		r.forget(query)
	}
	return r.db.QueryContext(ctx, query, args...)
}
