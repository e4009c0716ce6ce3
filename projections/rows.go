package projections

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// copyThreshold is the row count from which writeRows uses COPY.
const copyThreshold = 200

// stamp truncates t to the microseconds Postgres keeps, so a stored time
// never rounds up past the time the event recorded.
func stamp(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// writeRows inserts rows into table. A few rows go in one multi-row
// INSERT with literal values: one round trip, where lib/pq needs two per
// parameterised statement and three for a COPY. Many rows (catching up,
// rebuilding) go through COPY. Values are string, []string or time.Time.
func writeRows(ctx context.Context, tx Tx, table string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	if len(rows) >= copyThreshold {
		return copyRows(ctx, tx, table, cols, rows)
	}
	var q strings.Builder
	q.WriteString("INSERT INTO ")
	q.WriteString(pq.QuoteIdentifier(table))
	q.WriteString(" (")
	for i, c := range cols {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(pq.QuoteIdentifier(c))
	}
	q.WriteString(") VALUES ")
	for i, row := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteByte('(')
		for j, v := range row {
			if j > 0 {
				q.WriteString(", ")
			}
			lit, err := literal(v)
			if err != nil {
				return fmt.Errorf("%s.%s: %w", table, cols[j], err)
			}
			q.WriteString(lit)
		}
		q.WriteByte(')')
	}
	_, err := tx.ExecContext(ctx, q.String())
	return err
}

func literal(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return pq.QuoteLiteral(v), nil
	case time.Time:
		return pq.QuoteLiteral(v.UTC().Format("2006-01-02T15:04:05.999999Z07:00")), nil
	case []string:
		if v == nil {
			return "'{}'", nil
		}
		a, err := pq.StringArray(v).Value()
		if err != nil {
			return "", err
		}
		return pq.QuoteLiteral(a.(string)), nil
	}
	return "", fmt.Errorf("no literal form for %T", v)
}

func copyRows(ctx context.Context, tx Tx, table string, cols []string, rows [][]any) error {
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn(table, cols...))
	if err != nil {
		return err
	}
	for _, row := range rows {
		for j, v := range row {
			if a, ok := v.([]string); ok {
				if a == nil {
					a = []string{}
				}
				row[j] = pq.StringArray(a)
			}
		}
		if _, err := stmt.ExecContext(ctx, row...); err != nil {
			stmt.Close()
			return err
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		stmt.Close()
		return err
	}
	return stmt.Close()
}
