package commands

import (
	"maps"
	"slices"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/query"
)

// Meta travels with every command: who asks, for which request, and the
// client's idempotency key if any.
type Meta struct {
	Caller         auth.Principal
	RequestID      string
	IdempotencyKey string
	// IDSeed, when set, is the id a command gives what it creates (a
	// service account, a credential) instead of a new one. The idempotency
	// store allocates it once per keyed request and hands the same seed to
	// every retry, so a retry of a request whose first attempt reached the
	// log finds what that attempt created and answers with it, however long
	// after (within the store's retention) and whatever became of the
	// process that ran it.
	IDSeed string
}

// Default tenant settings.
const (
	DefaultCredentialLifetime = 90 * 24 * time.Hour
	MaxCredentialLifetime     = 365 * 24 * time.Hour
	// MaxActiveCredentials is how many unexpired credentials a service account may hold.
	MaxActiveCredentials = 5
)

// Tenant is a tenant's state: existence and settings.
type Tenant struct {
	id     string
	name   string
	exists bool
	// deleted marks a tenant that was deleted: its id is never used again.
	deleted         bool
	defaultLifetime time.Duration
	maxLifetime     time.Duration
	scopeLevels     []string
}

func newTenant(id string) state { return &Tenant{id: id} }

// ID returns the tenant id.
func (t *Tenant) ID() string { return t.id }

// Name returns the tenant's display name.
func (t *Tenant) Name() string { return t.name }

// DefaultLifetime returns the default credential lifetime.
func (t *Tenant) DefaultLifetime() time.Duration { return t.defaultLifetime }

// MaxLifetime returns the maximum credential lifetime.
func (t *Tenant) MaxLifetime() time.Duration { return t.maxLifetime }

// ScopeLevels returns the scope levels service accounts may use.
func (t *Tenant) ScopeLevels() []string { return slices.Clone(t.scopeLevels) }

func (t *Tenant) clone() state {
	c := *t
	c.scopeLevels = slices.Clone(t.scopeLevels)
	return &c
}

func (t *Tenant) apply(_ events.Envelope, e events.Event) {
	switch e := e.(type) {
	case events.TenantCreated:
		t.exists = true
		t.name = e.Name
		t.defaultLifetime = time.Duration(e.CredentialDefaultLifetime) * time.Second
		t.maxLifetime = time.Duration(e.CredentialMaxLifetime) * time.Second
		t.scopeLevels = slices.Clone(e.ScopeLevels)
	case events.TenantSettingsChanged:
		if e.CredentialDefaultLifetime != nil {
			t.defaultLifetime = time.Duration(*e.CredentialDefaultLifetime) * time.Second
		}
		if e.CredentialMaxLifetime != nil {
			t.maxLifetime = time.Duration(*e.CredentialMaxLifetime) * time.Second
		}
		if e.ScopeLevels != nil {
			t.scopeLevels = slices.Clone(*e.ScopeLevels)
		}
	case events.TenantUpdated:
		t.name = e.Name
	case events.TenantDeleted:
		*t = Tenant{id: t.id, name: t.name, deleted: true}
	}
}

// User is a human user's state.
type User struct {
	id     string
	exists bool
	// deleted marks an id that was used and deleted: ids are never reused.
	deleted    bool
	personal   events.Personal
	erased     bool // personal data erased: personal holds markers
	status     string
	superadmin bool
	// restricted users may not change their own data (see
	// events.UserRestrictionChanged).
	restricted bool
	verifier   string
	tenants    []string
	createdAt  time.Time
	updatedAt  time.Time
	tokens     []string // ids of the personal API tokens not revoked
}

func newUser(id string) state { return &User{id: id} }

// ID returns the user id.
func (u *User) ID() string { return u.id }

// Personal returns the user's personal data.
func (u *User) Personal() events.Personal { return u.personal }

// Erased reports whether the user's personal data was erased; Personal
// then holds events.ErasedMarker in every field.
func (u *User) Erased() bool { return u.erased }

// Status returns active or disabled.
func (u *User) Status() string { return u.status }

// Superadmin reports whether the user is an instance superadmin.
func (u *User) Superadmin() bool { return u.superadmin }

// Restricted reports whether the user may not change its own personal
// data, password or API tokens.
func (u *User) Restricted() bool { return u.restricted }

// HasPassword reports whether the user has a password set.
func (u *User) HasPassword() bool { return u.verifier != "" }

// Tenants returns the tenants the user has access to, in grant order.
func (u *User) Tenants() []string { return slices.Clone(u.tenants) }

// CreatedAt returns the creation time.
func (u *User) CreatedAt() time.Time { return u.createdAt }

// UpdatedAt returns the time of the last change.
func (u *User) UpdatedAt() time.Time { return u.updatedAt }

func (u *User) clone() state {
	c := *u
	c.tokens = slices.Clone(u.tokens)
	c.tenants = slices.Clone(u.tenants)
	return &c
}

