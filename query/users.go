package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
)

// TenantRef names a tenant.
type TenantRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// GroupRef names a group and its tenant.
type GroupRef struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
}

// User is a user as the read tables hold it: never a password or its
// verifier, only whether one is set.
type User struct {
	ID          string    `db:"id"`
	Username    string    `db:"username"`
	Email       string    `db:"email"`
	FirstName   string    `db:"first_name"`
	LastName    string    `db:"last_name"`
	DisplayName string    `db:"display_name"`
	Status      string    `db:"status"`
	Superadmin  bool      `db:"superadmin"`
	Restricted  bool      `db:"restricted"`
	HasPassword bool      `db:"has_password"`
	CreatedAt   time.Time `db:"created_at"`
	// Tenants the user has access to (live tenants only), by id.
	Tenants []TenantRef `db:"-"`
	// Groups the user is a member of, in every tenant.
	Groups []GroupRef `db:"-"`
}

// userShownName is the name a user is shown by, in SQL over users u: its
// display name, else its first and last names, else its username (NULL
// for no user). User.ShownName is the same rule.
const userShownName = `COALESCE(NULLIF(u.display_name, ''), NULLIF(btrim(u.first_name || ' ' || u.last_name), ''), u.username)`

// ShownName is the name the user is shown by: its display name, else its
// first and last names, else its username.
func (u User) ShownName() string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	if n := strings.TrimSpace(u.FirstName + " " + u.LastName); n != "" {
		return n
	}
	return u.Username
}

const userColumns = "u.id, u.username, u.email, u.first_name, u.last_name, u.display_name, u.status, u.superadmin, u.restricted, u.has_password, u.created_at"

var userSort = map[string]string{"id": "u.id", "username": "u.username", "email": "u.email", "firstName": "u.first_name",
	"lastName": "u.last_name", "displayName": "u.display_name", "superAdmin": "u.superadmin"}

