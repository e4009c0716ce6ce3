package query

import (
	"slices"
	"strings"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
)

// dropTenant applies TenantDeleted: nobody acts in the tenant any more.
// Users lose their access to it (as UserTenantAccessRevoked does, so an
// API token acting in it as its default tenant moves to the next) and its
// service accounts stop authenticating (as if deleted). Runs under d.mu.
func (d *Directory) dropTenant(tenant string) {
	delete(d.tenantIDs, tenant)
	for _, u := range d.users {
		if slices.Contains(u.tenants, tenant) {
			u.tenants = slices.DeleteFunc(slices.Clone(u.tenants), func(t string) bool { return t == tenant })
			d.model.RevokeTenant(u.id, tenant)
		}
	}
	for _, sa := range d.accounts {
		if sa.tenant == tenant {
			d.removeAccount(sa)
		}
	}
}

// removeAccount forgets a service account (ServiceAccountDeleted, or its
// tenant's TenantDeleted). Runs under d.mu.
func (d *Directory) removeAccount(sa *dirServiceAccount) {
	delete(d.accounts, sa.id)
	if sa.otherClientID != "" {
		delete(d.clients, sa.otherClientID)
	}
	d.model.RemovePrincipal(sa.id)
	for id := range sa.bound {
		delete(d.boundTo, id)
	}
	if sa.name != "" && d.named[[2]string{sa.tenant, sa.name}] == sa {
		delete(d.named, [2]string{sa.tenant, sa.name})
	}
	// The account's API tokens die with it.
	for _, v := range d.accountTokens[sa.id] {
		delete(d.tokenIDs, d.tokens[v].id)
		delete(d.tokens, v)
	}
	delete(d.accountTokens, sa.id)
}

// revokeRole applies UserRoleRevoked to u. Runs under d.mu.
func (d *Directory) revokeRole(u *dirUser, e events.UserRoleRevoked) {
	b := auth.Binding{Role: e.Role, Tenant: e.Tenant, Scope: ownScope(e.Scope)}
	// Copy on write: principals handed out keep the old slice.
	u.bindings = slices.DeleteFunc(slices.Clone(u.bindings), func(have auth.Binding) bool { return have == b })
	if b.Role == auth.RoleSuperadmin && b.Scope.Level == events.ScopeInstance {
		u.superadmin = false
		d.putUser(u)
		return
	}
	d.model.Unbind("user/" + u.id + "/" + b.Tenant + "/" + b.Role + "/" + b.Scope.Level + "/" + strings.Clone(b.Scope.Target))
}
