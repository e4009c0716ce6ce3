package query

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

var (
	// ErrInvalidClient means client authentication failed: unknown client id,
	// malformed secret, service account disabled or deleted, or no unexpired
	// credential matches. Callers must not tell these cases apart to clients.
	ErrInvalidClient = errors.New("query: invalid client credentials")

	// ErrTokenRevoked means a correctly signed access token no longer grants
	// access: its service account is deleted or disabled, its credential is
	// deleted or expired, or the token itself was revoked.
	ErrTokenRevoked = errors.New("query: access token revoked")

	// ErrDirectoryLoading means the directory is still replaying the log
	// (a replica starting): it cannot yet tell a valid credential from one
	// revoked since. Callers answer "unavailable, retry", never "valid".
	ErrDirectoryLoading = errors.New("query: principal directory is still loading")

	// ErrInvalidPassword means HTTP Basic credentials failed: unknown
	// username or email, wrong password, no password set, or the user is
	// disabled. Callers must not tell these cases apart to clients.
	ErrInvalidPassword = errors.New("query: invalid username or password")

	// ErrInvalidAPIToken means a personal API token is malformed, unknown or
	// expired, or its user is gone.
	ErrInvalidAPIToken = errors.New("query: invalid API token")

	// ErrPasswordBusy means as many password checks as the directory
	// allows at once are running: argon2id takes 19 MiB and tens of
	// milliseconds each, so unbounded parallel attempts would exhaust the
	// process (and run ahead of the throttles). Callers answer "retry".
	ErrPasswordBusy = errors.New("query: too many password checks at once")
)

// maxApplyFailures bounds the failures a Directory remembers.
const maxApplyFailures = 100

// revocationSweep is how often Run forgets revocations of expired tokens.
const revocationSweep = time.Minute

// ApplyFailure is an event the directory could not fold.
type ApplyFailure struct {
	Sequence uint64
	Type     string
	Err      error
}

type dirCredential struct {
	id       string
	verifier [sha256.Size]byte
	expires  time.Time
}

type dirServiceAccount struct {
	id     string
	tenant string
	// otherClientID is the client id when it is not auth.PrefixClientID
	// and the id, as every client id the commands make is: those need
	// neither a copy nor an entry in Directory.clients.
	otherClientID string
	scope         events.Scope
	roles         []string
	active        bool
	creds         []dirCredential
	// generation counts the times the account was disabled or lost a role.
	// Access tokens carry the generation they were issued at and are
	// refused once it moved on, so re-enabling the account or granting the
	// role again does not revive tokens issued before.
	generation uint64
	// revoked maps a revoked token id to the token's expiry. Keyed per
	// service account so one tenant can never revoke another's tokens.
	revoked map[string]time.Time
	// bindings are the account's roles as principal bindings, set by
	// Directory.rebuild on every change of roles and shared by every
	// account with the same tenant, scope and roles. Never written: len
	// == cap, so a caller's append cannot write into them.
	bindings []auth.Binding
	// bound holds the roles bound to the account by BindingCreated, by
	// binding id; nil for most accounts.
	bound map[string]auth.Binding
	// name is the client-chosen name, "" if none.
	name string
}

// principal returns the account as a principal, without allocating:
// authentication hands one out per request.
func (sa *dirServiceAccount) principal() auth.Principal {
	return auth.Principal{ID: sa.id, Kind: auth.KindServiceAccount, Tenant: sa.tenant, Bindings: sa.bindings}
}

// rebuild sets sa's bindings from its tenant, scope and roles, sharing
// the list of any account that has the same (key is shareKey(sa)).
// Callers hold mu.
func (d *Directory) rebuild(sa *dirServiceAccount, key string) {
	if b, ok := d.bindingSets[key]; ok && len(sa.bound) == 0 {
		sa.bindings = b
		return
	}
	b := make([]auth.Binding, 0, len(sa.roles)+len(sa.bound))
	for _, r := range sa.roles {
		b = append(b, auth.Binding{Role: r, Tenant: sa.tenant, Scope: sa.scope})
	}
	if len(sa.bound) > 0 {
		// Bindings of their own: not shared.
		for _, id := range slices.Sorted(maps.Keys(sa.bound)) {
			if x := sa.bound[id]; !slices.Contains(b, x) {
				b = append(b, x)
			}
		}
		sa.bindings = slices.Clip(b)
		return
	}
	sa.bindings = slices.Clip(b)
	d.bindingSets[key] = sa.bindings
}

// name returns s, or an equal string the directory already holds: tenant
// ids, scope levels and targets and role ids repeat across most accounts,
// and each copy would cost an allocation per account. Callers hold mu.
func (d *Directory) name(s string) string {
	if n, ok := d.names[s]; ok {
		return n
	}
	n := strings.Clone(s)
	d.names[n] = n
	return n
}

// ownScope returns s with the directory's copies of its strings.
func (d *Directory) ownScope(s events.Scope) events.Scope {
	return events.Scope{Level: d.name(s.Level), Target: d.name(s.Target)}
}

// ownNames returns ss with the directory's copies of its strings, as a
// list shared with every other caller that passed the same (role lists
// repeat across most accounts). Never write its elements; len == cap, so
// appending copies. Callers hold mu.
func (d *Directory) ownNames(ss []string) []string {
	key := strings.Join(ss, "\x00")
	if out, ok := d.nameLists[key]; ok {
		return out
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = d.name(s)
	}
	d.nameLists[strings.Clone(key)] = out
	return out
}

