package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/privacy"
)

// Commands groups every command handler. Handlers are safe for concurrent use.
type Commands struct {
	Bootstrap                 BootstrapHandler
	ChangeTenantSettings      ChangeTenantSettingsHandler
	CreateServiceAccount      CreateServiceAccountHandler
	UpdateServiceAccount      UpdateServiceAccountHandler
	DeleteServiceAccount      DeleteServiceAccountHandler
	CreateCredential          CreateCredentialHandler
	DeleteCredential          DeleteCredentialHandler
	RevokeAccessToken         RevokeAccessTokenHandler
	IssueAPIToken             IssueAPITokenHandler
	RevokeAPITokens           RevokeAPITokensHandler
	CreateUser                CreateUserHandler
	UpdateUser                UpdateUserHandler
	ReplaceUser               ReplaceUserHandler
	SetUserStatus             SetUserStatusHandler
	DeleteUser                DeleteUserHandler
	SetPassword               SetPasswordHandler
	SetTenantAccess           SetTenantAccessHandler
	IssueServiceAccountToken  IssueServiceAccountTokenHandler
	RevokeServiceAccountToken RevokeServiceAccountTokenHandler
	SeedManagedRoles          SeedManagedRolesHandler
	CreateRole                CreateRoleHandler
	UpdateRole                UpdateRoleHandler
	DeleteRole                DeleteRoleHandler
	CreateBinding             CreateBindingHandler
	CreateBindings            CreateBindingsHandler
	DeleteBinding             DeleteBindingHandler
	CreateGroup               CreateGroupHandler
	UpdateGroup               UpdateGroupHandler
	DeleteGroup               DeleteGroupHandler
	SetGroupMember            SetGroupMemberHandler
	RemoveGroupMember         RemoveGroupMemberHandler
	SetMemberGroups           SetMemberGroupsHandler
	ChangeInstance            ChangeInstanceSettingsHandler
	ErasePersonalData         ErasePersonalDataHandler
	CreateTenant              CreateTenantHandler
	UpdateTenant              UpdateTenantHandler
	DeleteTenant              DeleteTenantHandler
	SetSuperadmin             SetSuperadminHandler
	SetRestricted             SetRestrictedHandler

	CreateInvitation       CreateInvitationHandler
	AcceptInvitation       AcceptInvitationHandler
	RegisterFromInvitation RegisterFromInvitationHandler
	DeleteInvitation       DeleteInvitationHandler

	// personal derives invitation tokens (InvitationToken).
	personal *privacy.Store
}

// ErrInvalidOption is returned by New for an option with a bad value.
var ErrInvalidOption = errors.New("commands: invalid option")

type config struct {
	cacheSize int
	retries   int
	now       func() time.Time
	authz     auth.Authorizer
	personal  *privacy.Store
}

// Option configures New.
type Option func(*config) error

// WithCacheSize bounds the write-side aggregate cache (default 100000 aggregates).
func WithCacheSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: cache size %d", ErrInvalidOption, n)
		}
		c.cacheSize = n
		return nil
	}
}

// WithRetries sets how often a command is retried after a concurrent change (default 5).
func WithRetries(n int) Option {
	return func(c *config) error {
		if n < 0 || n > 100 {
			return fmt.Errorf("%w: retries %d", ErrInvalidOption, n)
		}
		c.retries = n
		return nil
	}
}

// WithClock sets the clock used for expiry decisions (tests).
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalidOption)
		}
		c.now = now
		return nil
	}
}

// WithAuthorizer sets what decides whether a caller may run a command;
// the server passes its directory's model. Without it only the operator's
// own principal (auth.System) may run commands.
func WithAuthorizer(a auth.Authorizer) Option {
	return func(c *config) error {
		if a == nil {
			return fmt.Errorf("%w: nil authorizer", ErrInvalidOption)
		}
		c.authz = a
		return nil
	}
}

// WithPersonalData sets the key store that seals users' personal data
// and blinds reservation subjects. Without it, commands that write or read
// a user's personal data fail with ErrUnavailable.
func WithPersonalData(s *privacy.Store) Option {
	return func(c *config) error {
		if s == nil {
			return fmt.Errorf("%w: nil personal data store", ErrInvalidOption)
		}
		c.personal = s
		return nil
	}
}

