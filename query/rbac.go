package query

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/lib/pq"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

// Numbered-page limits (Search, page and size).
const (
	DefaultPageSize = 10
	MaxPageSize     = 1000
	// MaxSearchText bounds a search's text filter, in bytes.
	MaxSearchText = 256
	// MaxIDs bounds a lookup by ids.
	MaxIDs = 1000
)

// SortBy orders a search by one field.
type SortBy struct {
	Field string
	Desc  bool
}

// Search asks for one numbered page of a listing: Page counts from 1,
// Size items per page (0: DefaultPageSize), ordered by Sort then by id,
// in the direction of Sort's last field (so that an index on the field
// and id serves the order either way),
// narrowed by Text, matched case-insensitively as a substring of the
// listing's name field.
type Search struct {
	Page int
	Size int
	Sort []SortBy
	Text string
}

// resolve checks s against the sortable fields of a listing (field name ->
// column) and returns the ORDER BY clause, limit and offset.
func (s Search) resolve(sortable map[string]string) (order string, limit, offset int, err error) {
	size := s.Size
	if size == 0 {
		size = DefaultPageSize
	}
	if size < 1 || size > MaxPageSize {
		return "", 0, 0, invalid("size", "size must be between 1 and %d", MaxPageSize)
	}
	page := s.Page
	if page == 0 {
		page = 1
	}
	if page < 1 || page > 1_000_000 {
		return "", 0, 0, invalid("page", "page must be between 1 and 1000000")
	}
	if err := validSearchText(s.Text); err != nil {
		return "", 0, 0, err
	}
	if len(s.Sort) > len(sortable) {
		return "", 0, 0, invalid("sort", "give at most %d sort fields, each once", len(sortable))
	}
	var parts []string
	seen := map[string]bool{}
	for _, by := range s.Sort {
		if seen[by.Field] {
			return "", 0, 0, invalid("sort", "sort by %q once", by.Field)
		}
		seen[by.Field] = true
		col, ok := sortable[by.Field]
		if !ok {
			known := make([]string, 0, len(sortable))
			for f := range sortable {
				known = append(known, f)
			}
			slices.Sort(known)
			return "", 0, 0, invalid("sort", "cannot sort by %q (sortable: %s)", by.Field, strings.Join(known, ", "))
		}
		dir := " ASC"
		if by.Desc {
			dir = " DESC"
		}
		parts = append(parts, col+dir)
	}
	last := " ASC"
	if n := len(s.Sort); n > 0 && s.Sort[n-1].Desc {
		last = " DESC"
	}
	parts = append(parts, sortable["id"]+last)
	return strings.Join(parts, ", "), size, (page - 1) * size, nil
}

// textWhere is the condition of a tenant's rows whose column holds text
// (all of them for ""), with its arguments; the condition is left out
// rather than made always true, so that a plan never weighs it.
func textWhere(column, tenant, text string) (string, []any) {
	if text == "" {
		return `tenant = $1`, []any{tenant}
	}
	return `tenant = $1 AND ` + column + ` ILIKE $2`, []any{tenant, likePattern(text)}
}

// pageSQL selects one page of table's rows matching where, whose
// arguments number nargs (pass pageArgs(args, offset) with it).
func pageSQL(table, columns, where, order string, limit, offset, nargs int) string {
	return `SELECT ` + columns + ` FROM ` + table + ` WHERE ` + where + ` ORDER BY ` + order + pageClause(limit, offset, nargs)
}

// pageClause is the LIMIT and OFFSET of a page for a query with nargs
// arguments. The limit is part of the text: reads are prepared (see
// reads), and Postgres plans a prepared statement once only when no
// argument can change its plan, which a limit can; page sizes are bounded,
// so the texts are few. An offset past the first page is an argument
// (pageArgs), so that deep pages do not each make a statement of their own.
func pageClause(limit, offset, nargs int) string {
	s := ` LIMIT ` + strconv.Itoa(limit)
	if offset > 0 {
		s += ` OFFSET $` + strconv.Itoa(nargs+1)
	}
	return s
}

