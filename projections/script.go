package projections

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"

	"github.com/jmoiron/sqlx"
)

// script is the Tx of a live batch. Statements without arguments are held
// back and sent together with the next statement that needs the
// connection, and the last of them with the checkpoint move and COMMIT:
// a batch of new rows costs one round trip. Postgres runs a multi-statement
// query until the first error and skips the rest, so an error in any held
// statement aborts the transaction just as if it had been sent alone.
//
// A held statement's result reports no rows affected, and its error is
// returned by the call that sends it (a later ExecContext, Raw or commit).
// Not safe for concurrent use.
type script struct {
	conn *sqlx.Conn
	held strings.Builder
}

// heldResult is the result of a statement not sent yet.
type heldResult struct{}

func (heldResult) LastInsertId() (int64, error) { return 0, nil }
func (heldResult) RowsAffected() (int64, error) { return 0, nil }

func (s *script) hold(q string) {
	s.held.WriteString(q)
	s.held.WriteString(";\n")
}

// ExecContext implements Tx.
func (s *script) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if len(args) == 0 {
		s.hold(query)
		return heldResult{}, nil
	}
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	return s.conn.ExecContext(ctx, query, args...)
}

// Raw implements Tx.
func (s *script) Raw(f func(driverConn any) error) error {
	if err := s.flush(context.Background()); err != nil {
		return err
	}
	return s.conn.Raw(f)
}

// flush sends the held statements, if any.
func (s *script) flush(ctx context.Context) error {
	if s.held.Len() == 0 {
		return nil
	}
	q := s.held.String()
	s.held.Reset()
	_, err := s.conn.ExecContext(ctx, q)
	return err
}

// send sends the held statements followed by last, in one round trip.
func (s *script) send(ctx context.Context, last string) error {
	s.held.WriteString(last)
	return s.flush(ctx)
}

var _ driver.Result = heldResult{}