// New returns the command handlers over store.
func New(store *events.Store, opts ...Option) (*Commands, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidOption)
	}
	cfg := config{cacheSize: 100_000, retries: 5, now: time.Now}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	r := newRepository(store, cfg.cacheSize, cfg.retries, cfg.personal)
	b := base{repo: r, now: cfg.now, authz: cfg.authz, personal: cfg.personal}
	return &Commands{
		Bootstrap:                 BootstrapHandler{b},
		ChangeTenantSettings:      ChangeTenantSettingsHandler{b},
		CreateServiceAccount:      CreateServiceAccountHandler{b},
		UpdateServiceAccount:      UpdateServiceAccountHandler{b},
		DeleteServiceAccount:      DeleteServiceAccountHandler{b},
		CreateCredential:          CreateCredentialHandler{actAs{b}},
		DeleteCredential:          DeleteCredentialHandler{b},
		RevokeAccessToken:         RevokeAccessTokenHandler{b},
		IssueAPIToken:             IssueAPITokenHandler{b},
		RevokeAPITokens:           RevokeAPITokensHandler{b},
		CreateUser:                CreateUserHandler{b},
		UpdateUser:                UpdateUserHandler{b},
		ReplaceUser:               ReplaceUserHandler{b},
		SetUserStatus:             SetUserStatusHandler{b},
		DeleteUser:                DeleteUserHandler{b},
		SetPassword:               SetPasswordHandler{b},
		SetTenantAccess:           SetTenantAccessHandler{b},
		IssueServiceAccountToken:  IssueServiceAccountTokenHandler{actAs{b}},
		RevokeServiceAccountToken: RevokeServiceAccountTokenHandler{b},
		SeedManagedRoles:          SeedManagedRolesHandler{b},
		CreateRole:                CreateRoleHandler{b},
		UpdateRole:                UpdateRoleHandler{b},
		DeleteRole:                DeleteRoleHandler{b},
		CreateBinding:             CreateBindingHandler{b},
		CreateBindings:            CreateBindingsHandler{b},
		DeleteBinding:             DeleteBindingHandler{b},
		CreateGroup:               CreateGroupHandler{b},
		UpdateGroup:               UpdateGroupHandler{b},
		DeleteGroup:               DeleteGroupHandler{b},
		SetGroupMember:            SetGroupMemberHandler{b},
		RemoveGroupMember:         RemoveGroupMemberHandler{b},
		SetMemberGroups:           SetMemberGroupsHandler{b},
		ChangeInstance:            ChangeInstanceSettingsHandler{b},
		ErasePersonalData:         ErasePersonalDataHandler{b},
		CreateTenant:              CreateTenantHandler{b},
		UpdateTenant:              UpdateTenantHandler{b},
		DeleteTenant:              DeleteTenantHandler{b},
		SetSuperadmin:             SetSuperadminHandler{b},
		SetRestricted:             SetRestrictedHandler{b},

		CreateInvitation:       CreateInvitationHandler{b},
		AcceptInvitation:       AcceptInvitationHandler{b},
		RegisterFromInvitation: RegisterFromInvitationHandler{b},
		DeleteInvitation:       DeleteInvitationHandler{b},

		personal: cfg.personal,
	}, nil
}

// tenantMaxAge bounds how stale cached tenant settings may be when a
// command on another aggregate reads them: a settings change made through
// another replica applies here within this time.
const tenantMaxAge = 2 * time.Second

type base struct {
	repo     *repository
	now      func() time.Time
	authz    auth.Authorizer
	personal *privacy.Store
}

func (b base) tenant(ctx context.Context, id string) (*Tenant, uint64, error) {
	st, seq, err := b.repo.load(ctx, key{id, events.AggregateTenant, id}, tenantMaxAge, func() state { return newTenant(id) })
	if err != nil {
		return nil, 0, err
	}
	return st.(*Tenant), seq, nil
}

func (b base) serviceAccount(ctx context.Context, tenant, id string) (*ServiceAccount, key, uint64, error) {
	k := key{tenant, events.AggregateServiceAccount, id}
	if !events.ValidToken(id) {
		return newServiceAccount(tenant, id), k, 0, nil
	}
	st, seq, err := b.repo.load(ctx, k, 0, func() state { return newServiceAccount(tenant, id) })
	if err != nil {
		return nil, k, 0, err
	}
	return st.(*ServiceAccount), k, seq, nil
}

