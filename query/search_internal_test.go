package query

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/projections"
)

// searchFixture makes the IAM read tables with their indexes, 10000 roles
// and 10000 groups in acme and 2000 of each in other, analysed.
func searchFixture(t *testing.T) (*Queries, *sqlx.DB) {
	t.Helper()
	db := testenv.DB(t)
	iam := projections.IAM{}
	_, err := db.Exec(iam.Schema())
	testenv.Must(t, err, "schema")
	_, err = db.Exec(iam.Indexes())
	testenv.Must(t, err, "indexes")
	_, err = db.Exec(`INSERT INTO roles (tenant, id, num, name, managed, is_default, rules, created_at, updated_at)
		SELECT CASE WHEN i > 10000 THEN 'other' ELSE 'acme' END, lpad(i::text, 26, '0'), i, 'role-' || md5(i::text),
		       i % 7 = 0, i % 5 = 0, '[]', now(), now()
		FROM generate_series(1, 12000) AS i`)
	testenv.Must(t, err, "fill roles")
	_, err = db.Exec(`INSERT INTO groups (tenant, id, num, name, created_at, updated_at)
		SELECT CASE WHEN i > 10000 THEN 'other' ELSE 'acme' END, lpad(i::text, 26, '0'), 100000 + i, 'group-' || md5(i::text), now(), now()
		FROM generate_series(1, 12000) AS i`)
	testenv.Must(t, err, "fill groups")
	_, err = db.Exec(`ANALYZE roles; ANALYZE groups`)
	testenv.Must(t, err, "analyze")
	return adminQueries(t, db), db
}

// Every sort a role or group search allows, either way, is planned along
// an index: a page of a large tenant reads the page, not the tenant.
func TestSearchPagesUseAnIndex(t *testing.T) {
	q, _ := searchFixture(t)
	for _, tt := range []struct {
		table, columns string
		sortable       map[string]string
	}{{"roles", roleColumns, roleSort}, {"groups", groupColumns, groupSort}} {
		for field := range tt.sortable {
			for _, desc := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s by %s desc=%v", tt.table, field, desc), func(t *testing.T) {
					order, limit, offset, err := Search{Page: 3, Sort: []SortBy{{Field: field, Desc: desc}}}.resolve(tt.sortable)
					testenv.Must(t, err, "resolve")
					where, args := textWhere("name", "acme", "")
					scans := planScans(t, q, pageSQL(tt.table, tt.columns, where, order, limit, offset, len(args)), pageArgs(args, offset))
					for _, s := range scans {
						if s.Type == "Seq Scan" || s.Type == "Sort" {
							t.Fatalf("plan has a %s: %+v", s.Type, scans)
						}
					}
				})
			}
		}
	}
}

// planScans returns the scan and sort nodes of the plan of query.
func planScans(t *testing.T, q *Queries, query string, args []any) []planNode {
	t.Helper()
	var plan []byte
	testenv.Must(t, q.db.Get(&plan, "EXPLAIN (FORMAT JSON) "+query, args...), "explain")
	var doc []struct {
		Plan planNode `json:"Plan"`
	}
	testenv.Must(t, json.Unmarshal(plan, &doc), "decode plan")
	var out []planNode
	var walk func(n planNode)
	walk = func(n planNode) {
		if n.Type == "Sort" || n.Type == "Seq Scan" || n.Index != "" {
			out = append(out, planNode{Type: n.Type, Index: n.Index})
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(doc[0].Plan)
	if len(out) == 0 {
		t.Fatalf("no scan in the plan %s", plan)
	}
	return out
}

// A search's total is exact: the kept count follows inserts and deletes
// (by single rows and by statements of many), and a text filter counts
// the matches.
func TestSearchTotalsAreExact(t *testing.T) {
	q, db := searchFixture(t)
	ctx := context.Background()
	check := func(t *testing.T, text string) {
		t.Helper()
		for _, table := range []string{"roles", "groups"} {
			var want int
			testenv.Must(t, db.Get(&want, `SELECT count(*) FROM `+table+` WHERE tenant = 'acme' AND name ILIKE $1`, likePattern(text)), "count")
			var total int
			var err error
			if table == "roles" {
				_, total, err = q.SearchRoles(ctx, admin(), Search{Text: text})
			} else {
				_, total, err = q.SearchGroups(ctx, admin(), Search{Text: text})
			}
			testenv.Must(t, err, "search")
			if total != want {
				t.Errorf("%s matching %q: total %d, want %d", table, text, total, want)
			}
		}
	}
	check(t, "")
	check(t, "ab")
	// A page past the end holds no row to carry the total: still exact.
	var want int
	testenv.Must(t, db.Get(&want, `SELECT count(*) FROM roles WHERE tenant = 'acme'`), "count")
	if items, total, err := q.SearchRoles(ctx, admin(), Search{Page: 100000, Size: 10}); err != nil || len(items) != 0 || total != want {
		t.Fatalf("past the end: %d items, total %d (want %d), %v", len(items), total, want, err)
	}
	for _, stmt := range []string{
		`DELETE FROM roles WHERE tenant = 'acme' AND num % 3 = 0`,
		`DELETE FROM groups WHERE tenant = 'acme' AND id = lpad('17', 26, '0')`,
		`INSERT INTO roles (tenant, id, num, name, rules, created_at, updated_at) VALUES ('acme', 'new', 999999, 'new', '[]', now(), now()) ON CONFLICT DO NOTHING`,
		`INSERT INTO roles (tenant, id, num, name, rules, created_at, updated_at) VALUES ('acme', 'new', 999998, 'again', '[]', now(), now()) ON CONFLICT DO NOTHING`,
		`DELETE FROM groups WHERE tenant = 'other'`,
	} {
		_, err := db.Exec(stmt)
		testenv.Must(t, err, "%s", stmt)
	}
	check(t, "")
	var n int
	testenv.Must(t, db.Get(&n, `SELECT count(*) FROM roles WHERE tenant = 'acme'`), "count")
	if n == 10000 || n < 6000 {
		t.Fatalf("the changes left %d roles: they did not change what the totals check", n)
	}
}