// pageArgs returns args with offset added when pageClause refers to it,
// leaving args itself as it was.
func pageArgs(args []any, offset int) []any {
	if offset == 0 {
		return args
	}
	return append(slices.Clip(args), offset)
}

// count returns how many rows of a counted table (see row_counts in
// projections/rbac.sql) match where: the tenant's kept count when all
// (where is the tenant's rows, args[0] the tenant), else by counting.
func (q *Queries) count(ctx context.Context, table, where string, args []any, all bool) (int, error) {
	var n int
	var err error
	if all {
		err = q.db.GetContext(ctx, &n, `SELECT COALESCE((SELECT n FROM row_counts WHERE tbl = $1 AND tenant = $2), 0)`, table, args[0])
	} else {
		err = q.db.GetContext(ctx, &n, `SELECT count(*) FROM `+table+` WHERE `+where, args...)
	}
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	return n, nil
}

// likePattern is a case-insensitive substring pattern for text, with
// LIKE's wildcards escaped.
func likePattern(text string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(text) + "%"
}

// checkIDs bounds a lookup by ids.
func checkIDs(ids []string) error {
	if len(ids) > MaxIDs {
		return invalid("ids", "ids must hold at most %d ids", MaxIDs)
	}
	return nil
}

// mayIn reports whether caller may do action in its tenant, else an
// ErrForbidden naming what it may not read.
func (q *Queries) mayIn(caller auth.Principal, action, what string) error {
	if !q.may(caller, action) {
		return fmt.Errorf("%w: you may not read %s in tenant %q (%s)", ErrForbidden, what, caller.Tenant, action)
	}
	return nil
}

// Role is a role as the read tables hold it.
type Role struct {
	ID string
	// Number is the role's number (see Numbered).
	Number      uint64
	Name        string
	Description string
	Managed     bool
	Default     bool
	Rules       []authz.Rule
}

type roleRow struct {
	ID          string `db:"id"`
	Number      uint64 `db:"num"`
	Name        string `db:"name"`
	Description string `db:"description"`
	Managed     bool   `db:"managed"`
	Default     bool   `db:"is_default"`
	Rules       []byte `db:"rules"`
}

func (r roleRow) role() (Role, error) {
	var rules []events.Rule
	if err := json.Unmarshal(r.Rules, &rules); err != nil {
		return Role{}, fmt.Errorf("role %s: rules: %w", r.ID, err)
	}
	return Role{ID: r.ID, Number: r.Number, Name: r.Name, Description: r.Description, Managed: r.Managed, Default: r.Default, Rules: auth.RulesOf(rules)}, nil
}