// dirAPIToken is an API token: a user's (personal) or a service
// account's, told apart by account.
type dirAPIToken struct {
	id string
	// owner is the user's or the service account's id.
	owner   string
	account bool
	expires *time.Time
}

type dirUser struct {
	id       string
	login    [2]string // lower-cased username and email, keys of Directory.logins
	active   bool
	verifier string // argon2id PHC string, or ""
	// verified caches successful password checks: keyed MAC of (id,
	// password) to when the entry expires. Dropped on a password change,
	// disable or delete; a check that ran argon2id meanwhile stores its
	// result only if the verifier it checked is still the user's.
	verified map[[32]byte]time.Time
	// tenants in the order access was granted; the first is the default.
	tenants    []string
	bindings   []auth.Binding
	superadmin bool
	// personalSeq is the sequence of the event login came from (0 for
	// none): snapshots keep it instead of the personal data itself.
	personalSeq uint64
}

func (u *dirUser) principal(tenant string) auth.Principal {
	return auth.Principal{ID: u.id, Kind: auth.KindUser, Tenant: tenant, Bindings: slices.Clip(u.bindings)}
}

// Directory is an in-memory read model of principals and their credentials,
// folded from the event log, that authenticates every request without a
// database round trip. All methods are safe for concurrent use; Apply must
// be called with events in stream order (Run does that).
//
// Returned principals share their Bindings with the directory: treat them
// as read-only (appending is safe, writing elements is not).
type Directory struct {
	// loading is set while Run replays the log: answers would reflect a
	// past state (deleted credentials, revoked tokens still valid).
	loading   atomic.Bool
	mu        sync.RWMutex
	seq       uint64
	accounts  map[string]*dirServiceAccount // by service account id
	clients   map[string]*dirServiceAccount // by client id
	users     map[string]*dirUser           // by user id
	tokens    map[string]dirAPIToken        // by verifier (hex SHA-256)
	tokenIDs  map[string]string             // verifier by token id
	logins    map[string]*dirUser           // by lower-cased username and email
	tenantIDs map[string]struct{}
	// model holds roles, bindings, tenant access and principals for
	// decisions; it changes with the directory, under mu.
	model *authz.Model
	// names, bindingSets, roleSets and nameLists hold what many accounts
	// share (see name, rebuild, putAccount and ownNames). Both only grow, with the distinct values ever seen: a few
	// per tenant, unless every account has a scope of its own.
	names       map[string]string
	bindingSets map[string][]auth.Binding
	roleSets    map[string]*authz.RoleSet
	nameLists   map[string][]string
	// boundTo finds the account a BindingCreated bound a role to.
	boundTo map[string]*dirServiceAccount
	// named finds an account by tenant and chosen name.
	named    map[[2]string]*dirServiceAccount
	macKey   [32]byte // per process, for the password cache
	failures []ApplyFailure
	// uses, when set, learns of every successful API token check.
	uses *TokenUses
	// hashing holds a slot per argon2id check running.
	hashing chan struct{}
	// personal reads usernames and emails out of user events (nil: only
	// plaintext ones, from before encryption, are read).
	personal events.PersonalReader

	// accountTokens are the verifiers of service accounts' API tokens, by
	// account id, dropped with the account: kept apart so that accounts
	// without tokens (most) pay nothing for them. Made on first use.
	accountTokens map[string][]string
}

// DirectoryOption configures NewDirectory.
type DirectoryOption func(*Directory)

// WithPersonal sets what reads users' encrypted usernames and emails, for
// logins by name; without it only events from before encryption give
// logins.
func WithPersonal(r events.PersonalReader) DirectoryOption {
	return func(d *Directory) { d.personal = r }
}

// Loading makes a new directory answer ErrDirectoryLoading, as it does
// while Run replays the log, from the start until Run has caught up: a
// server may then serve while it loads a snapshot, without judging
// anybody by an empty directory.
func Loading() DirectoryOption {
	return func(d *Directory) { d.loading.Store(true) }
}

// maxPasswordChecks bounds the argon2id checks running at once.
var maxPasswordChecks = max(2, runtime.NumCPU())

// TrackTokenUse makes the directory tell u of every personal API token
// that authenticates. Call it before serving.
func (d *Directory) TrackTokenUse(u *TokenUses) { d.uses = u }

// NewDirectory returns an empty directory at sequence 0.
func NewDirectory(opts ...DirectoryOption) *Directory {
	d := &Directory{
		accounts:    map[string]*dirServiceAccount{},
		clients:     map[string]*dirServiceAccount{},
		users:       map[string]*dirUser{},
		tokens:      map[string]dirAPIToken{},
		tokenIDs:    map[string]string{},
		logins:      map[string]*dirUser{},
		tenantIDs:   map[string]struct{}{},
		model:       authz.NewModel(),
		names:       map[string]string{},
		bindingSets: map[string][]auth.Binding{},
		roleSets:    map[string]*authz.RoleSet{},
		nameLists:   map[string][]string{},
		boundTo:     map[string]*dirServiceAccount{},
		named:       map[[2]string]*dirServiceAccount{},
		hashing:     make(chan struct{}, maxPasswordChecks),
	}
	if _, err := rand.Read(d.macKey[:]); err != nil {
		panic("query: crypto/rand failed: " + err.Error())
	}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Sequence returns the stream sequence of the last event applied.
func (d *Directory) Sequence() uint64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.seq
}

