package projections

import (
	"slices"
	"testing"
	"time"
)

func TestAppendTimestampOutsideFourDigitYears(t *testing.T) {
	for _, tt := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(0, 6, 1, 0, 0, 0, 0, time.UTC), "0001-06-01 00:00:00Z BC"},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "10000-01-01 00:00:00Z"},
	} {
		if got := string(appendTimestamp(nil, tt.t)); got != tt.want {
			t.Errorf("appendTimestamp(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestAppendTimestamp(t *testing.T) {
	tests := []time.Time{
		time.Date(2026, 11, 26, 14, 46, 23, 123456789, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("X", -7*3600)),
		time.Date(2024, 2, 29, 12, 0, 0, 500, time.FixedZone("Y", 5*3600+1800)),
	}
	for _, tt := range tests {
		t.Run(tt.String(), func(t *testing.T) {
			got := string(appendTimestamp([]byte("x"), tt))
			want := "x" + tt.UTC().Format("2006-01-02 15:04:05.000000Z")
			if got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func TestAppendCopyEscaped(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain text", "plain text"},
		{"tab\there", `tab\there`},
		{"two\n\nlines\r", `two\n\nlines\r`},
		{`back\slash\`, `back\\slash\\`},
		{`\N`, `\\N`},
		{"ünï\tcødé", `ünï\tcødé`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := string(appendCopyEscaped([]byte("x"), tt.in)); got != "x"+tt.want {
				t.Errorf("got %q, want %q", got, "x"+tt.want)
			}
		})
	}
}

// Every index the IAM projector declares names one of its tables, the
// one a rebuild analyses after building it.
func TestIndexTable(t *testing.T) {
	for _, tt := range []struct {
		stmt, want string
		ok         bool
	}{
		{"CREATE INDEX a ON service_accounts (tenant, id)", "service_accounts", true},
		{`CREATE UNIQUE INDEX b ON "roles" (num)`, "roles", true},
		{"CREATE INDEX c\n    on groups (tenant, name) WHERE name <> ''", "groups", true},
		{"CREATE INDEX d", "", false},
	} {
		t.Run(tt.stmt, func(t *testing.T) {
			got, err := indexTable(tt.stmt)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("indexTable = %q, %v; want %q (ok %v)", got, err, tt.want, tt.ok)
			}
		})
	}
	iam := IAM{}
	for _, st := range statements(iam.Indexes()) {
		tbl, err := indexTable(st)
		if err != nil || !slices.Contains(iam.Tables(), tbl) {
			t.Errorf("index %q: table %q (%v) is not one of %v", st, tbl, err, iam.Tables())
		}
	}
}