func roles(rows []roleRow) ([]Role, error) {
	out := make([]Role, len(rows))
	for i, r := range rows {
		var err error
		if out[i], err = r.role(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

const roleColumns = "id, num, name, description, managed, is_default, rules"

var roleSort = map[string]string{"id": "id", "name": "name", "isDefault": "is_default", "isManaged": "managed"}

// SearchRoles returns a page of the caller's tenant's roles and how many
// match in all. It needs iam.roles.list (ErrForbidden otherwise).
func (q *Queries) SearchRoles(ctx context.Context, caller auth.Principal, s Search) (items []Role, total int, err error) {
	if err := q.mayIn(caller, authz.RolesList, "roles"); err != nil {
		return nil, 0, err
	}
	order, limit, offset, err := s.resolve(roleSort)
	if err != nil {
		return nil, 0, err
	}
	where, args := textWhere("name", caller.Tenant, s.Text)
	var rows []roleRow
	if s.Text == "" {
		// The kept total rides along with the page: one round trip.
		var counted []struct {
			roleRow
			Total int `db:"total_rows"`
		}
		err = q.db.SelectContext(ctx, &counted, pageSQL("roles", roleColumns+`, `+keptCount("roles"), where, order, limit, offset, len(args)), pageArgs(args, offset)...)
		if err != nil {
			return nil, 0, fmt.Errorf("search roles: %w", err)
		}
		for _, c := range counted {
			rows, total = append(rows, c.roleRow), c.Total
		}
	} else {
		err = q.db.SelectContext(ctx, &rows, pageSQL("roles", roleColumns, where, order, limit, offset, len(args)), pageArgs(args, offset)...)
		if err != nil {
			return nil, 0, fmt.Errorf("search roles: %w", err)
		}
	}
	if len(rows) == 0 || s.Text != "" {
		// A page past the end, or a filtered search: counted apart.
		if total, err = q.count(ctx, "roles", where, args, s.Text == ""); err != nil {
			return nil, 0, err
		}
	}
	items, err = roles(rows)
	return items, total, err
}

// keptCount is a select-list column, total_rows, holding the kept row
// count of table (see count) for the tenant of $1.
func keptCount(table string) string {
	return `COALESCE((SELECT n FROM row_counts WHERE tbl = '` + table + `' AND tenant = $1), 0) AS total_rows`
}

// RolesByIDs returns the roles of the caller's tenant with the given ids,
// ordered by name; unknown ids are left out. It needs iam.roles.list.
func (q *Queries) RolesByIDs(ctx context.Context, caller auth.Principal, ids []string) ([]Role, error) {
	return q.matchRoles(ctx, caller, "", ids, false)
}

// AutocompleteRoles returns up to limit roles whose name holds text
// (case-insensitively), and every role whose id is in ids, ordered by
// name. It needs iam.roles.list.
func (q *Queries) AutocompleteRoles(ctx context.Context, caller auth.Principal, text string, ids []string) ([]Role, error) {
	return q.matchRoles(ctx, caller, text, ids, true)
}

// AutocompleteLimit bounds the text matches of an autocomplete.
const AutocompleteLimit = 50

func (q *Queries) matchRoles(ctx context.Context, caller auth.Principal, text string, ids []string, byText bool) ([]Role, error) {
	if err := q.mayIn(caller, authz.RolesList, "roles"); err != nil {
		return nil, err
	}
	query, args, err := matchSQL("roles", roleColumns, caller.Tenant, text, ids, byText)
	if err != nil {
		return nil, err
	}
	var rows []roleRow
	if err := q.db.SelectContext(ctx, &rows, query, args...); err != nil {
		return nil, fmt.Errorf("match roles: %w", err)
	}
	return roles(rows)
}

// matchSQL selects the rows of table in tenant with an id in ids, plus
// (when byText) up to AutocompleteLimit whose name holds text.
func matchSQL(table, columns, tenant, text string, ids []string, byText bool) (string, []any, error) {
	if err := checkIDs(ids); err != nil {
		return "", nil, err
	}
	if err := validSearchText(text); err != nil {
		return "", nil, err
	}
	if ids == nil {
		ids = []string{}
	}
	byID := `SELECT ` + columns + ` FROM ` + table + ` WHERE tenant = $1 AND id = ANY($2)`
	if !byText {
		return byID + ` ORDER BY name, id`, []any{tenant, pq.StringArray(ids)}, nil
	}
	return `SELECT ` + columns + ` FROM ((` + byID + `) UNION (SELECT ` + columns + ` FROM ` + table +
			` WHERE tenant = $1 AND name ILIKE $3 ORDER BY name, id LIMIT ` + strconv.Itoa(AutocompleteLimit) + `)) m ORDER BY name, id`,
		[]any{tenant, pq.StringArray(ids), likePattern(text)}, nil
}

// Role returns one role of the caller's tenant. It needs iam.roles.get.
func (q *Queries) Role(ctx context.Context, caller auth.Principal, id string) (Role, error) {
	if err := q.mayIn(caller, authz.RolesGet, "roles"); err != nil {
		return Role{}, err
	}
	var row roleRow
	err := q.db.GetContext(ctx, &row, `SELECT `+roleColumns+` FROM roles WHERE tenant = $1 AND id = $2`, caller.Tenant, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Role{}, fmt.Errorf("%w: role %q", ErrNotFound, id)
	}
	if err != nil {
		return Role{}, fmt.Errorf("get role: %w", err)
	}
	return row.role()
}

// Group is a group as the read tables hold it.
type Group struct {
	ID string `db:"id"`
	// Number is the group's number (see Numbered).
	Number      uint64 `db:"num"`
	Name        string `db:"name"`
	Description string `db:"description"`
}

const groupColumns = "id, num, name, description"

var groupSort = map[string]string{"id": "id", "name": "name"}

// SearchGroups returns a page of the caller's tenant's groups and how
// many match in all. It needs iam.groups.list.
func (q *Queries) SearchGroups(ctx context.Context, caller auth.Principal, s Search) (items []Group, total int, err error) {
	if err := q.mayIn(caller, authz.GroupsList, "groups"); err != nil {
		return nil, 0, err
	}
	order, limit, offset, err := s.resolve(groupSort)
	if err != nil {
		return nil, 0, err
	}
	where, args := textWhere("name", caller.Tenant, s.Text)
	if total, err = q.count(ctx, "groups", where, args, s.Text == ""); err != nil {
		return nil, 0, err
	}
	items = []Group{}
	err = q.db.SelectContext(ctx, &items, pageSQL("groups", groupColumns, where, order, limit, offset, len(args)), pageArgs(args, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("search groups: %w", err)
	}
	return items, total, nil
}

// GroupsByIDs returns the groups of the caller's tenant with the given
// ids, ordered by name; unknown ids are left out. It needs iam.groups.list.
func (q *Queries) GroupsByIDs(ctx context.Context, caller auth.Principal, ids []string) ([]Group, error) {
	return q.matchGroups(ctx, caller, "", ids, false)
}

// AutocompleteGroups returns up to AutocompleteLimit groups whose name
// holds text, and every group whose id is in ids, ordered by name. It
// needs iam.groups.list.
func (q *Queries) AutocompleteGroups(ctx context.Context, caller auth.Principal, text string, ids []string) ([]Group, error) {
	return q.matchGroups(ctx, caller, text, ids, true)
}

func (q *Queries) matchGroups(ctx context.Context, caller auth.Principal, text string, ids []string, byText bool) ([]Group, error) {
	if err := q.mayIn(caller, authz.GroupsList, "groups"); err != nil {
		return nil, err
	}
	query, args, err := matchSQL("groups", groupColumns, caller.Tenant, text, ids, byText)
	if err != nil {
		return nil, err
	}
	out := []Group{}
	if err := q.db.SelectContext(ctx, &out, query, args...); err != nil {
		return nil, fmt.Errorf("match groups: %w", err)
	}
	return out, nil
}

// Group returns one group of the caller's tenant. It needs iam.groups.get,
// or ownership of the group.
func (q *Queries) Group(ctx context.Context, caller auth.Principal, id string) (Group, error) {
	// A group's owners manage its members, so they may read it.
	if q.authz == nil || !q.authz.IsOwner(id, caller.ID) {
		if err := q.mayIn(caller, authz.GroupsGet, "groups"); err != nil {
			return Group{}, err
		}
	}
	var g Group
	err := q.db.GetContext(ctx, &g, `SELECT `+groupColumns+` FROM groups WHERE tenant = $1 AND id = $2`, caller.Tenant, id)
	if errors.Is(err, sql.ErrNoRows) {
		return g, fmt.Errorf("%w: group %q", ErrNotFound, id)
	}
	if err != nil {
		return g, fmt.Errorf("get group: %w", err)
	}
	return g, nil
}

// Membership is one group a principal belongs to.
type Membership struct {
	GroupID    string `db:"group_id"`
	GroupName  string `db:"name"`
	Membership string `db:"membership"` // events.MembershipMember or MembershipOwner
}

// Member is a principal (user or service account) of a group, with every
// group of the tenant it belongs to.
type Member struct {
	ID          string `db:"id"`
	Kind        string `db:"kind"` // events.SubjectUser or SubjectServiceAccount
	Username    string `db:"username"`
	DisplayName string `db:"display_name"`
	Groups      []Membership
}

// A member's username and display name: a user's own, a service
// account's display name for both.
const memberSelect = `SELECT gm.member_id AS id, gm.member_kind AS kind,
	COALESCE(u.username, sa.display_name, '') AS username,
	COALESCE(` + userShownName + `, sa.display_name, '') AS display_name
	FROM group_members gm
	LEFT JOIN users u ON gm.member_kind = 'user' AND u.id = gm.member_id
	LEFT JOIN service_accounts sa ON gm.member_kind = 'service_account' AND sa.tenant = gm.tenant AND sa.id = gm.member_id`

var memberSort = map[string]string{"id": "id", "username": "username", "displayName": "display_name"}

// GroupMembers returns a page of a group's members and how many match in
// all; Text matches usernames and display names. It needs iam.groups.get;
// an unknown group is ErrNotFound.
func (q *Queries) GroupMembers(ctx context.Context, caller auth.Principal, groupID string, s Search) (items []Member, total int, err error) {
	if _, err := q.Group(ctx, caller, groupID); err != nil {
		return nil, 0, err
	}
	order, limit, offset, err := s.resolve(memberSort)
	if err != nil {
		return nil, 0, err
	}
	inner := memberSelect + ` WHERE gm.tenant = $1 AND gm.group_id = $2`
	args := []any{caller.Tenant, groupID, s.Text, likePattern(s.Text)}
	filter := ` WHERE ($3 = '' OR m.username ILIKE $4 OR m.display_name ILIKE $4)`
	if err := q.db.GetContext(ctx, &total, `SELECT count(*) FROM (`+inner+`) m`+filter, args...); err != nil {
		return nil, 0, fmt.Errorf("count group members: %w", err)
	}
	items = []Member{}
	err = q.db.SelectContext(ctx, &items, `SELECT * FROM (`+inner+`) m`+filter+` ORDER BY `+order+
		pageClause(limit, offset, len(args)), pageArgs(args, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list group members: %w", err)
	}
	return items, total, q.withGroups(ctx, caller.Tenant, items)
}

// MemberGroups returns the groups of the caller's tenant a user or
// service account belongs to, ordered by name. It needs iam.groups.list,
// or a right to change group members: setting a principal's groups
// starts from the ones it has.
func (q *Queries) MemberGroups(ctx context.Context, caller auth.Principal, memberID string) ([]Membership, error) {
	if !q.mayChangeMembers(caller) {
		if err := q.mayIn(caller, authz.GroupsList, "groups"); err != nil {
			return nil, err
		}
	}
	ms := []Member{{ID: memberID}}
	err := q.withGroups(ctx, caller.Tenant, ms)
	return ms[0].Groups, err
}

// withGroups fills in the groups of each member, in one query.
func (q *Queries) withGroups(ctx context.Context, tenant string, ms []Member) error {
	if len(ms) == 0 {
		return nil
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	var rows []struct {
		MemberID string `db:"member_id"`
		Membership
	}
	err := q.db.SelectContext(ctx, &rows, `SELECT gm.member_id, gm.group_id, g.name, gm.membership
		FROM group_members gm JOIN groups g ON g.tenant = gm.tenant AND g.id = gm.group_id
		WHERE gm.tenant = $1 AND gm.member_id = ANY($2) ORDER BY g.name, g.id`, tenant, pq.StringArray(ids))
	if err != nil {
		return fmt.Errorf("member groups: %w", err)
	}
	byID := map[string][]Membership{}
	for _, r := range rows {
		byID[r.MemberID] = append(byID[r.MemberID], r.Membership)
	}
	for i := range ms {
		ms[i].Groups = byID[ms[i].ID]
		if ms[i].Groups == nil {
			ms[i].Groups = []Membership{}
		}
	}
	return nil
}

// Binding is an explicit binding with the names of its role and subject.
type Binding struct {
	ID          string `db:"id"`
	Role        string `db:"role"`
	RoleName    string `db:"role_name"`
	SubjectKind string `db:"subject_kind"`
	SubjectID   string `db:"subject_id"`
	// SubjectName is a group's name, a user's username or a service
	// account's display name; SubjectDisplayName a user's display name
	// (its username when it has none) or a service account's.
	SubjectName        string `db:"subject_name"`
	SubjectDisplayName string `db:"subject_display_name"`
	ScopeLevel         string `db:"scope_level"`
	ScopeTarget        string `db:"scope_target"`
}

// BindingFilter narrows a binding search; empty fields match everything.
type BindingFilter struct {
	// SubjectKinds are the subject kinds to keep (events.SubjectUser, ...).
	SubjectKinds []string
	SubjectID    string
	// Namespace keeps the bindings at exactly this namespace.
	Namespace string
}

const bindingSelect = `SELECT b.id, b.role, COALESCE(r.name, b.role) AS role_name, b.subject_kind, b.subject_id,
	COALESCE(g.name, u.username, sa.display_name, '') AS subject_name,
	COALESCE(g.name, ` + userShownName + `, sa.display_name, '') AS subject_display_name,
	b.scope_level, b.scope_target
	FROM bindings b
	LEFT JOIN roles r ON r.tenant = b.tenant AND r.id = b.role
	LEFT JOIN groups g ON b.subject_kind = 'group' AND g.tenant = b.tenant AND g.id = b.subject_id
	LEFT JOIN users u ON b.subject_kind = 'user' AND u.id = b.subject_id
	LEFT JOIN service_accounts sa ON b.subject_kind = 'service_account' AND sa.tenant = b.tenant AND sa.id = b.subject_id`

var bindingSort = map[string]string{"id": "b.id", "role": "role_name", "namespace": "b.scope_target"}

// SearchBindings returns a page of the caller's tenant's explicit bindings
// (not the role lists of service accounts) and how many match in all;
// Text matches role and subject names. It needs iam.bindings.list.
func (q *Queries) SearchBindings(ctx context.Context, caller auth.Principal, f BindingFilter, s Search) (items []Binding, total int, err error) {
	if err := q.mayIn(caller, authz.BindingsList, "bindings"); err != nil {
		return nil, 0, err
	}
	order, limit, offset, err := s.resolve(bindingSort)
	if err != nil {
		return nil, 0, err
	}
	kinds := f.SubjectKinds
	if kinds == nil {
		kinds = []string{}
	}
	where := ` WHERE b.tenant = $1 AND (cardinality($2::text[]) = 0 OR b.subject_kind = ANY($2)) AND ($3 = '' OR b.subject_id = $3)
		AND ($4 = '' OR (b.scope_level = 'namespace' AND b.scope_target = $4))
		AND ($5 = '' OR COALESCE(r.name, b.role) ILIKE $6 OR COALESCE(g.name, u.username, sa.display_name, '') ILIKE $6)`
	args := []any{caller.Tenant, pq.StringArray(kinds), f.SubjectID, f.Namespace, s.Text, likePattern(s.Text)}
	if len(kinds) == 0 && f.SubjectID == "" && f.Namespace == "" && s.Text == "" {
		total, err = q.count(ctx, "bindings", "tenant = $1", args[:1], true)
	} else {
		err = q.db.GetContext(ctx, &total, `SELECT count(*) FROM (`+bindingSelect+where+`) c`, args...)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("count bindings: %w", err)
	}
	items = []Binding{}
	err = q.db.SelectContext(ctx, &items, bindingSelect+where+` ORDER BY `+order+
		pageClause(limit, offset, len(args)), pageArgs(args, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("search bindings: %w", err)
	}
	return items, total, nil
}

// Binding returns one explicit binding of the caller's tenant. It needs
// iam.bindings.list.
func (q *Queries) Binding(ctx context.Context, caller auth.Principal, id string) (Binding, error) {
	bs, err := q.BindingsByIDs(ctx, caller, []string{id})
	if err != nil {
		return Binding{}, err
	}
	return bs[0], nil
}

// BindingsByIDs returns the explicit bindings of the caller's tenant with
// the given ids, in the order of ids; an unknown id is ErrNotFound. It
// needs iam.bindings.list.
func (q *Queries) BindingsByIDs(ctx context.Context, caller auth.Principal, ids []string) ([]Binding, error) {
	if err := q.mayIn(caller, authz.BindingsList, "bindings"); err != nil {
		return nil, err
	}
	return q.bindingsByIDs(ctx, caller.Tenant, ids)
}

func (q *Queries) bindingsByIDs(ctx context.Context, tenant string, ids []string) ([]Binding, error) {
	if err := checkIDs(ids); err != nil {
		return nil, err
	}
	var rows []Binding
	if err := q.db.SelectContext(ctx, &rows, bindingSelect+` WHERE b.tenant = $1 AND b.id = ANY($2)`, tenant, pq.StringArray(ids)); err != nil {
		return nil, fmt.Errorf("get bindings: %w", err)
	}
	byID := make(map[string]Binding, len(rows))
	for _, b := range rows {
		byID[b.ID] = b
	}
	out := make([]Binding, len(ids))
	for i, id := range ids {
		b, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("%w: binding %q", ErrNotFound, id)
		}
		out[i] = b
	}
	return out, nil
}

var serviceAccountSort = map[string]string{"id": "id", "name": "display_name"}

// SearchServiceAccounts returns a page of the caller's tenant's service
// accounts and how many match in all; Text matches display names. Only
// tenant administrators may list (ErrForbidden otherwise).
func (q *Queries) SearchServiceAccounts(ctx context.Context, caller auth.Principal, s Search) (items []ServiceAccount, total int, err error) {
	if !q.may(caller, authz.ServiceAccountsList) {
		return nil, 0, fmt.Errorf("%w: only tenant administrators can list service accounts", ErrForbidden)
	}
	order, limit, offset, err := s.resolve(serviceAccountSort)
	if err != nil {
		return nil, 0, err
	}
	where := ` WHERE tenant = $1 AND ($2 = '' OR display_name ILIKE $3)`
	args := []any{caller.Tenant, s.Text, likePattern(s.Text)}
	if err := q.db.GetContext(ctx, &total, `SELECT count(*) FROM service_accounts`+where, args...); err != nil {
		return nil, 0, fmt.Errorf("count service accounts: %w", err)
	}
	items = []ServiceAccount{}
	err = q.db.SelectContext(ctx, &items, `SELECT `+saColumns+` FROM service_accounts`+where+` ORDER BY `+order+
		pageClause(limit, offset, len(args)), pageArgs(args, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("search service accounts: %w", err)
	}
	return items, total, nil
}

// ServiceAccountGroups returns the groups each of the service accounts
// ids of the caller's tenant belongs to, ordered by name, in one query.
// Like ServiceAccount, it answers ErrNotFound to callers who may neither
// read nor update service accounts (an update replaces the groups, so it
// starts from the ones the account has).
func (q *Queries) ServiceAccountGroups(ctx context.Context, caller auth.Principal, ids ...string) (map[string][]Membership, error) {
	if !q.may(caller, authz.ServiceAccountsGet) && !q.may(caller, authz.ServiceAccountsUpdate) {
		return nil, fmt.Errorf("%w: service account %q", ErrNotFound, strings.Join(ids, ", "))
	}
	ms := make([]Member, len(ids))
	for i, id := range ids {
		ms[i].ID = id
	}
	if err := q.withGroups(ctx, caller.Tenant, ms); err != nil {
		return nil, err
	}
	out := make(map[string][]Membership, len(ms))
	for _, m := range ms {
		out[m.ID] = m.Groups
	}
	return out, nil
}

// PrincipalKind tells whether id is a service account of the caller's
// tenant (events.SubjectServiceAccount) or a user with access to it
// (events.SubjectUser); anything else is ErrNotFound. It reveals no more
// than the commands that take such an id do.
func (q *Queries) PrincipalKind(ctx context.Context, caller auth.Principal, id string) (string, error) {
	var kind string
	err := q.db.GetContext(ctx, &kind, `SELECT 'service_account' FROM service_accounts WHERE tenant = $1 AND id = $2
		UNION ALL SELECT 'user' FROM user_tenants WHERE tenant = $1 AND user_id = $2 LIMIT 1`, caller.Tenant, id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%w: no user or service account %q in tenant %q", ErrNotFound, id, caller.Tenant)
	}
	if err != nil {
		return "", fmt.Errorf("principal kind: %w", err)
	}
	return kind, nil
}

// validSearchText checks a search's text: bounded, UTF-8, no control
// characters (Postgres refuses NUL and invalid UTF-8 in text).
func validSearchText(text string) error {
	if len(text) > MaxSearchText {
		return invalid("q", "q must be at most %d bytes", MaxSearchText)
	}
	if !utf8.ValidString(text) || strings.ContainsFunc(text, unicode.IsControl) {
		return invalid("q", "q must be UTF-8 text without control characters")
	}
	return nil
}

// AllRoles returns every role of the caller's tenant, ordered by name,
// unpaged: for operator tools (a tenant has few roles). It needs
// iam.roles.list.
func (q *Queries) AllRoles(ctx context.Context, caller auth.Principal) ([]Role, error) {
	if err := q.mayIn(caller, authz.RolesList, "roles"); err != nil {
		return nil, err
	}
	var rows []roleRow
	if err := q.db.SelectContext(ctx, &rows, `SELECT `+roleColumns+` FROM roles WHERE tenant = $1 ORDER BY name, id`, caller.Tenant); err != nil {
		return nil, fmt.Errorf("list roles: %w", err)
	}
	return roles(rows)
}

// AllBindings returns every binding of the caller's tenant, or of the
// principal or group subject when set, with the service accounts' own
// role lists as bindings with id service_account/<account>/<role>;
// ordered by subject, role and id, unpaged: for operator tools. Only
// the id, role, subject and scope fields are set. It needs
// iam.bindings.list.
func (q *Queries) AllBindings(ctx context.Context, caller auth.Principal, subject string) ([]Binding, error) {
	if err := q.mayIn(caller, authz.BindingsList, "bindings"); err != nil {
		return nil, err
	}
	out := []Binding{}
	err := q.db.SelectContext(ctx, &out, `
		SELECT id, role, subject_kind, subject_id, scope_level, scope_target FROM bindings
		 WHERE tenant = $1 AND ($2 = '' OR subject_id = $2)
		UNION ALL
		SELECT 'service_account/' || sa.id || '/' || r, r, 'service_account', sa.id, sa.scope_level, sa.scope_target
		  FROM service_accounts sa, unnest(sa.roles) AS r
		 WHERE sa.tenant = $1 AND ($2 = '' OR sa.id = $2)
		ORDER BY 4, 2, 1`, caller.Tenant, subject)
	if err != nil {
		return nil, fmt.Errorf("list bindings: %w", err)
	}
	return out, nil
}
