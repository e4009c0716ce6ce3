package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/projections"
)

// listFixture makes the IAM read tables with their indexes and fills one
// tenant with accounts spread over every filter value, plus a second
// tenant, then analyses the table so the planner sees real statistics.
func listFixture(t *testing.T) *Queries {
	t.Helper()
	db := testenv.DB(t)
	iam := projections.IAM{}
	_, err := db.Exec(iam.Schema())
	testenv.Must(t, err, "schema")
	_, err = db.Exec(iam.Indexes())
	testenv.Must(t, err, "indexes")
	// 20000 accounts in acme: namespace accounts over 50 targets (one
	// named like the tenant), one in ten disabled, one in five at tenant
	// level; 2000 in other.
	// Namespace accounts are folders, one in three a project.
	_, err = db.Exec(`INSERT INTO service_accounts (tenant, id, num, client_id, display_name, description, scope_level, scope_target, scope_kind, roles, status, created_by, created_at, updated_at)
		SELECT CASE WHEN i > 20000 THEN 'other' ELSE 'acme' END, lpad(i::text, 26, '0'), i, 'khc-' || i, 'sa-' || i, '',
		       CASE WHEN i % 5 = 0 THEN 'tenant' ELSE 'namespace' END,
		       CASE WHEN i % 5 = 0 OR i % 50 = 1 THEN 'acme' ELSE 'team-' || (i % 50) END,
		       CASE WHEN i % 5 = 0 THEN '' WHEN i % 3 = 0 THEN 'project' ELSE 'folder' END,
		       '{viewer}', CASE WHEN i % 10 = 3 THEN 'disabled' ELSE 'active' END, '01admin', now(), now()
		FROM generate_series(1, 22000) AS i`)
	testenv.Must(t, err, "fill")
	_, err = db.Exec(`ANALYZE service_accounts`)
	testenv.Must(t, err, "analyze")
	return adminQueries(t, db)
}

// syncExpiries sets every account's credential_expiries from the rows in
// credentials, as the IAM projector keeps them, for fixtures that write
// credentials rows directly.
func syncExpiries(t *testing.T, db *sqlx.DB) {
	t.Helper()
	_, err := db.Exec(`UPDATE service_accounts s SET credential_expiries = COALESCE((
		SELECT array_agg((extract(epoch FROM c.expires_at) * 1000000)::bigint)
		FROM credentials c WHERE c.tenant = s.tenant AND c.service_account_id = s.id), '{}')`)
	testenv.Must(t, err, "credential expiries")
}

// adminQueries returns queries over db whose authorizer knows admin() as
// acme's tenant administrator.
func adminQueries(t *testing.T, db *sqlx.DB) *Queries {
	t.Helper()
	m := authz.NewModel()
	m.PutPrincipal(authz.Principal{ID: admin().ID, Kind: authz.KindUser})
	m.GrantTenant(admin().ID, "acme")
	for _, r := range authz.ManagedRoles("acme") {
		r.ID = authz.RoleKey("acme", r.ID)
		testenv.Must(t, m.PutRole(r), "role")
	}
	testenv.Must(t, m.Bind(authz.Binding{ID: "b", Role: authz.RoleKey("acme", authz.RoleTenantAdmin), Subject: admin().ID, Scope: authz.TenantScope("acme")}), "bind")
	q, err := New(db, m)
	testenv.Must(t, err, "queries")
	return q
}

func admin() auth.Principal {
	return auth.Principal{ID: "01admin", Kind: auth.KindUser, Tenant: "acme", Bindings: []auth.Binding{
		{Role: authz.RoleTenantAdmin, Tenant: "acme", Scope: events.Scope{Level: events.ScopeTenant, Target: "acme"}},
	}}
}