// Readiness is the directory's part of a server's readiness: an error
// while it loads the log (its answers would reflect a past state), else a
// reason to report the server degraded (events it could not apply: a
// skipped credential deletion keeps a secret working), else "".
func (d *Directory) Readiness() (degraded string, err error) {
	if d.loading.Load() {
		return "", errors.New("directory still loading the log")
	}
	if f := d.Failures(); len(f) > 0 {
		last := f[len(f)-1]
		return fmt.Sprintf("directory: %d event(s) could not be applied, last at sequence %d (%s): %v", len(f), last.Sequence, last.Type, last.Err), nil
	}
	return "", nil
}

// Failures returns the most recent events the directory could not decode
// (up to 100), oldest first. Such an event is skipped, not retried: the
// operator must look, since a skipped credential deletion keeps a secret
// working.
func (d *Directory) Failures() []ApplyFailure {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return slices.Clone(d.failures)
}

// Apply folds one event. Events must arrive in stream order; an event at or
// below the current sequence is ignored, so redelivery is harmless (an
// envelope with Sequence 0, not read from a stream, is applied without
// moving the position). Types
// the directory does not use are skipped; an undecodable event is recorded
// (see Failures) and skipped.
func (d *Directory) Apply(env events.Envelope) {
	// A user's logins may need a key-store read: done before taking the
	// lock, so a slow read never holds up authentication.
	var logins events.Personal
	var loginsErr error
	if env.Type == (events.UserCreated{}).EventType() || env.Type == (events.UserUpdated{}).EventType() {
		if e, err := events.Decode(env); err == nil {
			logins, loginsErr = d.reveal(env, e)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if env.Sequence != 0 && env.Sequence <= d.seq {
		return
	}
	if env.Sequence != 0 {
		d.seq = env.Sequence
	}
	if !relevant(env.Type) {
		return
	}
	e, err := events.Decode(env)
	if err != nil {
		d.fail(env, err)
		return
	}
	switch e := e.(type) {
	case events.TenantCreated:
		d.tenantIDs[strings.Clone(env.Subject)] = struct{}{}
	case events.TenantDeleted:
		d.dropTenant(env.Subject)
	case events.RoleCreated:
		d.putRole(env, authz.Role{Name: e.Name, Managed: e.Managed, Default: e.Default, Rules: auth.RulesOf(e.Rules)})
	case events.RoleUpdated:
		r, ok := d.model.Role(authz.RoleKey(env.Tenant, env.Subject))
		if !ok {
			return
		}
		if e.Name != nil {
			r.Name = *e.Name
		}
		if e.Default != nil {
			r.Default = *e.Default
		}
		if e.Rules != nil {
			r.Rules = auth.RulesOf(*e.Rules)
		}
		d.putRole(env, r)
	case events.RoleDeleted:
		d.model.DeleteRole(authz.RoleKey(env.Tenant, env.Subject))
	case events.BindingCreated:
		id := strings.Clone(env.Subject)
		d.bind(env, id, e.Role, strings.Clone(e.SubjectID), e.Scope)
		// An account's principal lists these roles too, so its access
		// tokens can name them in their scope.
		if sa := d.accounts[e.SubjectID]; e.SubjectKind == events.SubjectServiceAccount && sa != nil && sa.tenant == env.Tenant {
			if sa.bound == nil {
				sa.bound = map[string]auth.Binding{}
			}
			sa.bound[id] = auth.Binding{Role: d.name(e.Role), Tenant: sa.tenant, Scope: events.Scope{Level: d.name(e.Scope.Level), Target: d.name(e.Scope.Target)}}
			d.boundTo[id] = sa
			d.rebuild(sa, shareKey(sa))
		}
	case events.BindingDeleted:
		d.model.Unbind(env.Subject)
		if sa := d.boundTo[env.Subject]; sa != nil {
			delete(sa.bound, env.Subject)
			delete(d.boundTo, env.Subject)
			d.rebuild(sa, shareKey(sa))
		}
	case events.GroupDeleted:
		d.model.RemoveGroup(env.Subject)
	case events.GroupMemberSet:
		ms := authz.Member
		if e.Membership == events.MembershipOwner {
			ms = authz.Owner
		}
		d.model.SetMember(strings.Clone(env.Subject), strings.Clone(e.MemberID), ms)
	case events.GroupMemberRemoved:
		d.model.RemoveMember(env.Subject, e.MemberID)
	case events.UserCreated:
		if _, ok := d.users[env.Subject]; !ok {
			id := strings.Clone(env.Subject)
			u := &dirUser{id: id, active: e.Status != events.UserStatusDisabled, verifier: strings.Clone(e.PasswordVerifier), superadmin: e.Superadmin, personalSeq: env.Sequence}
			d.users[id] = u
			d.indexRevealed(env, u, logins, loginsErr)
			d.putUser(u)
		}
	case events.UserUpdated:
		if u := d.users[env.Subject]; u != nil {
			u.personalSeq = env.Sequence
			d.indexRevealed(env, u, logins, loginsErr)
		}
	case events.PersonalDataErased:
		if u := d.users[env.Subject]; u != nil {
			u.personalSeq = 0
			d.index(u, events.Personal{})
		}
	case events.UserDisabled:
		if u := d.users[env.Subject]; u != nil {
			u.active, u.verified = false, nil
			d.putUser(u)
		}
	case events.UserEnabled:
		if u := d.users[env.Subject]; u != nil {
			u.active = true
			d.putUser(u)
		}
	case events.PasswordChanged:
		if u := d.users[env.Subject]; u != nil {
			u.verifier, u.verified = strings.Clone(e.Verifier), nil
		}
	case events.UserDeleted:
		if u := d.users[env.Subject]; u != nil {
			d.index(u, events.Personal{})
			u.active, u.verified = false, nil
			delete(d.users, u.id)
			d.model.RemovePrincipal(u.id)
			for v, t := range d.tokens {
				if !t.account && t.owner == u.id {
					delete(d.tokens, v)
					delete(d.tokenIDs, t.id)
				}
			}
		}
	case events.UserTenantAccessRevoked:
		if u := d.users[env.Subject]; u != nil {
			u.tenants = slices.DeleteFunc(slices.Clone(u.tenants), func(t string) bool { return t == e.Tenant })
			d.model.RevokeTenant(u.id, e.Tenant)
		}
	case events.UserTenantAccessGranted:
		if u := d.users[env.Subject]; u != nil && !slices.Contains(u.tenants, e.Tenant) {
			u.tenants = append(u.tenants, strings.Clone(e.Tenant))
			d.model.GrantTenant(u.id, u.tenants[len(u.tenants)-1])
		}
	case events.UserRoleGranted:
		if u := d.users[env.Subject]; u != nil {
			b := auth.Binding{Role: strings.Clone(e.Role), Tenant: strings.Clone(e.Tenant), Scope: ownScope(e.Scope)}
			if !slices.Contains(u.bindings, b) {
				// Copy on write: principals handed out keep the old slice.
				u.bindings = append(slices.Clip(u.bindings), b)
			}
			if b.Role == auth.RoleSuperadmin && b.Scope.Level == events.ScopeInstance {
				u.superadmin = true
				d.putUser(u)
			} else {
				d.bind(events.Envelope{Tenant: b.Tenant}, "user/"+u.id+"/"+b.Tenant+"/"+b.Role+"/"+b.Scope.Level+"/"+b.Scope.Target, b.Role, u.id, b.Scope)
			}
		}
	case events.UserRoleRevoked:
		if u := d.users[env.Subject]; u != nil {
			d.revokeRole(u, e)
		}
	case events.APITokenIssued:
		v, id := strings.Clone(e.Verifier), strings.Clone(e.TokenID)
		if e.ServiceAccountToken() {
			if sa := d.account(env); sa != nil {
				d.tokens[v] = dirAPIToken{id: id, owner: sa.id, account: true, expires: e.ExpiresAt}
				d.tokenIDs[id] = v
				if d.accountTokens == nil {
					d.accountTokens = map[string][]string{}
				}
				d.accountTokens[sa.id] = append(d.accountTokens[sa.id], v)
			}
		} else if u, ok := d.users[env.Subject]; ok {
			d.tokens[v] = dirAPIToken{id: id, owner: u.id, expires: e.ExpiresAt}
			d.tokenIDs[id] = v
		}
	case events.APITokenRevoked:
		v, ok := d.tokenIDs[e.TokenID]
		if !ok || d.tokens[v].owner != env.Subject {
			return
		}
		if t := d.tokens[v]; t.account {
			sa := d.account(env)
			if sa == nil {
				return
			}
			d.accountTokens[sa.id] = slices.DeleteFunc(d.accountTokens[sa.id], func(x string) bool { return x == v })
		}
		delete(d.tokens, v)
		delete(d.tokenIDs, e.TokenID)
	case events.ServiceAccountCreated:
		sa := &dirServiceAccount{
			id: strings.Clone(env.Subject), tenant: d.name(env.Tenant), scope: d.ownScope(e.Scope),
			roles: d.ownNames(e.Roles), active: e.Status == statusActive,
		}
		key := shareKey(sa)
		d.rebuild(sa, key)
		d.accounts[sa.id] = sa
		if e.ClientID != auth.PrefixClientID+sa.id {
			sa.otherClientID = strings.Clone(e.ClientID)
			d.clients[sa.otherClientID] = sa
		}
		if e.Name != "" {
			sa.name = strings.Clone(e.Name)
			d.named[[2]string{sa.tenant, sa.name}] = sa
		}
		d.putAccount(sa, key)
	case events.ServiceAccountUpdated:
		sa := d.account(env)
		if sa == nil {
			return
		}
		// From version 2 on, the command records AccessTokensInvalidated
		// when a change takes rights away; version 1 leaves it to readers.
		inferInvalidation := env.Version < 2
		if e.Status != nil {
			if inferInvalidation && *e.Status != statusActive && sa.active {
				sa.generation++
			}
			sa.active = *e.Status == statusActive
		}
		if e.Roles != nil {
			for _, r := range sa.roles {
				if inferInvalidation && !slices.Contains(*e.Roles, r) {
					sa.generation++
					break
				}
			}
			sa.roles = d.ownNames(*e.Roles)
		}
		if e.Status != nil || e.Roles != nil {
			key := shareKey(sa)
			if e.Roles != nil {
				d.rebuild(sa, key)
			}
			d.putAccount(sa, key)
		}
	case events.AccessTokensInvalidated:
		if sa := d.account(env); sa != nil {
			sa.generation++
		}
	case events.ServiceAccountDeleted:
		if sa := d.account(env); sa != nil {
			d.removeAccount(sa)
		}
	case events.CredentialCreated:
		sa := d.account(env)
		if sa == nil {
			return
		}
		var v [sha256.Size]byte
		if n, err := hex.Decode(v[:], []byte(e.Verifier)); err != nil || n != len(v) {
			d.fail(env, fmt.Errorf("credential %s: malformed verifier", e.CredentialID))
			return
		}
		sa.creds = append(sa.creds, dirCredential{id: strings.Clone(e.CredentialID), verifier: v, expires: e.ExpiresAt})
	case events.CredentialDeleted:
		if sa := d.account(env); sa != nil {
			sa.creds = slices.DeleteFunc(sa.creds, func(c dirCredential) bool { return c.id == e.CredentialID })
		}
	case events.AccessTokenRevoked:
		sa := d.account(env)
		if sa == nil {
			return
		}
		if sa.revoked == nil {
			sa.revoked = map[string]time.Time{}
		}
		// Revocations of expired tokens are forgotten by Run's sweep, by
		// this replica's own clock: the writer's clock may run ahead.
		sa.revoked[strings.Clone(e.TokenID)] = e.ExpiresAt
	}
}

// Decoded events share their message's buffer (events decodes without
// copying strings); the directory keeps what it stores for the life of the
// process, so it copies those strings rather than pin whole messages.

func ownScope(s events.Scope) events.Scope {
	return events.Scope{Level: strings.Clone(s.Level), Target: strings.Clone(s.Target)}
}

func ownAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.Clone(s)
	}
	return out
}

