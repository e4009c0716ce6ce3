package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/lib/pq"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

// TenantMember is a principal that may act in a tenant: a user granted
// access to it, or one of its service accounts, with the tenant's groups
// it belongs to.
type TenantMember struct {
	ID string `db:"id"`
	// Kind is events.SubjectUser or events.SubjectServiceAccount.
	Kind string `db:"kind"`
	// Username is a user's username, a service account's display name.
	Username string `db:"username"`
	// DisplayName is a user's shown name (User.ShownName: its display
	// name, else its first and last names, else its username), a service
	// account's display name.
	DisplayName string `db:"display_name"`
	// Description is a service account's; users have none.
	Description string `db:"description"`
	Superadmin  bool   `db:"superadmin"`
	// HasPassword says whether a user has a password; service accounts
	// have none.
	HasPassword bool `db:"has_password"`
	Groups      []Membership
}

// The members of tenant $1: users with access, then service accounts.
const tenantMembersSelect = `SELECT u.id, 'user' AS kind, u.username, ` + userShownName + ` AS display_name,
		'' AS description, u.superadmin, u.has_password
	FROM user_tenants ut JOIN users u ON u.id = ut.user_id WHERE ut.tenant = $1
	UNION ALL
	SELECT sa.id, 'service_account', sa.display_name, sa.display_name, sa.description, false, false
	FROM service_accounts sa WHERE sa.tenant = $1`

// The users with access to tenant $1.
const tenantUsersSelect = `SELECT u.id, 'user' AS kind, u.username, ` + userShownName + ` AS display_name,
		'' AS description, u.superadmin, u.has_password
	FROM user_tenants ut JOIN users u ON u.id = ut.user_id WHERE ut.tenant = $1`

var tenantMemberSort = map[string]string{"id": "id", "username": "username", "displayName": "display_name"}