var listFilters = []struct {
	name string
	f    ServiceAccountFilter
	// scans counts the plan's index scans by index: one per status and
	// (level, kind) combination the filter leaves open.
	scans map[string]int
}{
	{"no filter", ServiceAccountFilter{}, map[string]int{"service_accounts_pkey": 1}},
	{"status", ServiceAccountFilter{Status: "disabled"}, map[string]int{"service_accounts_status": 3}},
	{"level", ServiceAccountFilter{ScopeLevel: "tenant"}, map[string]int{"service_accounts_status": 2}},
	{"namespace level", ServiceAccountFilter{ScopeLevel: "namespace"}, map[string]int{"service_accounts_status": 4}},
	{"kind", ServiceAccountFilter{ScopeKind: "project"}, map[string]int{"service_accounts_status": 2}},
	{"level and status", ServiceAccountFilter{ScopeLevel: "namespace", Status: "disabled"}, map[string]int{"service_accounts_status": 2}},
	{"kind and status", ServiceAccountFilter{ScopeLevel: "namespace", ScopeKind: "folder", Status: "disabled"}, map[string]int{"service_accounts_status": 1}},
	// A namespace target leaves the tenant level out: its accounts'
	// target is the tenant.
	{"target", ServiceAccountFilter{ScopeTarget: "team-7"}, map[string]int{"service_accounts_target": 4}},
	{"level and target", ServiceAccountFilter{ScopeLevel: "namespace", ScopeTarget: "team-7"}, map[string]int{"service_accounts_target": 4}},
	{"kind and target", ServiceAccountFilter{ScopeKind: "project", ScopeTarget: "team-7"}, map[string]int{"service_accounts_target": 2}},
	{"target and status", ServiceAccountFilter{ScopeTarget: "team-3", Status: "disabled"}, map[string]int{"service_accounts_target": 2}},
	{"all four", ServiceAccountFilter{ScopeLevel: "namespace", ScopeKind: "folder", ScopeTarget: "team-3", Status: "disabled"}, map[string]int{"service_accounts_target": 1}},
	// The tenant as target: its tenant-level accounts along the status
	// index, a namespace of the same name along the target index.
	{"tenant target", ServiceAccountFilter{ScopeTarget: "acme"}, map[string]int{"service_accounts_status": 2, "service_accounts_target": 4}},
	{"tenant level and target", ServiceAccountFilter{ScopeLevel: "tenant", ScopeTarget: "acme", Status: "active"}, map[string]int{"service_accounts_status": 1}},
	{"tenant level, other target", ServiceAccountFilter{ScopeLevel: "tenant", ScopeTarget: "team-3"}, map[string]int{}},
	{"no match", ServiceAccountFilter{ScopeLevel: "tenant", Status: "disabled"}, map[string]int{"service_accounts_status": 1}},
	// The list refuses it (TestListServiceAccountsRefusesBadFilters); its
	// plan still holds.
	{"unknown status", ServiceAccountFilter{Status: "suspended"}, map[string]int{"service_accounts_status": 3}},
}

// Every filter the list offers is planned as range scans of an index, with
// no row read only to be filtered out: the cost of a page does not grow
// with the rows the filter skips.
func TestListServiceAccountsUsesAnIndexPerFilter(t *testing.T) {
	q := listFixture(t)
	for _, tt := range listFilters {
		t.Run(tt.name, func(t *testing.T) {
			sql, args := listServiceAccountsSQL("acme", "", tt.f, DefaultLimit+1)
			var plan []byte
			testenv.Must(t, q.db.Get(&plan, "EXPLAIN (FORMAT JSON) "+sql, args...), "explain")
			var doc []struct {
				Plan planNode `json:"Plan"`
			}
			testenv.Must(t, json.Unmarshal(plan, &doc), "decode plan")
			got := map[string]int{}
			ok := true
			for _, s := range doc[0].Plan.scans() {
				got[s.Index]++
				ok = ok && s.Type == "Index Scan" && s.Filter == ""
			}
			if !ok || !maps.Equal(got, tt.scans) {
				t.Fatalf("plan scans %v, want Index Scans %v without a filter\n%s", got, tt.scans, plan)
			}
		})
	}
}

type planNode struct {
	Type   string     `json:"Node Type"`
	Index  string     `json:"Index Name"`
	Filter string     `json:"Filter"`
	Plans  []planNode `json:"Plans"`
}

func (n planNode) scans() []planNode {
	var out []planNode
	if strings.HasSuffix(n.Type, "Scan") {
		out = append(out, planNode{Type: n.Type, Index: n.Index, Filter: n.Filter})
	}
	for _, c := range n.Plans {
		out = append(out, c.scans()...)
	}
	return out
}