func (u *User) apply(env events.Envelope, e events.Event) {
	switch e := e.(type) {
	case events.UserCreated:
		// The repository put the plaintext (or erased markers) into
		// Personal when it read the event; see repository.reveal.
		u.exists, u.personal, u.status, u.superadmin, u.verifier = true, personalOf(e.Personal), e.Status, e.Superadmin, e.PasswordVerifier
		if u.status == "" {
			u.status = events.UserStatusActive
		}
		u.createdAt = env.Time
	case events.UserUpdated:
		u.personal = personalOf(e.Personal)
	case events.PersonalDataErased:
		u.personal, u.erased = events.ErasedPersonal(), true
	case events.UserDisabled:
		u.status = events.UserStatusDisabled
	case events.UserEnabled:
		u.status = events.UserStatusActive
	case events.PasswordChanged:
		u.verifier = e.Verifier
	case events.UserDeleted:
		*u = User{id: u.id, deleted: true, erased: u.erased}
		return
	case events.UserTenantAccessGranted:
		if !slices.Contains(u.tenants, e.Tenant) {
			u.tenants = append(u.tenants, e.Tenant)
		}
	case events.UserTenantAccessRevoked:
		u.tenants = slices.DeleteFunc(u.tenants, func(t string) bool { return t == e.Tenant })
	case events.UserRoleGranted:
		if e.Role == auth.RoleSuperadmin && e.Scope.Level == events.ScopeInstance {
			u.superadmin = true
		}
	case events.UserRoleRevoked:
		if e.Role == auth.RoleSuperadmin && e.Scope.Level == events.ScopeInstance {
			u.superadmin = false
		}
	case events.UserRestrictionChanged:
		u.restricted = e.Restricted
	case events.APITokenIssued:
		u.tokens = append(u.tokens, e.TokenID)
	case events.APITokenRevoked:
		u.tokens = slices.DeleteFunc(u.tokens, func(id string) bool { return id == e.TokenID })
	}
	u.updatedAt = env.Time
}

func personalOf(p *events.Personal) events.Personal {
	if p == nil {
		return events.Personal{}
	}
	return *p
}

// unique is the state of one reserved value.
type unique struct {
	owner string
	// last is the owner that released the value last, "" if none.
	last string
}

func newUnique(string) state { return &unique{} }

func (u *unique) clone() state { c := *u; return &c }

func (u *unique) apply(_ events.Envelope, e events.Event) {
	switch e := e.(type) {
	case events.UniqueKeyClaimed:
		u.owner = e.Owner
	case events.UniqueKeyReleased:
		u.owner, u.last = "", e.Owner
	}
}

// Credential is a client secret's metadata; the secret itself is never kept.
type Credential struct {
	id        string
	verifier  string
	createdBy string
	createdAt time.Time
	expiresAt time.Time
}

// ID returns the credential id.
func (c Credential) ID() string { return c.id }

// CreatedAt returns when the credential was created.
func (c Credential) CreatedAt() time.Time { return c.createdAt }

// ExpiresAt returns when the credential stops working.
func (c Credential) ExpiresAt() time.Time { return c.expiresAt }

// ServiceAccount is a service account's state, credentials included.
type ServiceAccount struct {
	id     string
	tenant string
	exists bool
	// deleted marks an id that was used and deleted: ids are never reused,
	// so a retried create must not bring it back.
	deleted bool
	// name is the client-chosen name, "" if none (events.ServiceAccountCreated.Name).
	name        string
	clientID    string
	displayName string
	description string
	scope       events.Scope
	roles       []string
	status      string
	createdAt   time.Time
	updatedAt   time.Time
	// createdBy is the id of the principal whose command created it.
	createdBy   string
	credentials []Credential
	// deletedCredentials are the ids of deleted credentials, never reused.
	deletedCredentials []string
	// deletedBy is the id seed of the keyed request that deleted the
	// account; credentialsDeletedBy maps a keyed request's seed to the
	// credential it deleted. Retries of those requests succeed again.
	deletedBy            string
	credentialsDeletedBy map[string]string
	// apiTokens are the ids of the account's API tokens not revoked;
	// revokedAPITokens those revoked, never reused.
	apiTokens        []string
	revokedAPITokens []string
}

// Service account statuses.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// Statuses is every status a service account can have: the list the read
// side enumerates (query.ServiceAccountStatuses), so that no status can
// drop out of lists.
var Statuses = query.ServiceAccountStatuses

func newServiceAccount(tenant, id string) *ServiceAccount {
	return &ServiceAccount{id: id, tenant: tenant}
}

// ID returns the service account id.
func (s *ServiceAccount) ID() string { return s.id }

// Tenant returns the tenant the service account belongs to.
func (s *ServiceAccount) Tenant() string { return s.tenant }

// Name returns the client-chosen name, unique in the tenant, or "" when
// the client chose none.
func (s *ServiceAccount) Name() string { return s.name }

// ClientID returns the OAuth2 client id.
func (s *ServiceAccount) ClientID() string { return s.clientID }

// DisplayName returns the display name.
func (s *ServiceAccount) DisplayName() string { return s.displayName }

// Description returns the description.
func (s *ServiceAccount) Description() string { return s.description }