// SearchUsers returns a page of the instance's users and how many match
// in all; Text matches the username, email or names. Superadmins only
// (iam.users.list at instance level; ErrForbidden otherwise).
func (q *Queries) SearchUsers(ctx context.Context, caller auth.Principal, s Search) (items []User, total int, err error) {
	if !caller.Can(q.authz, authz.UsersList, "", authz.Instance).Allowed {
		return nil, 0, fmt.Errorf("%w: only a superadmin may list users", ErrForbidden)
	}
	order, limit, offset, err := s.resolve(userSort)
	if err != nil {
		return nil, 0, err
	}
	where := `($1 = '' OR u.username ILIKE $2 OR u.email ILIKE $2 OR u.first_name ILIKE $2 OR u.last_name ILIKE $2 OR u.display_name ILIKE $2)`
	args := []any{s.Text, likePattern(s.Text)}
	if err := q.db.GetContext(ctx, &total, `SELECT count(*) FROM users u WHERE `+where, args...); err != nil {
		return nil, 0, fmt.Errorf("count users: %w", err)
	}
	items = []User{}
	err = q.db.SelectContext(ctx, &items, `SELECT `+userColumns+` FROM users u WHERE `+where+` ORDER BY `+order+
		pageClause(limit, offset, len(args)), pageArgs(args, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("search users: %w", err)
	}
	return items, total, q.withTenantsAndGroups(ctx, items)
}

// User returns one user. Superadmins only (iam.users.get at instance
// level), even for themselves: a user reads itself with Me. Others get
// ErrForbidden; an unknown id is ErrNotFound.
func (q *Queries) User(ctx context.Context, caller auth.Principal, id string) (User, error) {
	if !caller.Can(q.authz, authz.UsersGet, "", authz.Instance).Allowed {
		return User{}, fmt.Errorf("%w: only a superadmin may manage users through /users; a user reads itself at /me", ErrForbidden)
	}
	return q.user(ctx, id)
}

func (q *Queries) user(ctx context.Context, id string) (User, error) {
	var u User
	err := q.db.GetContext(ctx, &u, `SELECT `+userColumns+` FROM users u WHERE u.id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("%w: user %s", ErrNotFound, id)
	}
	if err != nil {
		return User{}, fmt.Errorf("read user: %w", err)
	}
	list := []User{u}
	if err := q.withTenantsAndGroups(ctx, list); err != nil {
		return User{}, err
	}
	return list[0], nil
}

// withTenantsAndGroups fills the users' tenants and groups in two queries.
func (q *Queries) withTenantsAndGroups(ctx context.Context, us []User) error {
	if len(us) == 0 {
		return nil
	}
	ids := make([]string, len(us))
	at := make(map[string]int, len(us))
	for i, u := range us {
		ids[i], at[u.ID] = u.ID, i
		us[i].Tenants, us[i].Groups = []TenantRef{}, []GroupRef{}
	}
	var tenants []struct {
		UserID string `db:"user_id"`
		ID     string `db:"id"`
		Name   string `db:"name"`
	}
	err := q.db.SelectContext(ctx, &tenants, `SELECT ut.user_id, t.id, t.name FROM user_tenants ut JOIN tenants t ON t.id = ut.tenant
		WHERE ut.user_id = ANY($1) ORDER BY ut.user_id, t.id`, pq.Array(ids))
	if err != nil {
		return fmt.Errorf("read users' tenants: %w", err)
	}
	for _, t := range tenants {
		us[at[t.UserID]].Tenants = append(us[at[t.UserID]].Tenants, TenantRef{ID: t.ID, Name: t.Name})
	}
	var groups []struct {
		UserID string `db:"member_id"`
		ID     string `db:"group_id"`
		Tenant string `db:"tenant"`
	}
	err = q.db.SelectContext(ctx, &groups, `SELECT gm.member_id, gm.group_id, gm.tenant FROM group_members gm JOIN tenants t ON t.id = gm.tenant
		WHERE gm.member_kind = 'user' AND gm.member_id = ANY($1) ORDER BY gm.member_id, gm.tenant, gm.group_id`, pq.Array(ids))
	if err != nil {
		return fmt.Errorf("read users' groups: %w", err)
	}
	for _, g := range groups {
		us[at[g.UserID]].Groups = append(us[at[g.UserID]].Groups, GroupRef{ID: g.ID, Tenant: g.Tenant})
	}
	return nil
}

// Tenant is a live tenant as the read tables hold it.
type Tenant struct {
	ID        string    `db:"id"`
	Name      string    `db:"name"`
	CreatedAt time.Time `db:"created_at"`
}

var tenantSort = map[string]string{"id": "id", "name": "name"}

// SearchTenants returns a page of the live tenants and how many match in
// all; Text matches the id or name. Superadmins only (iam.tenants.list).
func (q *Queries) SearchTenants(ctx context.Context, caller auth.Principal, s Search) (items []Tenant, total int, err error) {
	if !caller.Can(q.authz, authz.TenantsList, "", authz.Instance).Allowed {
		return nil, 0, fmt.Errorf("%w: only a superadmin may list tenants", ErrForbidden)
	}
	order, limit, offset, err := s.resolve(tenantSort)
	if err != nil {
		return nil, 0, err
	}
	where := `($1 = '' OR id ILIKE $2 OR name ILIKE $2)`
	args := []any{s.Text, likePattern(s.Text)}
	if err := q.db.GetContext(ctx, &total, `SELECT count(*) FROM tenants WHERE `+where, args...); err != nil {
		return nil, 0, fmt.Errorf("count tenants: %w", err)
	}
	items = []Tenant{}
	err = q.db.SelectContext(ctx, &items, `SELECT id, name, created_at FROM tenants WHERE `+where+` ORDER BY `+order+
		pageClause(limit, offset, len(args)), pageArgs(args, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("search tenants: %w", err)
	}
	return items, total, nil
}

// Tenant returns a live tenant. Superadmins only (iam.tenants.get); an
// unknown or deleted tenant is ErrNotFound.
func (q *Queries) Tenant(ctx context.Context, caller auth.Principal, id string) (Tenant, error) {
	if !caller.Can(q.authz, authz.TenantsGet, "", authz.Instance).Allowed {
		return Tenant{}, fmt.Errorf("%w: only a superadmin may read tenants", ErrForbidden)
	}
	var t Tenant
	err := q.db.GetContext(ctx, &t, `SELECT id, name, created_at FROM tenants WHERE id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Tenant{}, fmt.Errorf("%w: tenant %s", ErrNotFound, id)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("read tenant: %w", err)
	}
	return t, nil
}

// Me returns the calling user itself. Only users have one: a service
// account (or the operator) gets ErrForbidden.
func (q *Queries) Me(ctx context.Context, caller auth.Principal) (User, error) {
	if caller.Kind != auth.KindUser {
		return User{}, fmt.Errorf("%w: only users have a profile; a service account is managed through its tenant's service-accounts", ErrForbidden)
	}
	return q.user(ctx, caller.ID)
}
