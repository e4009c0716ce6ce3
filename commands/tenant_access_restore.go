package commands

import (
	"context"
	"fmt"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
)

// leaveTenant records, in c, the end of user's bindings and group
// memberships in tenant, as revoking its access to the tenant does: a
// later grant or invitation starts from nothing, whoever makes it. The
// bindings and groups are found in the authorization model; those of
// UserRoleGranted (older logs) are not bindings of their own and stay,
// granting nothing without access.
func (b base) leaveTenant(ctx context.Context, c *change, userID, tenant string) error {
	if b.authz == nil {
		return nil
	}
	for _, bd := range b.authz.BindingsOf(userID) {
		if bd.Scope.Tenant != tenant || !events.ValidToken(bd.ID) {
			continue
		}
		k := key{tenant, events.AggregateBinding, bd.ID}
		st, seq, err := b.repo.load(ctx, k, 0, func() state { return newBinding(bd.ID) })
		if err != nil {
			return err
		}
		if bs := st.(*Binding); bs.exists && bs.subjectID == userID {
			c.record(k, bs, seq, events.BindingDeleted{})
		}
	}
	for _, gid := range b.authz.GroupsOf(userID) {
		g, k, seq, err := b.group(ctx, tenant, gid)
		if err != nil {
			return err
		}
		if _, member := g.members[userID]; g.exists && member {
			c.record(k, g, seq, events.GroupMemberRemoved{MemberID: userID})
		}
	}
	return nil
}

// mayRestore is scope-down on letting a user back into a tenant.
// Revoking access now ends the user's bindings and memberships there
// (leaveTenant), but logs from before kept them in place (they grant
// nothing without access), so granting access again, directly or through
// an invitation, would give them back: the caller must hold what each of
// them grants, within its scope.
func (b base) mayRestore(caller auth.Principal, userID, tenant string) error {
	if b.authz == nil {
		return nil
	}
	for _, bound := range b.authz.Held(userID) {
		if bound.Scope.Tenant != tenant {
			continue
		}
		what := fmt.Sprintf("give access to user %s, who holds role %q in tenant %q", userID, bound.Role, tenant)
		if err := b.scopeDown(caller, bound.Rules, bound.Scope, "", what); err != nil {
			return err
		}
	}
	return nil
}

// mayRestoreEmail is mayRestore for an invitation to email: accepting it
// gives the user holding email, if any, back what they kept in tenant.
func (b base) mayRestoreEmail(ctx context.Context, caller auth.Principal, tenant, email string) error {
	owner, err := b.emailOwner(ctx, email)
	if err != nil || owner == "" {
		return err
	}
	return b.mayRestore(caller, owner, tenant)
}