// Scope returns where the service account applies.
func (s *ServiceAccount) Scope() events.Scope { return s.scope }

// Roles returns the role names, sorted.
func (s *ServiceAccount) Roles() []string { return slices.Clone(s.roles) }

// Status returns active or disabled.
func (s *ServiceAccount) Status() string { return s.status }

// CreatedAt returns the creation time.
func (s *ServiceAccount) CreatedAt() time.Time { return s.createdAt }

// UpdatedAt returns the time of the last change.
func (s *ServiceAccount) UpdatedAt() time.Time { return s.updatedAt }

// CreatedBy returns the id of the principal that created the account.
func (s *ServiceAccount) CreatedBy() string { return s.createdBy }

// ActiveCredentials counts the credentials not yet expired at now.
func (s *ServiceAccount) ActiveCredentials(now time.Time) int { return s.activeCredentials(now) }

// View returns the account in the shape queries return it, so that a
// dialect maps one type for both; ActiveCredentials counts the
// credentials unexpired at now. Number is the read tables' to know: 0.
func (s *ServiceAccount) View(now time.Time) query.ServiceAccount {
	return query.ServiceAccount{ID: s.id, Name: s.name, ClientID: s.clientID, DisplayName: s.displayName, Description: s.description,
		ScopeLevel: s.scope.Level, ScopeTarget: s.scope.Target, ScopeKind: s.scope.NodeKind(), Roles: slices.Clone(s.roles), Status: s.status,
		CreatedBy: s.createdBy, CreatedAt: s.createdAt, UpdatedAt: s.updatedAt, Tenant: s.tenant, ActiveCredentials: s.activeCredentials(now)}
}

// CredentialView returns credential c of the account in the shape queries
// return it.
func (s *ServiceAccount) CredentialView(c Credential) query.Credential {
	return query.Credential{ID: c.id, ServiceAccountID: s.id, ServiceAccountName: s.name, CreatedBy: c.createdBy, CreatedAt: c.createdAt, ExpiresAt: c.expiresAt}
}

// activeCredentials counts credentials not yet expired at now.
func (s *ServiceAccount) activeCredentials(now time.Time) int {
	n := 0
	for _, c := range s.credentials {
		if c.expiresAt.After(now) {
			n++
		}
	}
	return n
}

func (s *ServiceAccount) credential(id string) (Credential, bool) {
	for _, c := range s.credentials {
		if c.id == id {
			return c, true
		}
	}
	return Credential{}, false
}

func (s *ServiceAccount) clone() state {
	c := *s
	c.roles = slices.Clone(s.roles)
	c.credentials = slices.Clone(s.credentials)
	c.deletedCredentials = slices.Clone(s.deletedCredentials)
	c.credentialsDeletedBy = maps.Clone(s.credentialsDeletedBy)
	c.apiTokens = slices.Clone(s.apiTokens)
	c.revokedAPITokens = slices.Clone(s.revokedAPITokens)
	return &c
}

func (s *ServiceAccount) apply(env events.Envelope, e events.Event) {
	switch e := e.(type) {
	case events.ServiceAccountCreated:
		s.exists = true
		s.name, s.clientID, s.displayName, s.description = e.Name, e.ClientID, e.DisplayName, e.Description
		s.scope, s.roles, s.status = e.Scope, slices.Clone(e.Roles), e.Status
		s.createdAt, s.updatedAt = env.Time, env.Time
		s.createdBy = env.Actor.ID
	case events.ServiceAccountUpdated:
		if e.DisplayName != nil {
			s.displayName = *e.DisplayName
		}
		if e.Description != nil {
			s.description = *e.Description
		}
		if e.Roles != nil {
			s.roles = slices.Clone(*e.Roles)
		}
		if e.Status != nil {
			s.status = *e.Status
		}
		s.updatedAt = env.Time
	case events.ServiceAccountDeleted:
		*s = ServiceAccount{id: s.id, tenant: s.tenant, deleted: true, deletedBy: e.RequestSeed}
	case events.CredentialCreated:
		s.credentials = append(s.credentials, Credential{id: e.CredentialID, verifier: e.Verifier, createdBy: env.Actor.ID, createdAt: env.Time, expiresAt: e.ExpiresAt})
	case events.CredentialDeleted:
		s.credentials = slices.DeleteFunc(s.credentials, func(c Credential) bool { return c.id == e.CredentialID })
		s.deletedCredentials = append(s.deletedCredentials, e.CredentialID)
		if e.RequestSeed != "" {
			if s.credentialsDeletedBy == nil {
				s.credentialsDeletedBy = map[string]string{}
			}
			s.credentialsDeletedBy[e.RequestSeed] = e.CredentialID
		}
	case events.APITokenIssued:
		s.apiTokens = append(s.apiTokens, e.TokenID)
	case events.APITokenRevoked:
		s.apiTokens = slices.DeleteFunc(s.apiTokens, func(id string) bool { return id == e.TokenID })
		s.revokedAPITokens = append(s.revokedAPITokens, e.TokenID)
	}
}
