package events

// TenantUpdated renames a tenant. Aggregate: tenant.
type TenantUpdated struct {
	Name string `json:"name"`
}

// EventType implements Event.
func (TenantUpdated) EventType() string { return "iam.tenant.updated" }

// TenantDeleted ends a tenant. Its id is never used again; from this
// event on nobody signs in or acts in it: users lose their access to it
// and its service accounts and their credentials stop authenticating.
// What the tenant held stays in the log (the audit trail keeps it).
// Aggregate: tenant.
type TenantDeleted struct{}

// EventType implements Event.
func (TenantDeleted) EventType() string { return "iam.tenant.deleted" }

// UserRoleRevoked takes back a role UserRoleGranted gave, with the same
// role, tenant and scope. Aggregate: user at instance level.
type UserRoleRevoked struct {
	Role   string `json:"role"`
	Tenant string `json:"tenant,omitempty"`
	Scope  Scope  `json:"scope"`
}

// EventType implements Event.
func (UserRoleRevoked) EventType() string { return "iam.user.role_revoked" }

// UserRestrictionChanged marks a user restricted or not. A restricted
// user (Kestra's shared demo accounts) may not change its own personal
// data, password or API tokens; a superadmin still may. Aggregate: user.
type UserRestrictionChanged struct {
	Restricted bool `json:"restricted"`
}

// EventType implements Event.
func (UserRestrictionChanged) EventType() string { return "iam.user.restriction_changed" }