// claim records the reservation of a unique value for owner in change c.
// Uniqueness survives crashes because the claim and the event using the
// value go out in one JetStream atomic batch: both are stored or neither
// is. The claim subject is conditional on the reservation's last sequence,
// so two concurrent claims cannot both win.
//
// Personal values (usernames, emails) are reserved under a blinded
// subject (privacy.Store.Blind); logs from before it hold them under a
// bare hash, which is checked too: a value claimed there still
// conflicts, and one its owner holds there stays held (release frees it).
// Other values (service account names) are not personal and keep the
// bare hash.
func (b base) claim(ctx context.Context, c *change, tenant, kind, value, owner string) error {
	id, legacy, err := b.reservationIDs(kind, value)
	if err != nil {
		return err
	}
	if legacy != "" {
		old, _, _, err := b.reservation(ctx, tenant, legacy)
		if err != nil {
			return err
		}
		if old.owner == owner {
			return nil
		}
		if old.owner != "" {
			return ruleError(ErrAlreadyExists, kind, "%s %q is already taken", strings.ReplaceAll(kind, "_", " "), value)
		}
	}
	u, k, seq, err := b.reservation(ctx, tenant, id)
	if err != nil {
		return err
	}
	if u.owner != "" && u.owner != owner {
		return ruleError(ErrAlreadyExists, kind, "%s %q is already taken", strings.ReplaceAll(kind, "_", " "), value)
	}
	c.record(k, u, seq, events.UniqueKeyClaimed{Kind: kind, Owner: owner})
	return nil
}

// release records freeing a unique value owner holds in change c, under
// whichever subject (blinded or legacy) holds it; a value held by someone
// else (or no one) is left alone.
func (b base) release(ctx context.Context, c *change, tenant, kind, value, owner string) error {
	id, legacy, err := b.reservationIDs(kind, value)
	if err != nil {
		return err
	}
	for _, id := range []string{id, legacy} {
		if id == "" {
			continue
		}
		u, k, seq, err := b.reservation(ctx, tenant, id)
		if err != nil {
			return err
		}
		if u.owner == owner {
			c.record(k, u, seq, events.UniqueKeyReleased{Kind: kind, Owner: owner})
		}
	}
	return nil
}

// reservationIDs returns the subject token a value of kind is claimed
// under, and for personal kinds the bare-hash token older logs used.
func (b base) reservationIDs(kind, value string) (id, legacy string, err error) {
	switch kind {
	case uniqueUsername, uniqueEmail:
		if b.personal == nil {
			return "", "", errNoKeyStore
		}
		return b.personal.Blind(kind, value), uniqueID(kind, value), nil
	}
	return uniqueID(kind, value), "", nil
}

func (b base) reservation(ctx context.Context, tenant, id string) (*unique, key, uint64, error) {
	k := key{tenant, events.AggregateUnique, id}
	st, seq, err := b.repo.load(ctx, k, 0, func() state { return newUnique("") })
	if err != nil {
		return nil, k, 0, err
	}
	return st.(*unique), k, seq, nil
}

// errNoKeyStore refuses a command that needs personal data or
// reservations when New was given no key store.
var errNoKeyStore = fmt.Errorf("%w: no personal data key store configured", ErrUnavailable)

// sealPersonal makes sure user id has a data key (before any event that
// needs it is appended) and returns p sealed for an event of type typ.
func (b base) sealPersonal(ctx context.Context, id, typ string, p events.Personal) ([]byte, error) {
	if b.personal == nil {
		return nil, errNoKeyStore
	}
	if err := b.personal.Create(ctx, id); err != nil {
		if errors.Is(err, privacy.ErrErased) {
			return nil, ruleError(ErrInvalid, "", "the personal data of user %s was erased", id)
		}
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	enc, err := b.personal.Seal(ctx, id, typ, p)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return enc, nil
}

// uniqueID maps a unique value to a bare-hash subject token: values
// (names, emails) may hold characters subjects cannot, and hashing keeps
// them out of subject names. Anyone who guesses a value can compute it:
// personal values are claimed blinded instead (reservationIDs), and
// this token is only read for them, for logs from before blinding.
func uniqueID(kind, value string) string {
	h := sha256.Sum256([]byte(kind + "\x00" + strings.ToLower(value)))
	return hex.EncodeToString(h[:16])
}
