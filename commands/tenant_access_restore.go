package commands

import (
	"context"
	"fmt"

	"github.com/keyhold/keyhold/auth"
)

// mayRestore is scope-down on letting a user back into a tenant.
// Revoking access leaves the user's bindings and group memberships in the
// tenant in place (they grant nothing without access), so granting access
// again, directly or through an invitation, gives them back: the caller
// must hold what each of them grants, within its scope.
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