// statusActive mirrors commands.StatusActive; query must not import commands.
const statusActive = "active"

func relevant(typ string) bool {
	switch typ {
	case events.TenantCreated{}.EventType(),
		events.RoleCreated{}.EventType(),
		events.RoleUpdated{}.EventType(),
		events.RoleDeleted{}.EventType(),
		events.BindingCreated{}.EventType(),
		events.BindingDeleted{}.EventType(),
		events.AccessTokensInvalidated{}.EventType(),
		events.GroupDeleted{}.EventType(),
		events.GroupMemberSet{}.EventType(),
		events.GroupMemberRemoved{}.EventType(),
		events.UserCreated{}.EventType(),
		events.UserUpdated{}.EventType(),
		events.PersonalDataErased{}.EventType(),
		events.UserDisabled{}.EventType(),
		events.UserEnabled{}.EventType(),
		events.UserDeleted{}.EventType(),
		events.PasswordChanged{}.EventType(),
		events.UserTenantAccessRevoked{}.EventType(),
		events.UserTenantAccessGranted{}.EventType(),
		events.UserRoleGranted{}.EventType(),
		events.UserRoleRevoked{}.EventType(),
		events.TenantDeleted{}.EventType(),
		events.APITokenIssued{}.EventType(),
		events.APITokenRevoked{}.EventType(),
		events.ServiceAccountCreated{}.EventType(),
		events.ServiceAccountUpdated{}.EventType(),
		events.ServiceAccountDeleted{}.EventType(),
		events.CredentialCreated{}.EventType(),
		events.CredentialDeleted{}.EventType(),
		events.AccessTokenRevoked{}.EventType():
		return true
	}
	return false
}

