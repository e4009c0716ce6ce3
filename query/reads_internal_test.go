package query

import (
	"context"
	"slices"
	"testing"

	"github.com/keyhold/keyhold/internal/testenv"
)

// A projection of a newer version swaps in views of another shape while
// a server holds statements prepared against the old ones (a rolling
// upgrade): reads go on, with the new shape, instead of failing with
// Postgres's "cached plan must not change result type".
func TestPreparedReadsFollowAViewThatChangedShape(t *testing.T) {
	db := testenv.DB(t)
	_, err := db.Exec(`CREATE TABLE t1 (a int); INSERT INTO t1 VALUES (1); CREATE VIEW v AS SELECT a FROM t1`)
	testenv.Must(t, err, "fixture")
	r := newReads(db)
	ctx := context.Background()
	columns := func() []string {
		t.Helper()
		rows, err := r.QueryContext(ctx, `SELECT * FROM v WHERE a = $1`, 1)
		testenv.Must(t, err, "read v")
		defer rows.Close()
		cols, err := rows.Columns()
		testenv.Must(t, err, "columns")
		return cols
	}
	// Enough runs for Postgres to settle on a plan, on the pool's only
	// connection.
	db.SetMaxOpenConns(1)
	for range 7 {
		if got := columns(); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("columns %v, want [a]", got)
		}
	}
	if len(r.stmts) != 1 {
		t.Fatalf("%d statements prepared, want 1", len(r.stmts))
	}
	_, err = db.Exec(`DROP VIEW v; CREATE VIEW v AS SELECT a, 2 AS b FROM t1`)
	testenv.Must(t, err, "reshape v")
	for range 2 {
		if got := columns(); !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("after the swap: columns %v, want [a b]", got)
		}
	}
}
