package events

import (
	"context"
	"time"
)

// Scope says where a grant or a service account applies.
type Scope struct {
	// Level is "instance", "tenant" or "namespace".
	Level string `json:"level"`
	// Target names the node at that level: empty for instance, the tenant id
	// for tenant, the namespace for namespace.
	Target string `json:"target,omitempty"`
	// Kind says what a namespace node is where the hierarchy types its
	// nodes (k0rdent: a folder or a project); empty for other levels, and
	// in events recorded before nodes had kinds (see NodeKind). It does not
	// change what the scope covers: a node covers the nodes below it.
	Kind string `json:"kind,omitempty"`
}

// Kinds of namespace node.
const (
	NodeFolder  = "folder"
	NodeProject = "project"
)

// NodeKinds are the kinds a namespace node can have. Read only.
var NodeKinds = []string{NodeFolder, NodeProject}

// NodeKind returns the kind of a namespace scope's node: Kind, or
// NodeFolder where none was recorded (a namespace holds others as a folder
// does). It is empty for other levels.
func (s Scope) NodeKind() string {
	switch {
	case s.Level != ScopeNamespace:
		return ""
	case s.Kind == "":
		return NodeFolder
	}
	return s.Kind
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

// Personal is everything that identifies a person. It is kept in one
// struct in every event that carries it, so it can be encrypted per user
// as a whole (and shredded by destroying the user's key); nothing personal
// may appear outside it. Events since UserCreated v3 and UserUpdated v2
// carry it only encrypted (PersonalEnc); a PersonalReader returns it.
type Personal struct {
	Username string `json:"username"`
	// Email is lower-cased.
	Email       string `json:"email"`
	FirstName   string `json:"first_name,omitempty"`
	LastName    string `json:"last_name,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	// Erased is set, never stored, when the user's data key was destroyed:
	// every field then holds ErasedMarker.
	Erased bool `json:"-"`
}

// ErasedMarker stands in for every personal field of an erased user.
const ErasedMarker = "[erased]"

// ErasedPersonal is what readers get for a user whose data key was
// destroyed.
func ErasedPersonal() Personal {
	return Personal{Username: ErasedMarker, Email: ErasedMarker, FirstName: ErasedMarker, LastName: ErasedMarker, DisplayName: ErasedMarker, Erased: true}
}

// PersonalReader returns the personal data a UserCreated or UserUpdated
// of user subject carries: the plaintext of events written before
// encryption, the decrypted PersonalEnc of newer ones, ErasedPersonal once
// the user's data key is destroyed. An error means the key store could not
// answer (retry later), or the ciphertext does not open (a broken event).
// Implementations are safe for concurrent use.
type PersonalReader interface {
	Personal(ctx context.Context, subject string, e Event) (Personal, error)
}

// User statuses.
const (
	UserStatusActive   = "active"
	UserStatusDisabled = "disabled"
)

// UserCreated registers a human user. Aggregate: user at instance level.
// Version 2 moved username and email into Personal; version 3 encrypts it
// into PersonalEnc.
type UserCreated struct {
	// Personal is set only in events written before version 3, which
	// keep their plaintext; a PersonalReader reads both forms.
	Personal *Personal `json:"personal,omitempty"`
	// PersonalEnc is Personal as JSON sealed with AES-256-GCM under the
	// user's data key (nonce first), with the user id and event type as
	// additional data.
	PersonalEnc []byte `json:"personal_enc,omitempty"`
	Status      string `json:"status"`
	Superadmin  bool   `json:"superadmin,omitempty"`
	// PasswordVerifier is an argon2id PHC string (auth.HashPassword), or
	// empty for a user without a password. Never the password.
	PasswordVerifier string `json:"password_verifier,omitempty"`
}

// EventType implements Event.
func (UserCreated) EventType() string { return "iam.user.created" }

// UserUpdated replaces a user's personal data as a whole. Username and
// email changes are claimed (and the old values released) in the same batch.
// Version 2 encrypts it, as UserCreated v3 does.
type UserUpdated struct {
	// Personal is set only in version 1 events.
	Personal *Personal `json:"personal,omitempty"`
	// PersonalEnc is sealed as UserCreated's is.
	PersonalEnc []byte `json:"personal_enc,omitempty"`
}

// EventType implements Event.
func (UserUpdated) EventType() string { return "iam.user.updated" }

// UserDisabled stops a user from authenticating, by any credential, at once.
type UserDisabled struct{}

// EventType implements Event.
func (UserDisabled) EventType() string { return "iam.user.disabled" }

// UserEnabled lets a disabled user authenticate again.
type UserEnabled struct{}

// EventType implements Event.
func (UserEnabled) EventType() string { return "iam.user.enabled" }

// UserDeleted removes a user with every credential and grant; its username
// and email are released in the same batch. The id is never reused.
type UserDeleted struct{}

// EventType implements Event.
func (UserDeleted) EventType() string { return "iam.user.deleted" }

// PersonalDataErased records that a user's personal data is erased: its
// username and email are released in the same batch, and the user's data
// key is destroyed right after, which makes every PersonalEnc of the user
// unreadable. The user id and what is not personal (status, grants) stay.
type PersonalDataErased struct{}

// EventType implements Event.
func (PersonalDataErased) EventType() string { return "iam.user.personal_data_erased" }

// PasswordChanged sets a user's password verifier (argon2id PHC string);
// the password itself is never stored. Older verifiers stop working at once.
type PasswordChanged struct {
	Verifier string `json:"verifier"`
}

// EventType implements Event.
func (PasswordChanged) EventType() string { return "iam.user.password_changed" }

// UserTenantAccessGranted gives a user access to a tenant.
type UserTenantAccessGranted struct {
	Tenant string `json:"tenant"`
}

// EventType implements Event.
func (UserTenantAccessGranted) EventType() string { return "iam.user.tenant_access_granted" }

// UserTenantAccessRevoked takes a user's access to a tenant away, with the
// user's role grants in that tenant.
type UserTenantAccessRevoked struct {
	Tenant string `json:"tenant"`
}

// EventType implements Event.
func (UserTenantAccessRevoked) EventType() string { return "iam.user.tenant_access_revoked" }

// UserRoleGranted binds a role to a user within a scope. For tenant and
// namespace scopes Tenant names the tenant.
type UserRoleGranted struct {
	Role   string `json:"role"`
	Tenant string `json:"tenant,omitempty"`
	Scope  Scope  `json:"scope"`
}

// EventType implements Event.
func (UserRoleGranted) EventType() string { return "iam.user.role_granted" }

// APITokenIssued records an API token of a user (aggregate user) or of a
// service account (aggregate service_account in its tenant). Only its
// verifier (SHA-256 of the token) is stored; the token itself is shown to
// the caller once. Version 2 adds the principal kind; a version 1 event
// is a user's token.
type APITokenIssued struct {
	TokenID string `json:"token_id"`
	// PrincipalKind is who the token authenticates as: "user" or
	// "service_account" (empty in version 1: a user).
	PrincipalKind string `json:"principal_kind,omitempty"`
	// Name says what the token is for (empty for tokens from before names).
	Name string `json:"name,omitempty"`
	// Description says more about it (empty for tokens from before descriptions).
	Description string     `json:"description,omitempty"`
	Verifier    string     `json:"verifier"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
}

// ServiceAccountToken reports whether the token authenticates as a
// service account rather than a user.
func (e APITokenIssued) ServiceAccountToken() bool { return e.PrincipalKind == SubjectServiceAccount }

// EventType implements Event.
func (APITokenIssued) EventType() string { return "iam.user.api_token_issued" }

// APITokenRevoked ends an API token at once. Aggregate: the token's
// principal's (user or service_account).
type APITokenRevoked struct {
	TokenID string `json:"token_id"`
}

// EventType implements Event.
func (APITokenRevoked) EventType() string { return "iam.user.api_token_revoked" }

// ServiceAccountCreated starts a service account. Aggregate: service_account
// in its tenant. It has no credentials yet.
type ServiceAccountCreated struct {
	// Name is the account's client-chosen id (k0rdent's `id`), unique in
	// its tenant through a UniqueKeyClaimed in the same atomic batch;
	// empty when the client chose none, as in every event written before
	// names existed (an optional field: those events decode unchanged).
	// The aggregate id stays the server's.
	Name        string   `json:"name,omitempty"`
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
type ServiceAccountDeleted struct {
	// RequestSeed is the id seed of the keyed request that deleted it
	// (commands.Meta.IDSeed), so a retry of that request after a crash is
	// told it succeeded instead of 404. Empty for unkeyed requests.
	RequestSeed string `json:"request_seed,omitempty"`
}

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
	// RequestSeed is as in ServiceAccountDeleted.
	RequestSeed string `json:"request_seed,omitempty"`
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

// InstanceID is the id of the one instance aggregate (in InstanceTenant).
const InstanceID = "instance"

// InstanceSettingsChanged changes instance-level IAM settings; nil fields
// are unchanged, and settings never set keep their defaults. Aggregate:
// instance, InstanceID in InstanceTenant.
type InstanceSettingsChanged struct {
	// APITokenDefaultLifetime and APITokenMaxLifetime are in seconds.
	APITokenDefaultLifetime *int64 `json:"api_token_default_lifetime_s,omitempty"`
	APITokenMaxLifetime     *int64 `json:"api_token_max_lifetime_s,omitempty"`
	// The settings a tenant created afterwards starts with (see
	// TenantCreated), in seconds; optional fields, absent from events
	// written before they existed.
	CredentialDefaultLifetime *int64    `json:"credential_default_lifetime_s,omitempty"`
	CredentialMaxLifetime     *int64    `json:"credential_max_lifetime_s,omitempty"`
	ScopeLevels               *[]string `json:"scope_levels,omitempty"`
}

// EventType implements Event.
func (InstanceSettingsChanged) EventType() string { return "iam.instance.settings_changed" }