// Filtered pages hold exactly the matching accounts of the caller's tenant,
// in id order, and following nextCursor visits each once.
func TestListServiceAccountsFilteredPages(t *testing.T) {
	q := listFixture(t)
	ctx := context.Background()
	for _, tt := range listFilters {
		if tt.f.Status == "suspended" {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			var want int
			where, args := []string{"tenant = 'acme'"}, []any{}
			for col, v := range map[string]string{"scope_level": tt.f.ScopeLevel, "scope_kind": tt.f.ScopeKind, "scope_target": tt.f.ScopeTarget, "status": tt.f.Status} {
				if v != "" {
					args = append(args, v)
					where = append(where, fmt.Sprintf("%s = $%d", col, len(args)))
				}
			}
			testenv.Must(t, q.db.Get(&want, "SELECT count(*) FROM service_accounts WHERE "+strings.Join(where, " AND "), args...), "count")
			seen, last, cursor := 0, "", ""
			for page := 0; ; page++ {
				items, next, err := q.ListServiceAccounts(ctx, admin(), tt.f, Page{Limit: MaxLimit, Cursor: cursor})
				testenv.Must(t, err, "list")
				for _, it := range items {
					if it.Tenant != "acme" || it.ID <= last ||
						(tt.f.Status != "" && it.Status != tt.f.Status) ||
						(tt.f.ScopeLevel != "" && it.ScopeLevel != tt.f.ScopeLevel) ||
						(tt.f.ScopeKind != "" && it.ScopeKind != tt.f.ScopeKind) ||
						(tt.f.ScopeTarget != "" && it.ScopeTarget != tt.f.ScopeTarget) {
						t.Fatalf("page %d: item %+v out of order or not matching %+v", page, it, tt.f)
					}
					last = it.ID
				}
				seen += len(items)
				if next == "" {
					break
				}
				cursor = next
			}
			if seen != want {
				t.Fatalf("pages held %d accounts, want %d", seen, want)
			}
		})
	}
}

// Credentials list by status at the query's clock, and a service account
// counts the active ones.
func TestCredentialsByStatus(t *testing.T) {
	db := testenv.DB(t)
	iam := projections.IAM{}
	_, err := db.Exec(iam.Schema())
	testenv.Must(t, err, "schema")
	sa := strings.Repeat("1", 26)
	_, err = db.Exec(`INSERT INTO service_accounts (tenant, id, num, client_id, display_name, description, scope_level, scope_target, scope_kind, roles, status, created_by, created_at, updated_at)
		VALUES ('acme', $1, 1, 'khc-' || $1, 'sa', '', 'tenant', 'acme', '', '{}', 'active', '01admin', now(), now())`, sa)
	testenv.Must(t, err, "account")
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, expires := range []time.Time{now.Add(-time.Hour), now.Add(time.Hour), now, now.Add(48 * time.Hour)} {
		_, err = db.Exec(`INSERT INTO credentials (tenant, service_account_id, id, created_by, created_at, expires_at) VALUES ('acme', $1, $2, '01admin', $3, $4)`,
			sa, fmt.Sprintf("c%d", i), now.Add(-72*time.Hour), expires)
		testenv.Must(t, err, "credential")
	}
	syncExpiries(t, db)
	q := adminQueries(t, db)
	q.now = func() time.Time { return now }
	ctx := context.Background()
	for _, tc := range []struct {
		status string
		want   []string
	}{
		{"", []string{"c0", "c1", "c2", "c3"}},
		{CredentialActive, []string{"c1", "c3"}},
		// Expiry is exclusive: a credential expiring now has expired.
		{CredentialExpired, []string{"c0", "c2"}},
	} {
		t.Run("status "+tc.status, func(t *testing.T) {
			items, next, err := q.ListCredentials(ctx, admin(), sa, CredentialFilter{Status: tc.status}, Page{})
			testenv.Must(t, err, "list")
			var got []string
			for _, c := range items {
				got = append(got, c.ID)
				if c.CreatedBy != "01admin" {
					t.Errorf("createdBy %q", c.CreatedBy)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") || next != "" {
				t.Fatalf("got %v (next %q), want %v", got, next, tc.want)
			}
		})
	}
	if _, _, err := q.ListCredentials(ctx, admin(), sa, CredentialFilter{Status: "disabled"}, Page{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown status: %v", err)
	}
	got, err := q.ServiceAccount(ctx, admin(), sa)
	testenv.Must(t, err, "get")
	if got.ActiveCredentials != 2 || got.CreatedBy != "01admin" {
		t.Errorf("account %+v: want 2 active credentials, created by 01admin", got)
	}
}

// A filter no account can match because its value cannot exist is bad
// input, named, not an empty page.
func TestListServiceAccountsRefusesBadFilters(t *testing.T) {
	q := listFixture(t)
	for _, tt := range []struct {
		name  string
		f     ServiceAccountFilter
		field string
	}{
		{"unknown status", ServiceAccountFilter{Status: "suspended"}, "status"},
		{"target that is no tenant or namespace", ServiceAccountFilter{ScopeTarget: "Team A"}, "scope_target"},
		{"target with an empty segment", ServiceAccountFilter{ScopeTarget: "team..a"}, "scope_target"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := q.ListServiceAccounts(context.Background(), admin(), tt.f, Page{})
			var fe *FieldError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("err = %v, want ErrInvalid naming %s", err, tt.field)
			}
		})
	}
}