// putUser tells the model what it needs of u besides bindings.
func (d *Directory) putUser(u *dirUser) {
	d.model.PutPrincipal(authz.Principal{ID: u.id, Kind: authz.KindUser, Superadmin: u.superadmin, Disabled: !u.active})
}

// putRole puts the role an event is about into the model.
func (d *Directory) putRole(env events.Envelope, r authz.Role) {
	r.ID, r.Tenant = authz.RoleKey(env.Tenant, env.Subject), strings.Clone(env.Tenant)
	r.Name = strings.Clone(r.Name)
	for i := range r.Rules {
		r.Rules[i].Actions = ownAll(r.Rules[i].Actions)
		if r.Rules[i].Resources != nil {
			r.Rules[i].Resources = ownAll(r.Rules[i].Resources)
		}
	}
	if err := d.model.PutRole(r); err != nil {
		d.fail(env, err)
	}
}

// bind binds role (an id in env's tenant) to subject at scope.
func (d *Directory) bind(env events.Envelope, id, role, subject string, scope events.Scope) {
	tenant := d.name(env.Tenant)
	b := authz.Binding{ID: id, Role: d.name(authz.RoleKey(tenant, role)), Subject: subject, Scope: auth.ScopeOf(tenant, d.ownScope(scope))}
	if err := d.model.Bind(b); err != nil {
		d.fail(env, err)
	}
}

// shareKey names what accounts with the same tenant, scope and roles share
// (their bindings, their role set): computed once per change, it is the
// key of both rebuild and putAccount.
func shareKey(sa *dirServiceAccount) string {
	return sa.tenant + "\x00" + sa.scope.Level + "\x00" + sa.scope.Target + "\x00" + strings.Join(sa.roles, "\x00")
}

// putAccount tells the model of sa, key being shareKey(sa), with its role list as the principal's
// own roles at its scope: a set shared by every account with the same
// tenant, scope and roles. Callers hold mu.
func (d *Directory) putAccount(sa *dirServiceAccount, key string) {
	own, ok := d.roleSets[key]
	if !ok {
		own = &authz.RoleSet{Scope: auth.ScopeOf(sa.tenant, sa.scope), Roles: make([]string, len(sa.roles))}
		for i, r := range sa.roles {
			own.Roles[i] = d.name(authz.RoleKey(sa.tenant, r))
		}
		d.roleSets[key] = own
	}
	d.model.PutPrincipal(authz.Principal{ID: sa.id, Kind: authz.KindServiceAccount, Tenant: sa.tenant, Disabled: !sa.active, Own: own})
}

