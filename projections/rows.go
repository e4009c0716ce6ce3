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

// encoder writes the values of rows either as COPY text lines or as SQL
// literals, field by field, without boxing each value in an interface.
type encoder struct {
	buf    []byte
	copy   bool // COPY text format; otherwise SQL literals
	fields int  // fields written in the current row
	array  []byte
}

func (e *encoder) sep() {
	if e.fields > 0 {
		if e.copy {
			e.buf = append(e.buf, '\t')
		} else {
			e.buf = append(e.buf, ", "...)
		}
	}
	e.fields++
}

func (e *encoder) str(s string) {
	e.sep()
	if e.copy {
		e.buf = appendCopyEscaped(e.buf, s)
	} else {
		e.buf = append(e.buf, pq.QuoteLiteral(s)...)
	}
}

func (e *encoder) time(t time.Time) {
	e.sep()
	if !e.copy {
		e.buf = append(e.buf, '\'')
	}
	e.buf = t.UTC().AppendFormat(e.buf, "2006-01-02 15:04:05.999999Z07:00")
	if !e.copy {
		e.buf = append(e.buf, '\'')
	}
}

// strs writes a text[] value: Postgres array syntax, then escaped or
// quoted like any text.
func (e *encoder) strs(ss []string) {
	e.array = append(e.array[:0], '{')
	for i, s := range ss {
		if i > 0 {
			e.array = append(e.array, ',')
		}
		e.array = append(e.array, '"')
		for j := 0; j < len(s); j++ {
			if s[j] == '"' || s[j] == '\\' {
				e.array = append(e.array, '\\')
			}
			e.array = append(e.array, s[j])
		}
		e.array = append(e.array, '"')
	}
	e.array = append(e.array, '}')
	e.str(string(e.array))
}

// writeRows inserts n rows into table, row(e, i) writing row i's values
// in column order. A few rows go in one multi-row INSERT with literal
// values: one round trip, where lib/pq needs two per parameterised
// statement and three for a COPY. Many rows (catching up, rebuilding) go
// through COPY.
func writeRows(ctx context.Context, tx Tx, table string, cols []string, n int, row func(e *encoder, i int)) error {
	if n == 0 {
		return nil
	}
	if n >= copyThreshold {
		return copyRows(ctx, tx, table, cols, n, row)
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
	e := &encoder{}
	for i := range n {
		if i > 0 {
			e.buf = append(e.buf, ", "...)
		}
		e.buf = append(e.buf, '(')
		e.fields = 0
		row(e, i)
		if e.fields != len(cols) {
			return fmt.Errorf("%s: row has %d values for %d columns", table, e.fields, len(cols))
		}
		e.buf = append(e.buf, ')')
	}
	q.Write(e.buf)
	_, err := tx.ExecContext(ctx, q.String())
	return err
}

// copyLine is lib/pq's COPY statement extension for raw lines.
type copyLine interface {
	CopyData(ctx context.Context, line string) (driver.Result, error)
}

// copyRows streams rows into table with COPY, encoding each row as one
// line of COPY's text format itself: going through database/sql would
// convert and re-encode every value of every row.
func copyRows(ctx context.Context, tx Tx, table string, cols []string, n int, row func(e *encoder, i int)) error {
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
		e := &encoder{copy: true}
		for i := range n {
			e.buf, e.fields = e.buf[:0], 0
			row(e, i)
			if e.fields != len(cols) {
				return fmt.Errorf("%s: row has %d values for %d columns", table, e.fields, len(cols))
			}
			if _, err := cl.CopyData(ctx, string(e.buf)); err != nil {
				return err
			}
		}
		// An empty Exec ends the COPY and reports its errors.
		_, err = stmt.Exec(nil) //nolint:staticcheck // lib/pq's copyin has no ExecContext
		return err
	})
}

// appendCopyEscaped appends s escaped for COPY's text format.
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
