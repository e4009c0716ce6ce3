package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/lib/pq"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
)

// The reads in this file answer writes: a dialect calls them after a
// command has authorized and carried out a change for caller, to render
// what the change wrote. They check no read permission, because the
// command already proved the caller may write what they return, and
// they return only what the written resource's answer holds.

// WrittenBindings returns the bindings of the caller's tenant with ids,
// in the order of ids, with the names of their roles and subjects; an
// unknown id is ErrNotFound. Call it only with the ids a binding command
// just created for caller: it checks no permission.
func (q *Queries) WrittenBindings(ctx context.Context, caller auth.Principal, ids []string) ([]Binding, error) {
	return q.bindingsByIDs(ctx, caller.Tenant, ids)
}

// WrittenMember returns the user (with access to the caller's tenant) or
// service account of the tenant with id, with every group of the tenant
// it belongs to now, ordered by name; anything else is ErrNotFound. Call
// it only to answer a membership change a command just made for caller
// to that principal: it checks no permission.
func (q *Queries) WrittenMember(ctx context.Context, caller auth.Principal, id string) (Member, error) {
	var m Member
	err := q.db.GetContext(ctx, &m, `SELECT u.id, 'user' AS kind, u.username, `+userShownName+` AS display_name
		FROM users u JOIN user_tenants ut ON ut.user_id = u.id AND ut.tenant = $1 WHERE u.id = $2
		UNION ALL
		SELECT sa.id, 'service_account', sa.display_name, sa.display_name FROM service_accounts sa WHERE sa.tenant = $1 AND sa.id = $2
		LIMIT 1`, caller.Tenant, id)
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("%w: no user or service account %q in tenant %q", ErrNotFound, id, caller.Tenant)
	}
	if err != nil {
		return m, fmt.Errorf("written member: %w", err)
	}
	ms := []Member{m}
	err = q.withGroups(ctx, caller.Tenant, ms)
	return ms[0], err
}

// mayChangeMembers reports whether caller holds a right to change group
// members in its tenant (iam.groupMembers.create, .update or .delete).
func (q *Queries) mayChangeMembers(caller auth.Principal) bool {
	return q.may(caller, authz.GroupMembersCreate) || q.may(caller, authz.GroupMembersUpdate) || q.may(caller, authz.GroupMembersDelete)
}

// GroupsExist checks that every group with an id in ids is in the
// caller's tenant, so that a change of a principal's groups refuses an
// unknown one before it writes anything: the first unknown is
// ErrNotFound. It needs iam.groups.get or a right to change group
// members, which reveal as much (ErrForbidden otherwise).
func (q *Queries) GroupsExist(ctx context.Context, caller auth.Principal, ids []string) error {
	if !q.mayChangeMembers(caller) {
		if err := q.mayIn(caller, authz.GroupsGet, "groups"); err != nil {
			return err
		}
	}
	if err := checkIDs(ids); err != nil {
		return err
	}
	var found []string
	if err := q.db.SelectContext(ctx, &found, `SELECT id FROM groups WHERE tenant = $1 AND id = ANY($2)`, caller.Tenant, pq.StringArray(ids)); err != nil {
		return fmt.Errorf("groups exist: %w", err)
	}
	have := make(map[string]bool, len(found))
	for _, id := range found {
		have[id] = true
	}
	for _, id := range ids {
		if !have[id] {
			return fmt.Errorf("%w: group %q", ErrNotFound, id)
		}
	}
	return nil
}