// client returns the account whose client id is clientID, or nil.
// Callers hold mu.
func (d *Directory) client(clientID string) *dirServiceAccount {
	if id, ok := strings.CutPrefix(clientID, auth.PrefixClientID); ok {
		if sa := d.accounts[id]; sa != nil && sa.otherClientID == "" {
			return sa
		}
	}
	return d.clients[clientID]
}

// Authorizer returns the directory's authorization model. It is as
// current as the directory: a caller that waited for the directory to
// reach a write's sequence decides with that write applied.
func (d *Directory) Authorizer() *authz.Model { return d.model }

// Tenants returns the ids of every tenant created, sorted.
func (d *Directory) Tenants() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return slices.Sorted(maps.Keys(d.tenantIDs))
}

// account returns the live service account an event is about, or nil. The
// tenant must match too: an id alone must never reach across tenants.
func (d *Directory) account(env events.Envelope) *dirServiceAccount {
	sa := d.accounts[env.Subject]
	if sa == nil || sa.tenant != env.Tenant {
		return nil
	}
	return sa
}

func (d *Directory) fail(env events.Envelope, err error) {
	if len(d.failures) == maxApplyFailures {
		d.failures = slices.Delete(d.failures, 0, 1)
	}
	d.failures = append(d.failures, ApplyFailure{Sequence: env.Sequence, Type: env.Type, Err: err})
}

// forgetExpiredRevocations drops revocations of tokens that expired a
// sweep interval before now by this replica's clock: Verify rejects those
// tokens on expiry alone.
func (d *Directory) forgetExpiredRevocations(now time.Time) {
	// A token is refused from its expiry on by this clock; the margin
	// covers a token verified just before a sweep.
	before := now.Add(-revocationSweep)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, sa := range d.accounts {
		for id, exp := range sa.revoked {
			if exp.Before(before) {
				delete(sa.revoked, id)
			}
		}
	}
}

