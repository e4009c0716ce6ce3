package events

import "time"

// Scope says where a grant or a service account applies.
type Scope struct {
	// Level is "instance", "tenant" or "namespace".
	Level string `json:"level"`
	// Target names the node at that level: empty for instance, the tenant id
	// for tenant, the namespace for namespace.
	Target string `json:"target,omitempty"`
}

// Scope levels.
const (
	ScopeInstance  = "instance"
	ScopeTenant    = "tenant"
	ScopeNamespace = "namespace"
)

// ServiceAccountScopeLevels are the levels a service account can be
// scoped to, and a tenant's settings can allow. Read only.
var ServiceAccountScopeLevels = []string{ScopeTenant, ScopeNamespace}

// TenantCreated starts a tenant. Aggregate: tenant, subject keyhold.<id>.tenant.<id>.
type TenantCreated struct {
	Name string `json:"name"`
	// CredentialDefaultLifetime and CredentialMaxLifetime are in seconds.
	CredentialDefaultLifetime int64    `json:"credential_default_lifetime_s"`
	CredentialMaxLifetime     int64    `json:"credential_max_lifetime_s"`
	ScopeLevels               []string `json:"scope_levels"`
}

// EventType implements Event.
func (TenantCreated) EventType() string { return "iam.tenant.created" }

// TenantSettingsChanged replaces a tenant's settings; nil fields are unchanged.
type TenantSettingsChanged struct {
	CredentialDefaultLifetime *int64    `json:"credential_default_lifetime_s,omitempty"`
	CredentialMaxLifetime     *int64    `json:"credential_max_lifetime_s,omitempty"`
	ScopeLevels               *[]string `json:"scope_levels,omitempty"`
}

// EventType implements Event.
func (TenantSettingsChanged) EventType() string { return "iam.tenant.settings_changed" }

// UserCreated registers a human user. Aggregate: user at instance level.
type UserCreated struct {
	Username string `json:"username"`
	Email    string `json:"email"`
}

// EventType implements Event.
func (UserCreated) EventType() string { return "iam.user.created" }

// UserTenantAccessGranted gives a user access to a tenant.
type UserTenantAccessGranted struct {
	Tenant string `json:"tenant"`
}

// EventType implements Event.
func (UserTenantAccessGranted) EventType() string { return "iam.user.tenant_access_granted" }

// UserRoleGranted binds a role to a user within a scope. For tenant and
// namespace scopes Tenant names the tenant.
type UserRoleGranted struct {
	Role   string `json:"role"`
	Tenant string `json:"tenant,omitempty"`
	Scope  Scope  `json:"scope"`
}

// EventType implements Event.
func (UserRoleGranted) EventType() string { return "iam.user.role_granted" }

// APITokenIssued records a personal API token. Only its verifier (SHA-256 of
// the token) is stored; the token itself is shown to the caller once.
type APITokenIssued struct {
	TokenID   string     `json:"token_id"`
	Verifier  string     `json:"verifier"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// EventType implements Event.
func (APITokenIssued) EventType() string { return "iam.user.api_token_issued" }

// APITokenRevoked ends a personal API token at once. Aggregate: user.
type APITokenRevoked struct {
	TokenID string `json:"token_id"`
}

// EventType implements Event.
func (APITokenRevoked) EventType() string { return "iam.user.api_token_revoked" }

// ServiceAccountCreated starts a service account. Aggregate: service_account
// in its tenant. It has no credentials yet.
type ServiceAccountCreated struct {
	ClientID    string   `json:"client_id"`
	DisplayName string   `json:"display_name"`
	Description string   `json:"description"`
	Scope       Scope    `json:"scope"`
	Roles       []string `json:"roles"`
	Status      string   `json:"status"`
}

// EventType implements Event.
func (ServiceAccountCreated) EventType() string { return "iam.service_account.created" }

// ServiceAccountUpdated changes mutable fields; nil fields are unchanged.
type ServiceAccountUpdated struct {
	DisplayName *string   `json:"display_name,omitempty"`
	Description *string   `json:"description,omitempty"`
	Roles       *[]string `json:"roles,omitempty"`
	Status      *string   `json:"status,omitempty"`
}

// EventType implements Event.
func (ServiceAccountUpdated) EventType() string { return "iam.service_account.updated" }

// ServiceAccountDeleted hard-deletes a service account and all its credentials.
type ServiceAccountDeleted struct{}

// EventType implements Event.
func (ServiceAccountDeleted) EventType() string { return "iam.service_account.deleted" }

// CredentialCreated adds a client secret to a service account. Only the
// verifier (SHA-256 of the secret) is stored.
type CredentialCreated struct {
	CredentialID string    `json:"credential_id"`
	Verifier     string    `json:"verifier"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// EventType implements Event.
func (CredentialCreated) EventType() string { return "iam.service_account.credential_created" }

// CredentialDeleted removes a client secret at once.
type CredentialDeleted struct {
	CredentialID string `json:"credential_id"`
}

// EventType implements Event.
func (CredentialDeleted) EventType() string { return "iam.service_account.credential_deleted" }

// AccessTokenRevoked revokes one issued access token (by its JWT id) before
// it expires.
type AccessTokenRevoked struct {
	TokenID   string    `json:"token_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// EventType implements Event.
func (AccessTokenRevoked) EventType() string { return "iam.service_account.access_token_revoked" }

// UniqueKeyClaimed reserves a unique value (username, email, ...) for an
// aggregate. It is written in the same atomic batch as the event that uses
// the value. Aggregate: unique, subject keyhold.<tenant>.unique.<key-hash>.
type UniqueKeyClaimed struct {
	Kind  string `json:"kind"`
	Owner string `json:"owner"`
}

// EventType implements Event.
func (UniqueKeyClaimed) EventType() string { return "iam.unique_key.claimed" }

// UniqueKeyReleased frees a unique value again.
type UniqueKeyReleased struct {
	Kind  string `json:"kind"`
	Owner string `json:"owner"`
}

// EventType implements Event.
func (UniqueKeyReleased) EventType() string { return "iam.unique_key.released" }
