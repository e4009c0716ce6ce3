package auth

import (
	"slices"
	"strings"

	"github.com/keyhold/keyhold/events"
)

// Built-in roles. RoleSuperadmin is held at instance scope; the others at
// tenant or namespace scope.
const (
	RoleSuperadmin  = "superadmin"
	RoleTenantAdmin = "tenant-admin"
	RoleAuditor     = "auditor"
	RoleViewer      = "viewer"
)

// TenantRoles are the built-in roles a tenant-scoped principal may hold.
var TenantRoles = []string{RoleTenantAdmin, RoleAuditor, RoleViewer}

// IsTenantRole reports whether role is a built-in tenant role.
func IsTenantRole(role string) bool { return slices.Contains(TenantRoles, role) }

// Principal kinds.
const (
	KindUser           = "user"
	KindServiceAccount = "service_account"
)

// Binding is a role held within a scope. Tenant is empty for instance scope.
type Binding struct {
	Role   string
	Tenant string
	Scope  events.Scope
}

// Principal is an authenticated caller with its bindings. Principals are
// values built per request; they are safe to share read-only.
type Principal struct {
	ID   string
	Kind string
	// Tenant is the tenant a service account belongs to, or the tenant a
	// user acts in for this request.
	Tenant   string
	Bindings []Binding
}

// Actor returns the principal as an event actor.
func (p Principal) Actor() events.Actor { return events.Actor{ID: p.ID, Kind: p.Kind} }

// Holds reports whether p holds role at target within tenant. A binding
// covers its own scope and everything below it: instance covers every
// tenant, a tenant covers its namespaces, namespace "a.b" covers "a.b.c".
// A superadmin holds every role everywhere.
func (p Principal) Holds(role, tenant string, target events.Scope) bool {
	for _, b := range p.Bindings {
		if b.Role == RoleSuperadmin && b.Scope.Level == events.ScopeInstance {
			return true
		}
		if b.Role != role {
			continue
		}
		if covers(b, tenant, target) {
			return true
		}
	}
	return false
}

func covers(b Binding, tenant string, target events.Scope) bool {
	switch b.Scope.Level {
	case events.ScopeInstance:
		return true
	case events.ScopeTenant:
		return b.Tenant == tenant && target.Level != events.ScopeInstance
	case events.ScopeNamespace:
		if b.Tenant != tenant || target.Level != events.ScopeNamespace {
			return false
		}
		return target.Target == b.Scope.Target || strings.HasPrefix(target.Target, b.Scope.Target+".")
	}
	return false
}

// IsTenantAdmin reports whether p administers tenant: it holds tenant-admin
// on the whole tenant, or is a superadmin.
func (p Principal) IsTenantAdmin(tenant string) bool {
	if p.Holds(RoleSuperadmin, "", events.Scope{Level: events.ScopeInstance}) {
		return true
	}
	return p.Holds(RoleTenantAdmin, tenant, events.Scope{Level: events.ScopeTenant, Target: tenant})
}

// CanAudit reports whether p may read tenant's audit trail.
func (p Principal) CanAudit(tenant string) bool {
	return p.IsTenantAdmin(tenant) || p.Holds(RoleAuditor, tenant, events.Scope{Level: events.ScopeTenant, Target: tenant})
}

// KindSystem is the kind of the operator's own principal (CLI, server).
const KindSystem = "system"

// System returns the operator principal used by the CLI: a superadmin.
func System() Principal {
	return Principal{ID: "system", Kind: KindSystem, Bindings: []Binding{{Role: RoleSuperadmin, Scope: events.Scope{Level: events.ScopeInstance}}}}
}