// Run follows the stream from the event after Sequence (the beginning for a
// new directory) until ctx ends: it applies each event, then calls advanced
// (when not nil) with its sequence, from one goroutine and in order. The
// returned channel is closed once the directory has applied everything the
// stream held when Run was called (at once for an empty stream). Run
// returns after starting the follower; an error means it did not start.
// Call Run once per directory (again only after it failed).
func (d *Directory) Run(ctx context.Context, store events.Log, advanced func(seq uint64)) (<-chan struct{}, error) {
	last, err := store.LastSequence(ctx)
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	ready := make(chan struct{})
	var once sync.Once
	d.loading.Store(true)
	markReady := func() {
		once.Do(func() {
			d.loading.Store(false)
			close(ready)
		})
	}
	from := d.Sequence()
	if last <= from {
		markReady()
	}
	if from > 0 && advanced != nil {
		// Loaded from a snapshot: writes up to here wait for nothing more.
		advanced(from)
	}
	_, err = store.Follow(ctx, events.Filter{StartSeq: from + 1}, func(env events.Envelope, err error) {
		if err != nil {
			d.mu.Lock()
			if env.Sequence > d.seq {
				d.seq = env.Sequence
			}
			d.fail(env, err)
			d.mu.Unlock()
		} else {
			d.Apply(env)
		}
		if advanced != nil && env.Sequence != 0 {
			advanced(env.Sequence)
		}
		if env.Sequence >= last {
			markReady()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	go func() {
		t := time.NewTicker(revocationSweep)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				d.forgetExpiredRevocations(now)
			}
		}
	}()
	return ready, nil
}

// Client is an authenticated OAuth2 client.
type Client struct {
	Principal auth.Principal
	// CredentialID is the credential whose secret matched.
	CredentialID string
	// Generation goes into the access token (AccessClaims.Generation).
	Generation uint64
}

// AuthenticateClient checks OAuth2 client credentials: the client id of a
// service account and one of its client secrets. It returns the service
// account's principal, the id of the credential that matched and the
// account's token generation. Every
// failure is ErrInvalidClient. The secret is compared in constant time
// with every unexpired credential, so timing does not reveal which one
// matched.
func (d *Directory) AuthenticateClient(clientID, secret string, now time.Time) (Client, error) {
	if d.loading.Load() {
		return Client{}, ErrDirectoryLoading
	}
	if auth.CheckFormat(auth.PrefixClientSecret, secret) != nil {
		return Client{}, fmt.Errorf("%w: malformed secret", ErrInvalidClient)
	}
	sum := sha256.Sum256([]byte(secret))
	d.mu.RLock()
	defer d.mu.RUnlock()
	sa := d.client(clientID)
	if sa == nil {
		return Client{}, fmt.Errorf("%w: unknown client", ErrInvalidClient)
	}
	matched := -1
	for i := range sa.creds {
		c := &sa.creds[i]
		// Same comparison as auth.Matches, but the hash is computed once
		// and the verifier was decoded when the event was applied.
		if c.expires.After(now) && subtle.ConstantTimeCompare(sum[:], c.verifier[:]) == 1 {
			matched = i
		}
	}
	if matched < 0 {
		return Client{}, fmt.Errorf("%w: no valid credential matches", ErrInvalidClient)
	}
	if !sa.active {
		return Client{}, fmt.Errorf("%w: service account disabled", ErrInvalidClient)
	}
	return Client{Principal: sa.principal(), CredentialID: sa.creds[matched].id, Generation: sa.generation}, nil
}

// AccessTokenPrincipal returns the principal of an access token whose
// signature and times were already verified (auth.Keys.Verify). It fails
// with ErrTokenRevoked when the token is past c.Expiry, the service account
// is deleted, disabled or not the token's client in the token's tenant, the
// credential the token was obtained with is deleted or expired, or the
// token was revoked. The principal holds only the roles named in the
// token's scope that the account still has.
func (d *Directory) AccessTokenPrincipal(c auth.AccessClaims, now time.Time) (auth.Principal, error) {
	if d.loading.Load() {
		return auth.Principal{}, ErrDirectoryLoading
	}
	if !now.Before(c.Expiry) {
		return auth.Principal{}, fmt.Errorf("%w: expired", ErrTokenRevoked)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	sa := d.accounts[c.Subject]
	if sa == nil || sa.tenant != c.Tenant || d.client(c.ClientID) != sa {
		return auth.Principal{}, fmt.Errorf("%w: service account gone", ErrTokenRevoked)
	}
	if !sa.active {
		return auth.Principal{}, fmt.Errorf("%w: service account disabled", ErrTokenRevoked)
	}
	live := false
	for _, cr := range sa.creds {
		if cr.id == c.CredentialID && cr.expires.After(now) {
			live = true
			break
		}
	}
	if !live {
		return auth.Principal{}, fmt.Errorf("%w: credential deleted or expired", ErrTokenRevoked)
	}
	if _, ok := sa.revoked[c.ID]; ok {
		return auth.Principal{}, fmt.Errorf("%w: token revoked", ErrTokenRevoked)
	}
	if c.Generation != sa.generation {
		return auth.Principal{}, fmt.Errorf("%w: issued before the account was disabled or lost a role", ErrTokenRevoked)
	}
	return scoped(sa.principal(), c.Scope, sa.roles), nil
}

// scoped limits p to the roles its token's scope names: an access token
// acts with those and nothing else the account holds, bindings made after
// it was issued included. roles are the account's own role ids; when the
// scope names exactly them (the common case) nothing is allocated.
func scoped(p auth.Principal, scope string, roles []string) auth.Principal {
	all := true
	for _, b := range p.Bindings {
		if !hasScope(scope, b.Role) {
			all = false
			break
		}
	}
	if all && len(p.Bindings) == len(roles) {
		p.Roles = roles
		if p.Roles == nil {
			p.Roles = []string{}
		}
		return p
	}
	var kept []auth.Binding
	named := []string{}
	for _, b := range p.Bindings {
		if hasScope(scope, b.Role) {
			kept = append(kept, b)
			if !slices.Contains(named, b.Role) {
				named = append(named, b.Role)
			}
		}
	}
	p.Bindings, p.Roles = kept, named
	return p
}

// hasScope reports whether the space-separated scope list holds s.
func hasScope(scope, s string) bool {
	for scope != "" {
		var tok string
		tok, scope, _ = strings.Cut(scope, " ")
		if tok == s {
			return true
		}
	}
	return false
}

// APITokenPrincipal returns the principal of an API token (prefix
// khpat_): a user's personal token acts as the user in its first granted
// tenant, a service account's as the account in its tenant. A disabled
// or deleted owner's tokens fail. Failures are ErrInvalidAPIToken. The
// lookup is by the token's SHA-256: the token has 256 random bits, so the
// map lookup's timing reveals nothing usable.
func (d *Directory) APITokenPrincipal(token string, now time.Time) (auth.Principal, error) {
	if d.loading.Load() {
		return auth.Principal{}, ErrDirectoryLoading
	}
	if auth.CheckFormat(auth.PrefixAPIToken, token) != nil {
		return auth.Principal{}, fmt.Errorf("%w: malformed", ErrInvalidAPIToken)
	}
	v := auth.Verifier(token)
	d.mu.RLock()
	defer d.mu.RUnlock()
	t, ok := d.tokens[v]
	if !ok {
		return auth.Principal{}, fmt.Errorf("%w: unknown", ErrInvalidAPIToken)
	}
	if t.expires != nil && !t.expires.After(now) {
		return auth.Principal{}, fmt.Errorf("%w: expired", ErrInvalidAPIToken)
	}
	if t.account {
		sa := d.accounts[t.owner]
		switch {
		case sa == nil:
			return auth.Principal{}, fmt.Errorf("%w: service account gone", ErrInvalidAPIToken)
		case !sa.active:
			return auth.Principal{}, fmt.Errorf("%w: service account disabled", ErrInvalidAPIToken)
		}
		if d.uses != nil {
			d.uses.Touch(t.id, now)
		}
		return sa.principal(), nil
	}
	u := d.users[t.owner]
	if u == nil {
		return auth.Principal{}, fmt.Errorf("%w: user gone", ErrInvalidAPIToken)
	}
	if !u.active {
		return auth.Principal{}, fmt.Errorf("%w: user disabled", ErrInvalidAPIToken)
	}
	if d.uses != nil {
		d.uses.Touch(t.id, now)
	}
	return u.principal(firstTenant(u)), nil
}

// UserInTenant returns the user's principal acting in tenant, and false
// when the user is unknown or was never granted access to tenant.
func (d *Directory) UserInTenant(userID, tenant string) (auth.Principal, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	u := d.users[userID]
	if u == nil || !u.active || !slices.Contains(u.tenants, tenant) {
		return auth.Principal{}, false
	}
	return u.principal(tenant), true
}

// ServiceAccountTenant returns the tenant of a live service account.
func (d *Directory) ServiceAccountTenant(saID string) (string, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	sa := d.accounts[saID]
	if sa == nil {
		return "", false
	}
	return sa.tenant, true
}

// personalWait bounds a key-store read while applying a user event.
const personalWait = 5 * time.Second

// reveal returns the logins e carries; an erased user has none. It takes
// no lock: callers call it before taking mu.
func (d *Directory) reveal(env events.Envelope, e events.Event) (events.Personal, error) {
	var p events.Personal
	if d.personal == nil {
		switch e := e.(type) {
		case events.UserCreated:
			p = personalOf(e.Personal)
		case events.UserUpdated:
			p = personalOf(e.Personal)
		}
		return p, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), personalWait)
	defer cancel()
	p, err := d.personal.Personal(ctx, env.Subject, e)
	if err != nil || p.Erased {
		return events.Personal{}, err
	}
	return p, nil
}

// errLogins marks the failures of reading a user's logins through the key
// store: those may pass (the store was unreachable), so snapshots leave
// them out and loading one reads the logins, and fails, afresh.
var errLogins = errors.New("reading the user's logins")

// indexRevealed indexes u's logins as reveal read them, recording its
// failure (the user then has no logins). Callers hold mu.
func (d *Directory) indexRevealed(env events.Envelope, u *dirUser, p events.Personal, err error) {
	if err != nil {
		d.fail(env, fmt.Errorf("%w: %w", errLogins, err))
	}
	d.index(u, p)
}

func personalOf(p *events.Personal) events.Personal {
	if p == nil {
		return events.Personal{}
	}
	return *p
}

// index points the lower-cased username and email of p at u, dropping u's
// previous ones; an empty p just drops them.
func (d *Directory) index(u *dirUser, p events.Personal) {
	for _, l := range u.login {
		if d.logins[l] == u {
			delete(d.logins, l)
		}
	}
	u.login = [2]string{strings.ToLower(p.Username), strings.ToLower(p.Email)}
	for _, l := range u.login {
		if l != "" {
			d.logins[l] = u
		}
	}
}

// Password check cache bounds.
const (
	// PasswordCacheTTL is how long a successful password check is reused.
	PasswordCacheTTL = 2 * time.Minute
	// passwordCachePerUser bounds the cached checks per user (several
	// clients, or a password typed differently, each take one).
	passwordCachePerUser = 4
)

// dummyVerifier is checked against for an unknown login, so a miss costs
// what a wrong password costs and timing does not tell which logins exist.
var dummyVerifier = auth.HashPassword("keyhold dummy password", auth.DefaultPasswordParams)

// PasswordPrincipal checks HTTP Basic credentials: login is a username or
// an email (any case), password the user's password. It returns the user's
// principal acting in its first granted tenant. Every failure is
// ErrInvalidPassword. A successful check is remembered for
// PasswordCacheTTL, keyed by an HMAC (per-process key) of the user id and
// password, so repeated requests skip argon2id; the memory is dropped as
// soon as the directory applies a password change, disable or delete of
// the user.
func (d *Directory) PasswordPrincipal(login, password string, now time.Time) (auth.Principal, error) {
	if d.loading.Load() {
		return auth.Principal{}, ErrDirectoryLoading
	}
	login = strings.ToLower(login)
	d.mu.RLock()
	u := d.logins[login]
	if u == nil || !u.active || u.verifier == "" {
		d.mu.RUnlock()
		if !d.hashSlot() {
			return auth.Principal{}, ErrPasswordBusy
		}
		auth.PasswordMatches(password, dummyVerifier)
		<-d.hashing
		return auth.Principal{}, fmt.Errorf("%w: unknown, disabled or without password", ErrInvalidPassword)
	}
	mac := d.passwordMAC(u.id, password)
	if exp, ok := u.verified[mac]; ok && now.Before(exp) {
		p := u.principal(firstTenant(u))
		d.mu.RUnlock()
		return p, nil
	}
	verifier := u.verifier
	d.mu.RUnlock()

	if !d.hashSlot() {
		return auth.Principal{}, ErrPasswordBusy
	}
	matches := auth.PasswordMatches(password, verifier)
	<-d.hashing
	if !matches {
		return auth.Principal{}, fmt.Errorf("%w: wrong password", ErrInvalidPassword)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// The user may have changed while argon2id ran: the password must
	// still be theirs and they still active.
	if d.users[u.id] != u || !u.active || u.verifier != verifier {
		return auth.Principal{}, fmt.Errorf("%w: changed during the check", ErrInvalidPassword)
	}
	if u.verified == nil || len(u.verified) >= passwordCachePerUser {
		u.verified = map[[32]byte]time.Time{}
	}
	u.verified[mac] = now.Add(PasswordCacheTTL)
	return u.principal(firstTenant(u)), nil
}

// hashSlot takes a slot for an argon2id check, or reports that none is free.
func (d *Directory) hashSlot() bool {
	select {
	case d.hashing <- struct{}{}:
		return true
	default:
		return false
	}
}

func firstTenant(u *dirUser) string {
	if len(u.tenants) > 0 {
		return u.tenants[0]
	}
	return ""
}

func (d *Directory) passwordMAC(userID, password string) [32]byte {
	m := hmac.New(sha256.New, d.macKey[:])
	m.Write([]byte(userID))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}