// Every listed account carries the count of its unexpired credentials,
// page after page, filtered or not; credentials of accounts outside the
// page, of another tenant or expired do not count.
func TestListCountsActiveCredentials(t *testing.T) {
	q := listFixture(t)
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	q.now = func() time.Time { return now }
	// Accounts 1..40 of acme get i%4 live credentials and, for every third,
	// one expired; the same ids in other get one each, which never count.
	_, err := q.db.db.Exec(`INSERT INTO credentials (tenant, service_account_id, id, created_by, created_at, expires_at)
		SELECT 'acme', lpad(i::text, 26, '0'), 'live-' || k, '01admin', $1::timestamptz, $1::timestamptz + interval '1 day'
		FROM generate_series(1, 40) AS i, generate_series(1, 3) AS k WHERE k <= i % 4
		UNION ALL
		SELECT 'acme', lpad(i::text, 26, '0'), 'old', '01admin', $1 - interval '2 days', $1
		FROM generate_series(1, 40) AS i WHERE i % 3 = 0
		UNION ALL
		SELECT 'other', lpad(i::text, 26, '0'), 'theirs', '01admin', $1, $1 + interval '1 day'
		FROM generate_series(1, 40) AS i`, now)
	testenv.Must(t, err, "credentials")
	syncExpiries(t, q.db.db)
	want := func(id string) int {
		var n int
		fmt.Sscan(strings.TrimLeft(id, "0"), &n)
		if n > 40 {
			return 0
		}
		return n % 4
	}
	for name, f := range map[string]ServiceAccountFilter{"unfiltered": {}, "active": {Status: "active"}, "namespace level": {ScopeLevel: "namespace"}} {
		t.Run(name, func(t *testing.T) {
			after, seen := "", 0
			for range 8 { // 8 pages of 7: past the accounts with credentials
				items, next, err := q.ListServiceAccounts(context.Background(), admin(), f, Page{Limit: 7, Cursor: after})
				testenv.Must(t, err, "list")
				for _, sa := range items {
					if sa.ActiveCredentials != want(sa.ID) {
						t.Fatalf("account %s: %d active credentials, want %d", sa.ID, sa.ActiveCredentials, want(sa.ID))
					}
					seen++
				}
				after = next
			}
			if seen != 56 {
				t.Fatalf("%d accounts over 8 pages, want 56", seen)
			}
		})
	}
}

// countUnexpired reads Postgres's text form of a bigint[] and counts the
// values after its bound (exclusive, like expires_at > now); anything else
// is an error, not a count.
func TestCountUnexpired(t *testing.T) {
	for _, tc := range []struct {
		raw   string
		after int64
		want  int
		bad   bool
	}{
		{raw: "{}", want: 0},
		{raw: "{5}", after: 4, want: 1},
		{raw: "{5}", after: 5, want: 0},
		{raw: "{1,2,3,1799020800123456}", after: 2, want: 2},
		{raw: "{-7,0,7}", after: -1, want: 2},
		{raw: "", bad: true},
		{raw: "{1,,2}", bad: true},
		{raw: "{1,x}", bad: true},
		{raw: "{NULL}", bad: true},
		{raw: "{1", bad: true},
		{raw: "{-}", bad: true},
		{raw: "{1234567890123456789}", bad: true},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := countUnexpired([]byte(tc.raw), tc.after)
			if tc.bad {
				if err == nil {
					t.Fatalf("counted %d, want an error", got)
				}
				return
			}
			testenv.Must(t, err, "count")
			if got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}
