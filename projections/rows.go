package projections

import (
	"context"
	"database/sql/driver"
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

// copyLine is lib/pq's COPY statement extension for raw lines.
type copyLine interface {
	CopyData(ctx context.Context, line string) (driver.Result, error)
}

// copyRows streams rows into table with COPY, encoding each row as one
// line of COPY's text format itself: going through database/sql would
// convert and re-encode every value of every row.
func copyRows(ctx context.Context, tx Tx, table string, cols []string, rows [][]any) error {
	return tx.Raw(func(dc any) error {
		conn, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("copy into %s: unexpected driver connection %T", table, dc)
		}
		stmt, err := conn.Prepare(pq.CopyIn(table, cols...))
		if err != nil {
			return err
		}
		defer stmt.Close()
		cl, ok := stmt.(copyLine)
		if !ok {
			return fmt.Errorf("copy into %s: driver statement %T cannot copy raw lines", table, stmt)
		}
		var line []byte
		for _, row := range rows {
			line = line[:0]
			for j, v := range row {
				if j > 0 {
					line = append(line, '\t')
				}
				if line, err = appendCopyText(line, v); err != nil {
					return fmt.Errorf("%s.%s: %w", table, cols[j], err)
				}
			}
			if _, err := cl.CopyData(ctx, string(line)); err != nil {
				return err
			}
		}
		// An empty Exec ends the COPY and reports its errors.
		_, err = stmt.Exec(nil) //nolint:staticcheck // lib/pq's copyin has no ExecContext
		return err
	})
}

// appendCopyText appends v in COPY's text format.
func appendCopyText(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return appendCopyEscaped(b, v), nil
	case time.Time:
		return v.UTC().AppendFormat(b, "2006-01-02 15:04:05.999999Z07:00"), nil
	case []string:
		if v == nil {
			v = []string{}
		}
		a, err := pq.StringArray(v).Value()
		if err != nil {
			return nil, err
		}
		return appendCopyEscaped(b, a.(string)), nil
	case nil:
		return append(b, `\N`...), nil
	}
	return nil, fmt.Errorf("no COPY text form for %T", v)
}

func appendCopyEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, c)
		}
	}
	return b
}
