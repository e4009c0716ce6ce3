package auth

import (
	"github.com/keyhold/keyhold/events"
)

// RoleSuperadmin, held at instance scope (UserRoleGranted), makes a user a
// superadmin. Tenant roles are data: authz.ManagedRoles and custom roles.
const RoleSuperadmin = "superadmin"

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
	// Roles, when not nil, limits what the principal may do to the rules of
	// these roles (ids in Tenant): an access token whose scope names fewer
	// roles than its account holds.
	Roles []string
}

// Actor returns the principal as an event actor.
func (p Principal) Actor() events.Actor { return events.Actor{ID: p.ID, Kind: p.Kind} }

// KindSystem is the kind of the operator's own principal (CLI, server).
const KindSystem = "system"

// System returns the operator principal used by the CLI: a superadmin.
func System() Principal {
	return Principal{ID: "system", Kind: KindSystem, Bindings: []Binding{{Role: RoleSuperadmin, Scope: events.Scope{Level: events.ScopeInstance}}}}
}

// SystemIn is System acting in tenant, for the operator's commands on a
// tenant's resources (roles, bindings, service accounts).
func SystemIn(tenant string) Principal {
	p := System()
	p.Tenant = tenant
	return p
}