// SearchTenantAccess returns a page of the principals that may act in the
// caller's tenant and how many match in all; Text matches usernames and
// display names. kind narrows to users (events.SubjectUser) or service
// accounts (events.SubjectServiceAccount); empty means both, but service
// accounts only for a caller who may list them. It needs
// iam.tenantAccess.list, and iam.serviceAccounts.list to ask for service
// accounts (ErrForbidden otherwise).
func (q *Queries) SearchTenantAccess(ctx context.Context, caller auth.Principal, kind string, s Search) (items []TenantMember, total int, err error) {
	if err := q.mayIn(caller, authz.TenantAccessList, "tenant access"); err != nil {
		return nil, 0, err
	}
	switch kind {
	case "", events.SubjectUser:
	case events.SubjectServiceAccount:
		if !q.may(caller, authz.ServiceAccountsList) {
			return nil, 0, fmt.Errorf("%w: only tenant administrators can list service accounts", ErrForbidden)
		}
	default:
		return nil, 0, invalid("type", "unknown principal kind %q", kind)
	}
	order, limit, offset, err := s.resolve(tenantMemberSort)
	if err != nil {
		return nil, 0, err
	}
	inner := tenantMembersSelect
	if kind == events.SubjectUser || (kind == "" && !q.may(caller, authz.ServiceAccountsList)) {
		inner = tenantUsersSelect
	}
	filter := ` WHERE ($2 = '' OR m.kind = $2) AND ($3 = '' OR m.username ILIKE $4 OR m.display_name ILIKE $4)`
	args := []any{caller.Tenant, kind, s.Text, likePattern(s.Text)}
	if err := q.db.GetContext(ctx, &total, `SELECT count(*) FROM (`+inner+`) m`+filter, args...); err != nil {
		return nil, 0, fmt.Errorf("count tenant access: %w", err)
	}
	items = []TenantMember{}
	err = q.db.SelectContext(ctx, &items, `SELECT * FROM (`+inner+`) m`+filter+` ORDER BY `+order+
		pageClause(limit, offset, len(args)), pageArgs(args, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("search tenant access: %w", err)
	}
	return items, total, q.withTenantGroups(ctx, caller.Tenant, items)
}

// AutocompleteTenantAccess returns up to AutocompleteLimit users with
// access to the caller's tenant whose username or display name holds text
// (case-insensitively), and every such user whose id is in ids, ordered by
// username. It needs iam.tenantAccess.list.
func (q *Queries) AutocompleteTenantAccess(ctx context.Context, caller auth.Principal, text string, ids []string) ([]TenantMember, error) {
	if err := q.mayIn(caller, authz.TenantAccessList, "tenant access"); err != nil {
		return nil, err
	}
	if err := checkIDs(ids); err != nil {
		return nil, err
	}
	if err := validSearchText(text); err != nil {
		return nil, err
	}
	if ids == nil {
		ids = []string{}
	}
	out := []TenantMember{}
	err := q.db.SelectContext(ctx, &out, `SELECT * FROM (
		(SELECT * FROM (`+tenantUsersSelect+`) a WHERE a.id = ANY($2))
		UNION
		(SELECT * FROM (`+tenantUsersSelect+`) b WHERE b.username ILIKE $3 OR b.display_name ILIKE $3 ORDER BY username, id LIMIT `+strconv.Itoa(AutocompleteLimit)+`)
	) m ORDER BY username, id`, caller.Tenant, pq.StringArray(ids), likePattern(text))
	if err != nil {
		return nil, fmt.Errorf("autocomplete tenant access: %w", err)
	}
	return out, q.withTenantGroups(ctx, caller.Tenant, out)
}

// RoleAssignment is a role a user holds in a tenant, and where from.
type RoleAssignment struct {
	Role     string `db:"role"`
	RoleName string `db:"role_name"`
	// ScopeLevel and ScopeTarget say where it applies (a namespace, or
	// the whole tenant).
	ScopeLevel  string `db:"scope_level"`
	ScopeTarget string `db:"scope_target"`
	// Origin is "binding" for the user's own binding (SourceID is the
	// binding's id, empty for a grant recorded on the user), "group" for
	// a group's binding (SourceID is the group's id).
	Origin   string       `db:"origin"`
	SourceID string       `db:"source_id"`
	Rules    []authz.Rule `db:"-"`
}

// TenantUserAccess is a user's access to a tenant: who, and with which
// roles.
type TenantUserAccess struct {
	User  TenantMember
	Roles []RoleAssignment
}

// TenantAccess returns the access of user userID to the caller's tenant.
// It needs iam.tenantAccess.get (ErrForbidden otherwise); a user without
// access is ErrNotFound.
func (q *Queries) TenantAccess(ctx context.Context, caller auth.Principal, userID string) (TenantUserAccess, error) {
	var out TenantUserAccess
	if err := q.mayIn(caller, authz.TenantAccessGet, "tenant access"); err != nil {
		return out, err
	}
	err := q.db.GetContext(ctx, &out.User, `SELECT * FROM (`+tenantUsersSelect+`) m WHERE m.id = $2`, caller.Tenant, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return out, fmt.Errorf("%w: user %q with access to tenant %q", ErrNotFound, userID, caller.Tenant)
	}
	if err != nil {
		return out, fmt.Errorf("get tenant access: %w", err)
	}
	ms := []TenantMember{out.User}
	if err := q.withTenantGroups(ctx, caller.Tenant, ms); err != nil {
		return out, err
	}
	out.User = ms[0]
	var rows []struct {
		RoleAssignment
		RawRules []byte `db:"rules"`
	}
	err = q.db.SelectContext(ctx, &rows, `SELECT b.role, COALESCE(r.name, b.role) AS role_name, b.scope_level, b.scope_target,
			'binding' AS origin, b.id AS source_id, COALESCE(r.rules, '[]') AS rules
		FROM bindings b LEFT JOIN roles r ON r.tenant = b.tenant AND r.id = b.role
		WHERE b.tenant = $1 AND b.subject_kind = 'user' AND b.subject_id = $2
		UNION ALL
		SELECT ur.role, COALESCE(r.name, ur.role), ur.scope_level, ur.scope_target, 'binding', '', COALESCE(r.rules, '[]')
		FROM user_roles ur LEFT JOIN roles r ON r.tenant = ur.tenant AND r.id = ur.role
		WHERE ur.tenant = $1 AND ur.user_id = $2
		UNION ALL
		SELECT b.role, COALESCE(r.name, b.role), b.scope_level, b.scope_target, 'group', gm.group_id, COALESCE(r.rules, '[]')
		FROM group_members gm
		JOIN bindings b ON b.tenant = gm.tenant AND b.subject_kind = 'group' AND b.subject_id = gm.group_id
		LEFT JOIN roles r ON r.tenant = b.tenant AND r.id = b.role
		WHERE gm.tenant = $1 AND gm.member_id = $2
		ORDER BY role_name, source_id`, caller.Tenant, userID)
	if err != nil {
		return out, fmt.Errorf("tenant access roles: %w", err)
	}
	out.Roles = make([]RoleAssignment, len(rows))
	for i, r := range rows {
		role, err := roleRow{ID: r.Role, Rules: r.RawRules}.role()
		if err != nil {
			return out, err
		}
		out.Roles[i] = r.RoleAssignment
		out.Roles[i].Rules = role.Rules
	}
	return out, nil
}

// withTenantGroups fills in the groups of each member.
func (q *Queries) withTenantGroups(ctx context.Context, tenant string, ms []TenantMember) error {
	gs := make([]Member, len(ms))
	for i, m := range ms {
		gs[i].ID = m.ID
	}
	if err := q.withGroups(ctx, tenant, gs); err != nil {
		return err
	}
	for i := range ms {
		ms[i].Groups = gs[i].Groups
	}
	return nil
}

// ServiceAccountTokens lists the unexpired API tokens of a service account
// of the caller's tenant, named by id or chosen name, oldest first, with
// when each was last used (as flushed so far). Callers who may not list
// credentials, and unknown accounts, get ErrNotFound.
func (q *Queries) ServiceAccountTokens(ctx context.Context, caller auth.Principal, ref string) ([]APIToken, error) {
	if !q.may(caller, authz.CredentialsList) {
		return nil, fmt.Errorf("%w: service account %q", ErrNotFound, ref)
	}
	sa, err := q.ServiceAccount(ctx, caller, ref)
	if err != nil {
		return nil, err
	}
	out := []APIToken{}
	err = q.db.SelectContext(ctx, &out, `SELECT t.id, t.name, t.description, t.created_at, t.expires_at, u.last_used_at
		FROM service_account_api_tokens t LEFT JOIN api_token_use u ON u.token_id = t.id
		WHERE t.tenant = $1 AND t.service_account_id = $2 AND (t.expires_at IS NULL OR t.expires_at > $3) ORDER BY t.id`,
		caller.Tenant, sa.ID, q.now())
	if err != nil {
		return nil, fmt.Errorf("list service account tokens: %w", err)
	}
	return out, nil
}
