package projections

import (
	"bytes"
	"context"
	"database/sql/driver"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

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

func (e *encoder) uint(n uint64) {
	e.sep()
	e.buf = strconv.AppendUint(e.buf, n, 10)
}

func (e *encoder) time(t time.Time) {
	e.sep()
	if !e.copy {
		e.buf = append(e.buf, '\'')
	}
	e.buf = appendTimestamp(e.buf, t)
	if !e.copy {
		e.buf = append(e.buf, '\'')
	}
}

// appendTimestamp appends t in UTC as "2006-01-02 15:04:05.000000Z",
// which Postgres reads as timestamptz: time.Format's general machinery
// cost about 5% of a rebuild.
func appendTimestamp(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	if year < 1 || year > 9999 {
		// Postgres has no year 0 and writes earlier years with BC.
		return append(b, pq.FormatTimestamp(t.Truncate(time.Microsecond))...)
	}
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, ' ')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1000, 6)
	return append(b, 'Z')
}

// appendDigits appends v (>= 0) in exactly width decimal digits.
func appendDigits(b []byte, v, width int) []byte {
	b = append(b, "000000"[:width]...)
	for i := len(b) - 1; v > 0 && i >= len(b)-width; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
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

// ints writes a bigint[] value; digits need neither escaping nor quotes
// inside the array.
func (e *encoder) ints(vs []int64) {
	e.array = append(e.array[:0], '{')
	for i, v := range vs {
		if i > 0 {
			e.array = append(e.array, ',')
		}
		e.array = strconv.AppendInt(e.array, v, 10)
	}
	e.array = append(e.array, '}')
	e.str(string(e.array))
}

// rows is a table's new rows, encoded and ready to write: a few as the
// VALUES of one literal INSERT (one round trip, where lib/pq needs two per
// parameterised statement and three for a COPY), many (catching up,
// rebuilding) as lines of COPY's text format.
type rows struct {
	table string
	cols  []string
	n     int
	copy  bool
	data  []byte
}

// encodeRows encodes n rows of table, row(e, i) writing row i's values in
// column order.
func encodeRows(table string, cols []string, n int, row func(e *encoder, i int)) (rows, error) {
	r := rows{table: table, cols: cols, n: n, copy: n >= copyThreshold}
	if n == 0 {
		return r, nil
	}
	e := &encoder{copy: r.copy}
	if r.copy {
		if b, ok := copyBuffers.Get().(*[]byte); ok {
			e.buf = (*b)[:0]
		}
	}
	for i := range n {
		if i > 0 {
			if r.copy {
				e.buf = append(e.buf, '\n')
			} else {
				e.buf = append(e.buf, ", "...)
			}
		}
		if !r.copy {
			e.buf = append(e.buf, '(')
		}
		e.fields = 0
		row(e, i)
		if e.fields != len(cols) {
			return rows{}, fmt.Errorf("%s: row has %d values for %d columns", table, e.fields, len(cols))
		}
		if i == 0 {
			// Room for the rest, judged by the first row, so the buffer
			// is not copied over and over as it grows.
			e.buf = slices.Grow(e.buf, (len(e.buf)+8)*(n-1)*9/8)
		}
		if !r.copy {
			e.buf = append(e.buf, ')')
		}
	}
	r.data = e.buf
	return r, nil
}

// copyBuffers holds the buffers of COPY lines written before: a
// rebuild or a catch-up encodes megabytes a chunk, and fresh memory for
// each cost more (zeroing and faulting it in) than encoding into it.
var copyBuffers sync.Pool

// release gives the rows' buffer back for later rows; r is not used
// after.
func (r *rows) release() {
	if r.copy && r.data != nil {
		b := r.data[:0]
		copyBuffers.Put(&b)
		r.data = nil
	}
}

// write writes the rows in the transaction open on tx.
func (r rows) write(ctx context.Context, tx Tx) error {
	switch {
	case r.n == 0:
		return nil
	case r.copy:
		return r.copyIn(ctx, tx)
	}
	var q strings.Builder
	q.Grow(len(r.data) + 64 + 16*len(r.cols))
	q.WriteString("INSERT INTO ")
	q.WriteString(pq.QuoteIdentifier(r.table))
	q.WriteString(" (")
	for i, c := range r.cols {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(pq.QuoteIdentifier(c))
	}
	q.WriteString(") VALUES ")
	q.Write(r.data)
	_, err := tx.ExecContext(ctx, q.String())
	return err
}

// copyRun is about how many bytes of COPY lines go to the driver at once.
const copyRun = 60 << 10

// copyLine is lib/pq's COPY statement extension for raw lines.
type copyLine interface {
	CopyData(ctx context.Context, line string) (driver.Result, error)
}

// copyIn streams the encoded lines into the table with COPY: going through
// database/sql would convert and re-encode every value of every row. The
// lines go to the driver in runs of about copyRun bytes: it ends each
// call's data with a newline, and a call per line would cost a goroutine
// per line watching ctx. A cancelled ctx still ends the COPY at the Exec
// below.
func (r rows) copyIn(ctx context.Context, tx Tx) error {
	return tx.Raw(func(dc any) error {
		conn, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("copy into %s: unexpected driver connection %T", r.table, dc)
		}
		stmt, err := conn.Prepare(pq.CopyIn(r.table, r.cols...))
		if err != nil {
			return err
		}
		defer stmt.Close()
		cl, ok := stmt.(copyLine)
		if !ok {
			return fmt.Errorf("copy into %s: driver statement %T cannot copy raw lines", r.table, stmt)
		}
		for data := r.data; len(data) > 0; {
			run := len(data)
			if run > copyRun {
				run = copyRun + bytes.IndexByte(data[copyRun:], '\n')
				if run < copyRun {
					run = len(data)
				}
			}
			// The driver copies the line into its own buffer at once, so
			// the run is lent to it without a copy of its own.
			if _, err := cl.CopyData(context.Background(), unsafe.String(&data[0], run)); err != nil {
				return err
			}
			data = data[min(run+1, len(data)):]
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// An empty Exec ends the COPY and reports its errors.
		_, err = stmt.Exec(nil) //nolint:staticcheck // lib/pq's copyin has no ExecContext
		return err
	})
}

// appendCopyEscaped appends s escaped for COPY's text format.
func appendCopyEscaped(b []byte, s string) []byte {
	for len(s) > 0 {
		// Copy the run up to the next byte that needs escaping at once.
		i := strings.IndexAny(s, "\\\t\n\r")
		if i < 0 {
			return append(b, s...)
		}
		b = append(b, s[:i]...)
		switch s[i] {
		case '\\':
			b = append(b, '\\', '\\')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		}
		s = s[i+1:]
	}
	return b
}
