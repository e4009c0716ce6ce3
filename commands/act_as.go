package commands

import (
	"context"
	"fmt"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
)

// actAs is the rule for acting as a service account: an administrator
// may obtain the account's rights (mint a client secret or an API token
// for it) only if they hold every rule the account holds, within its
// scope, as assigning its roles would need. Any later way of acting as a
// principal uses it.
//
// It has two halves because a dialect asks the first before it reads a
// request body: authorize decides from the caller and the account
// reference alone, account decides inside a command's decision, against
// the account as the log has it.
type actAs struct{ base }

// authorize reports whether caller may act as any service account of its
// tenant, that is holds the right to create credentials there. Without it
// the account ref is not found (ErrNotFound): a non-administrator does not
// learn which accounts exist.
func (a actAs) authorize(caller auth.Principal, ref string) error {
	return a.hidden(caller, authz.CredentialsCreate, authz.TenantScope(caller.Tenant), "service account", ref)
}

// account loads service account id of caller's tenant for a decision and
// returns it when caller may act as it: ErrNotFound when it does not
// exist, ErrForbidden naming the first role whose rules caller lacks.
func (a actAs) account(ctx context.Context, caller auth.Principal, id string) (*ServiceAccount, key, uint64, error) {
	sa, k, seq, err := a.serviceAccount(ctx, caller.Tenant, id)
	if err != nil {
		return nil, k, 0, err
	}
	if !sa.exists {
		return nil, k, 0, notFound("service account", id)
	}
	if err := a.holdsAll(ctx, caller, sa); err != nil {
		return nil, k, 0, err
	}
	return sa, k, seq, nil
}

// holdsAll enforces that caller holds every rule of sa's roles within
// sa's scope, and what roles bound to sa or its groups grant within
// theirs. Roles deleted since grant nothing and need not be held.
func (a actAs) holdsAll(ctx context.Context, caller auth.Principal, sa *ServiceAccount) error {
	for _, id := range sa.roles {
		r, _, _, err := a.role(ctx, sa.tenant, id)
		if err != nil {
			return err
		}
		what := fmt.Sprintf("act for service account %q, which holds role %q", sa.id, id)
		if err := a.scopeDown(caller, r.Rules(), auth.ScopeOf(sa.tenant, sa.scope), "", what); err != nil {
			return err
		}
	}
	if a.authz == nil {
		return nil
	}
	for _, bound := range a.authz.Held(sa.id) {
		what := fmt.Sprintf("act for service account %q, which holds role %q", sa.id, bound.Role)
		if err := a.scopeDown(caller, bound.Rules, bound.Scope, "", what); err != nil {
			return err
		}
	}
	return nil
}
