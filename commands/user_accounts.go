package commands

import (
	"context"
	"slices"
	"strings"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

// Unique kinds users claim at instance level.
const (
	uniqueUsername = "username"
	uniqueEmail    = "email"
)

// UserResult is a user's state after a command.
type UserResult struct {
	User     *User
	Sequence uint64
}

// CreateUser registers a user at instance level. Username and email are
// unique across the instance (email ignoring case; it is stored
// lower-cased).
type CreateUser struct {
	Meta
	Username    string
	Email       string
	FirstName   string
	LastName    string
	DisplayName string
	Superadmin  bool
	// Password is optional; when set it must meet auth.CheckPassword and
	// only its verifier is stored.
	Password string
	// Tenants the user gets access to at once.
	Tenants []string
	// Restricted marks the user restricted (events.UserRestrictionChanged).
	Restricted bool
}

// normalize lower-cases the email and makes it the username when none is
// given (Kestra's users sign in with their email).
func (cmd *CreateUser) normalize() {
	cmd.Email = strings.ToLower(cmd.Email)
	if cmd.Username == "" {
		cmd.Username = cmd.Email
	}
}

func (cmd CreateUser) personal() events.Personal {
	return events.Personal{Username: cmd.Username, Email: cmd.Email, FirstName: cmd.FirstName, LastName: cmd.LastName, DisplayName: cmd.DisplayName}
}

// Validate checks the command's input without reading the log; Handle
// checks it too.
func (cmd CreateUser) Validate() error {
	cmd.normalize()
	// The email first: it is the username when none is given.
	if err := validEmail(cmd.Email); err != nil {
		return err
	}
	if err := validPersonal(cmd.personal()); err != nil {
		return err
	}
	for _, t := range cmd.Tenants {
		if !ValidTenantID(t) {
			return invalid("tenants", "%q is not a tenant id", t)
		}
	}
	if cmd.Password != "" {
		return validPassword(cmd.Password, cmd.Username, cmd.Email)
	}
	return nil
}

func validPersonal(p events.Personal) error {
	if err := validUsername(p.Username); err != nil {
		return err
	}
	if err := validEmail(p.Email); err != nil {
		return err
	}
	opt := textKind{max: MaxDisplayName}
	for field, v := range map[string]string{"firstName": p.FirstName, "lastName": p.LastName, "displayName": p.DisplayName} {
		if err := validText(field, v, opt); err != nil {
			return err
		}
	}
	return nil
}

// CreateUserHandler handles CreateUser.
type CreateUserHandler struct{ base }

// Handle creates the user, claiming username and email in the same atomic
// batch. Only an instance superadmin may. A taken username or email is
// ErrAlreadyExists; an unknown tenant is ErrNotFound.
func (h CreateUserHandler) Handle(ctx context.Context, cmd CreateUser) (UserResult, error) {
	if err := h.mayManageUsers(cmd.Meta, authz.UsersCreate); err != nil {
		return UserResult{}, err
	}
	cmd.normalize()
	if err := cmd.Validate(); err != nil {
		return UserResult{}, err
	}
	id := cmd.IDSeed
	if id == "" {
		id = events.NewID()
	}
	var verifier string
	if cmd.Password != "" {
		verifier = auth.HashPassword(cmd.Password, auth.DefaultPasswordParams)
	}
	k := key{events.InstanceTenant, events.AggregateUser, id}
	var out *User
	seq, err := h.repo.execute(ctx, cmd.Meta, k, func(c *change) error {
		st, useq, err := h.repo.load(ctx, k, 0, func() state { return newUser(id) })
		if err != nil {
			return err
		}
		u := st.(*User)
		if u.exists || u.deleted {
			return ruleError(ErrAlreadyExists, "", "user %s already exists", id)
		}
		for _, t := range cmd.Tenants {
			tn, _, err := h.tenant(ctx, t)
			if err != nil {
				return err
			}
			if !tn.exists {
				return ruleError(ErrNotFound, "tenants", "tenant %q not found", t)
			}
		}
		for _, l := range logins(cmd.personal()) {
			if err := h.claim(ctx, c, events.InstanceTenant, l.kind, l.value, id); err != nil {
				return err
			}
		}
		if err := h.recordCreated(ctx, c, k, u, useq, cmd.personal(), cmd.Superadmin, verifier); err != nil {
			return err
		}
		if cmd.Superadmin {
			c.record(k, u, useq, events.UserRoleGranted{Role: auth.RoleSuperadmin, Scope: events.Scope{Level: events.ScopeInstance}})
		}
		for _, t := range cmd.Tenants {
			c.record(k, u, useq, events.UserTenantAccessGranted{Tenant: t})
		}
		if cmd.Restricted {
			c.record(k, u, useq, events.UserRestrictionChanged{Restricted: true})
		}
		out = u
		return nil
	})
	if err != nil {
		return UserResult{}, err
	}
	return UserResult{User: out, Sequence: seq}, nil
}

// UpdateUser changes a user's personal data; nil fields are unchanged.
type UpdateUser struct {
	Meta
	UserID      string
	Username    *string
	Email       *string
	FirstName   *string
	LastName    *string
	DisplayName *string
}

// UpdateUserHandler handles UpdateUser.
type UpdateUserHandler struct{ base }

// Handle records the new personal data. A changed username or email is
// claimed and the old one released in the same atomic batch. An instance
// superadmin may change anyone's, a user its own unless restricted; an
// unknown user is ErrNotFound.
func (h UpdateUserHandler) Handle(ctx context.Context, cmd UpdateUser) (UserResult, error) {
	decide, err := h.step(ctx, cmd)
	if err != nil {
		return UserResult{}, err
	}
	return h.change(ctx, cmd.Meta, cmd.UserID, decide)
}

// step checks cmd without the user and returns what it decides on the
// user under its lock.
func (h UpdateUserHandler) step(ctx context.Context, cmd UpdateUser) (userDecision, error) {
	self := cmd.Caller.Kind == auth.KindUser && cmd.Caller.ID == cmd.UserID
	if !self {
		if err := h.mayManageUsers(cmd.Meta, authz.UsersUpdate); err != nil {
			return nil, err
		}
	}
	if err := validUserID(cmd.UserID); err != nil {
		return nil, err
	}
	if cmd.Username == nil && cmd.Email == nil && cmd.FirstName == nil && cmd.LastName == nil && cmd.DisplayName == nil {
		return nil, invalid("", "nothing to update: give at least one field")
	}
	return func(c *change, k key, u *User, seq uint64) error {
		if err := h.restrictedSelf(cmd.Meta, u); err != nil {
			return err
		}
		if u.erased {
			return ruleError(ErrInvalid, "", "the personal data of user %s was erased", u.id)
		}
		p := u.personal
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&p.Username, cmd.Username)
		set(&p.Email, cmd.Email)
		p.Email = strings.ToLower(p.Email)
		set(&p.FirstName, cmd.FirstName)
		set(&p.LastName, cmd.LastName)
		set(&p.DisplayName, cmd.DisplayName)
		if err := validPersonal(p); err != nil {
			return err
		}
		before, after := logins(u.personal), logins(p)
		for _, l := range after {
			if !slices.ContainsFunc(before, l.same) {
				if err := h.claim(ctx, c, events.InstanceTenant, l.kind, l.value, u.id); err != nil {
					return err
				}
			}
		}
		for _, l := range before {
			if !slices.ContainsFunc(after, l.same) {
				if err := h.release(ctx, c, events.InstanceTenant, l.kind, l.value, u.id); err != nil {
					return err
				}
			}
		}
		enc, err := h.sealPersonal(ctx, u.id, events.UserUpdated{}.EventType(), p)
		if err != nil {
			return err
		}
		c.recordAs(k, u, seq, events.UserUpdated{PersonalEnc: enc}, events.UserUpdated{Personal: &p})
		return nil
	}, nil
}

// recordCreated records UserCreated for user u with personal data p,
// sealed in the log and in the clear for u.
func (b base) recordCreated(ctx context.Context, c *change, k key, u *User, seq uint64, p events.Personal, superadmin bool, verifier string) error {
	enc, err := b.sealPersonal(ctx, u.id, events.UserCreated{}.EventType(), p)
	if err != nil {
		return err
	}
	e := events.UserCreated{Status: events.UserStatusActive, Superadmin: superadmin, PasswordVerifier: verifier}
	stored, applied := e, e
	stored.PersonalEnc, applied.Personal = enc, &p
	c.recordAs(k, u, seq, stored, applied)
	return nil
}

// userDecision decides a change of user u (key k, at sequence seq) in c.
type userDecision func(c *change, k key, u *User, seq uint64) error

// change runs decide on an existing user under the user's lock.
func (b base) change(ctx context.Context, m Meta, id string, decide userDecision) (UserResult, error) {
	k := key{events.InstanceTenant, events.AggregateUser, id}
	var out *User
	seq, err := b.repo.execute(ctx, m, k, func(c *change) error {
		u, seq, err := b.existingUser(ctx, id)
		if err != nil {
			return err
		}
		out = u
		return decide(c, k, u, seq)
	})
	if err != nil {
		return UserResult{}, err
	}
	return UserResult{User: out, Sequence: seq}, nil
}

// SetUserStatus disables or enables a user. A disabled user cannot
// authenticate by any credential until enabled again.
type SetUserStatus struct {
	Meta
	UserID string
	// Status is events.UserStatusActive or events.UserStatusDisabled.
	Status string
}

// SetUserStatusHandler handles SetUserStatus.
type SetUserStatusHandler struct{ base }

// Handle records the change; a user already in that status appends
// nothing. Only an instance superadmin may, and not on themself.
func (h SetUserStatusHandler) Handle(ctx context.Context, cmd SetUserStatus) (UserResult, error) {
	if err := h.mayManageUsers(cmd.Meta, authz.UsersUpdate); err != nil {
		return UserResult{}, err
	}
	if err := validUserID(cmd.UserID); err != nil {
		return UserResult{}, err
	}
	var e events.Event
	switch cmd.Status {
	case events.UserStatusActive:
		e = events.UserEnabled{}
	case events.UserStatusDisabled:
		if cmd.Caller.Kind == auth.KindUser && cmd.Caller.ID == cmd.UserID {
			return UserResult{}, invalid("", "a user cannot disable themself")
		}
		e = events.UserDisabled{}
	default:
		return UserResult{}, invalid("status", "must be active or disabled")
	}
	return h.change(ctx, cmd.Meta, cmd.UserID, func(c *change, k key, u *User, seq uint64) error {
		if u.status != cmd.Status {
			c.record(k, u, seq, e)
		}
		return nil
	})
}

// DeleteUser removes a user with every credential and grant.
type DeleteUser struct {
	Meta
	UserID string
}

// login is a unique value a user signs in with.
type login struct{ kind, value string }

func (l login) same(o login) bool { return uniqueID(l.kind, l.value) == uniqueID(o.kind, o.value) }

// logins are the values p's user claims: its username and its email, and
// a username that looks like an email address in the email namespace
// too, since a login is matched as either: otherwise one user's username
// could be another's email, and signing in as it would reach the wrong one.
func logins(p events.Personal) []login {
	out := []login{{uniqueUsername, p.Username}, {uniqueEmail, p.Email}}
	if strings.Contains(p.Username, "@") && !strings.EqualFold(p.Username, p.Email) {
		out = append(out, login{uniqueEmail, p.Username})
	}
	return out
}

// DeleteUserHandler handles DeleteUser.
type DeleteUserHandler struct{ base }

// Handle deletes the user and releases its username and email in the same
// atomic batch, so they can be used again. Only an instance superadmin
// may, and not on themself; an unknown user is ErrNotFound.
func (h DeleteUserHandler) Handle(ctx context.Context, cmd DeleteUser) (UserResult, error) {
	if err := h.mayManageUsers(cmd.Meta, authz.UsersDelete); err != nil {
		return UserResult{}, err
	}
	if err := validUserID(cmd.UserID); err != nil {
		return UserResult{}, err
	}
	if cmd.Caller.Kind == auth.KindUser && cmd.Caller.ID == cmd.UserID {
		return UserResult{}, invalid("", "a user cannot delete themself")
	}
	return h.change(ctx, cmd.Meta, cmd.UserID, func(c *change, k key, u *User, seq uint64) error {
		if err := h.releaseLogins(ctx, c, u); err != nil {
			return err
		}
		c.record(k, u, seq, events.UserDeleted{})
		return nil
	})
}

// SetPassword sets a user's password.
type SetPassword struct {
	Meta
	UserID   string
	Password string
	// OldPassword is the current password. A user changing its own
	// password (without the right to manage users) must give it when it
	// has one, so a stolen session or token cannot take the account over.
	OldPassword string
}

// SetPasswordHandler handles SetPassword.
type SetPasswordHandler struct{ base }

// Handle checks the policy and records the new verifier; the old password
// stops working as soon as readers apply the event. An instance
// superadmin may set anyone's password, a user their own (unless
// restricted, and with its current one; see OldPassword). A wrong old
// password is ErrInvalid on field old_password.
func (h SetPasswordHandler) Handle(ctx context.Context, cmd SetPassword) (UserResult, error) {
	decide, err := h.step(cmd)
	if err != nil {
		return UserResult{}, err
	}
	return h.change(ctx, cmd.Meta, cmd.UserID, decide)
}

// step checks cmd without the user and returns what it decides on the
// user under its lock.
func (h SetPasswordHandler) step(cmd SetPassword) (userDecision, error) {
	self := cmd.Caller.Kind == auth.KindUser && cmd.Caller.ID == cmd.UserID
	if !self {
		if err := h.mayManageUsers(cmd.Meta, authz.UsersUpdate); err != nil {
			return nil, err
		}
	}
	if err := validUserID(cmd.UserID); err != nil {
		return nil, err
	}
	if cmd.Password == "" {
		return nil, invalid("password", "is required")
	}
	return func(c *change, k key, u *User, seq uint64) error {
		if err := h.restrictedSelf(cmd.Meta, u); err != nil {
			return err
		}
		if h.selfService(cmd.Meta, u.id) && u.verifier != "" && !auth.PasswordMatches(cmd.OldPassword, u.verifier) {
			return invalid("old_password", "does not match the current password")
		}
		if err := validPassword(cmd.Password, u.personal.Username, u.personal.Email); err != nil {
			return err
		}
		// Hashing inside decide costs one argon2id per attempt; retries
		// are rare and the policy needs the user's names.
		c.record(k, u, seq, events.PasswordChanged{Verifier: auth.HashPassword(cmd.Password, auth.DefaultPasswordParams)})
		return nil
	}, nil
}

// SetTenantAccess grants or revokes a user's access to a tenant.
type SetTenantAccess struct {
	Meta
	// UserID names the user; or, when empty, Email does (matched
	// ignoring case, as users sign in with it).
	UserID string
	Email  string
	Tenant string
	// Grant is true to grant access, false to revoke it.
	Grant bool
	// Strict makes a request that would change nothing an error: a grant
	// to a user who has access is ErrAlreadyExists, a revocation from one
	// who has none ErrNotFound.
	Strict bool
}

// SetTenantAccessHandler handles SetTenantAccess.
type SetTenantAccessHandler struct{ base }

// Handle records the grant or revocation; one that changes nothing
// appends nothing (or fails, when Strict). A superadmin may, and so may
// whoever holds iam.tenantAccess.create (to grant) or .delete (to revoke)
// in the tenant: the tenant's administrators. An unknown user, email or
// tenant is ErrNotFound. Revoking access takes the user's rights in the
// tenant with it: every credential of the user (passwords, API tokens)
// stops working there once readers apply the event. Granting it gives back
// the bindings and memberships the user kept in the tenant, so the caller
// must hold what they grant (ErrForbidden otherwise).
func (h SetTenantAccessHandler) Handle(ctx context.Context, cmd SetTenantAccess) (UserResult, error) {
	if cmd.UserID == "" && cmd.Email != "" {
		if err := h.check(cmd); err != nil {
			return UserResult{}, err
		}
		id, err := h.userByEmail(ctx, cmd.Email)
		if err != nil {
			return UserResult{}, err
		}
		cmd.UserID = id
	}
	decide, err := h.step(ctx, cmd)
	if err != nil {
		return UserResult{}, err
	}
	return h.change(ctx, cmd.Meta, cmd.UserID, decide)
}

// check decides from cmd alone whether the caller may manage access to
// its tenant.
func (h SetTenantAccessHandler) check(cmd SetTenantAccess) error {
	action := authz.TenantAccessCreate
	if !cmd.Grant {
		action = authz.TenantAccessDelete
	}
	if !ValidTenantID(cmd.Tenant) {
		return invalid("tenant", "must be a tenant id")
	}
	if !cmd.Caller.Can(h.authz, action, "", authz.TenantScope(cmd.Tenant)).Allowed {
		if err := h.mayManageUsers(cmd.Meta, authz.UsersUpdate); err != nil {
			return ruleError(ErrForbidden, "", "you may not manage access to tenant %q (%s)", cmd.Tenant, action)
		}
	}
	return nil
}

// step checks cmd (whose UserID is set) without the user and returns
// what it decides on the user under its lock.
func (h SetTenantAccessHandler) step(ctx context.Context, cmd SetTenantAccess) (userDecision, error) {
	if err := h.check(cmd); err != nil {
		return nil, err
	}
	if err := validUserID(cmd.UserID); err != nil {
		return nil, err
	}
	return func(c *change, k key, u *User, seq uint64) error {
		has := slices.Contains(u.tenants, cmd.Tenant)
		if cmd.Grant {
			// Checked even when the user has access: a deleted tenant
			// stays in its users' lists (TenantDeleted is the tenant's
			// event), and granting it must not look like success.
			t, _, err := h.tenant(ctx, cmd.Tenant)
			if err != nil {
				return err
			}
			if !t.exists {
				return ruleError(ErrNotFound, "tenant", "tenant %q not found", cmd.Tenant)
			}
		}
		switch {
		case cmd.Grant && !has:
			if err := h.mayRestore(cmd.Caller, u.id, cmd.Tenant); err != nil {
				return err
			}
			c.record(k, u, seq, events.UserTenantAccessGranted{Tenant: cmd.Tenant})
		case !cmd.Grant && has:
			c.record(k, u, seq, events.UserTenantAccessRevoked{Tenant: cmd.Tenant})
			return h.leaveTenant(ctx, c, u.id, cmd.Tenant)
		case cmd.Strict && cmd.Grant:
			return ruleError(ErrAlreadyExists, "", "user %s already has access to tenant %q", u.id, cmd.Tenant)
		case cmd.Strict:
			return ruleError(ErrNotFound, "", "user %s has no access to tenant %q", u.id, cmd.Tenant)
		}
		return nil
	}, nil
}

// userByEmail returns the id of the user who signs in with email, read
// from the email's reservation (the write side's record, under its
// blinded subject or, in logs from before blinding, its bare hash). No
// such user is ErrNotFound, whose message does not repeat the email.
func (b base) userByEmail(ctx context.Context, email string) (string, error) {
	email = strings.ToLower(email)
	if err := validEmail(email); err != nil {
		return "", err
	}
	id, legacy, err := b.reservationIDs(uniqueEmail, email)
	if err != nil {
		return "", err
	}
	for _, rid := range []string{id, legacy} {
		k := key{events.InstanceTenant, events.AggregateUnique, rid}
		u, _, seq, err := b.reservation(ctx, events.InstanceTenant, rid)
		if err != nil {
			return "", err
		}
		// Another replica may have claimed or released it since this
		// process cached it.
		stale, err := b.repo.stale(ctx, k, seq)
		if err != nil {
			return "", err
		}
		if stale {
			b.repo.forget(k)
			if u, _, _, err = b.reservation(ctx, events.InstanceTenant, rid); err != nil {
				return "", err
			}
		}
		if u.owner != "" {
			return u.owner, nil
		}
	}
	return "", ruleError(ErrNotFound, "email", "no user has this email")
}

// mayManageUsers decides an instance-level user action: superadmins (or
// an instance-level grant) only.
func (b base) mayManageUsers(m Meta, action string) error {
	if !m.Caller.Can(b.authz, action, "", authz.Instance).Allowed {
		return ruleError(ErrForbidden, "", "only a superadmin may manage users")
	}
	return nil
}

// releaseLogins records freeing every login u claimed (see logins) in
// change c; an erased user holds none any more.
func (b base) releaseLogins(ctx context.Context, c *change, u *User) error {
	if u.erased {
		return nil
	}
	for _, l := range logins(u.personal) {
		if err := b.release(ctx, c, events.InstanceTenant, l.kind, l.value, u.id); err != nil {
			return err
		}
	}
	return nil
}

// ReplaceUser sets a user's profile, flags and tenant access at once, as
// an administrator's form does: what it names is what the user has after.
type ReplaceUser struct {
	Meta
	UserID string
	// Email and the names are set when not nil.
	Email     *string
	FirstName *string
	LastName  *string
	// Password is set when not empty; empty keeps the current one.
	Password   string
	Superadmin bool
	Restricted bool
	// Tenants are the tenants the user has access to afterwards: access
	// to others is revoked.
	Tenants []string
}

// ReplaceUserHandler handles ReplaceUser.
type ReplaceUserHandler struct{ base }

// Handle applies every part of cmd in one atomic change of the user, each
// under the rules of the command that makes it alone (UpdateUser,
// SetPassword, SetSuperadmin, SetRestricted, SetTenantAccess): when any
// part is refused nothing is recorded. Errors about a tenant name
// tenants[i].
func (h ReplaceUserHandler) Handle(ctx context.Context, cmd ReplaceUser) (UserResult, error) {
	var steps []userDecision
	add := func(d userDecision, err error) error {
		if err == nil {
			steps = append(steps, d)
		}
		return err
	}
	if cmd.Email != nil || cmd.FirstName != nil || cmd.LastName != nil {
		if err := add(UpdateUserHandler(h).step(ctx, UpdateUser{Meta: cmd.Meta, UserID: cmd.UserID, Email: cmd.Email, FirstName: cmd.FirstName, LastName: cmd.LastName})); err != nil {
			return UserResult{}, err
		}
	}
	if cmd.Password != "" {
		if err := add(SetPasswordHandler(h).step(SetPassword{Meta: cmd.Meta, UserID: cmd.UserID, Password: cmd.Password})); err != nil {
			return UserResult{}, err
		}
	}
	if err := add(SetSuperadminHandler(h).step(SetSuperadmin{Meta: cmd.Meta, UserID: cmd.UserID, Superadmin: cmd.Superadmin})); err != nil {
		return UserResult{}, err
	}
	if err := add(SetRestrictedHandler(h).step(SetRestricted{Meta: cmd.Meta, UserID: cmd.UserID, Restricted: cmd.Restricted})); err != nil {
		return UserResult{}, err
	}
	access := SetTenantAccessHandler(h)
	for i, t := range cmd.Tenants {
		grant, err := access.step(ctx, SetTenantAccess{Meta: cmd.Meta, UserID: cmd.UserID, Tenant: t, Grant: true})
		if err != nil {
			return UserResult{}, itemFieldError(err, "tenants", i, "tenant")
		}
		steps = append(steps, func(c *change, k key, u *User, seq uint64) error {
			return itemFieldError(grant(c, k, u, seq), "tenants", i, "tenant")
		})
	}
	return h.change(ctx, cmd.Meta, cmd.UserID, func(c *change, k key, u *User, seq uint64) error {
		for _, decide := range steps {
			if err := decide(c, k, u, seq); err != nil {
				return err
			}
		}
		// Revocations are decided on the user as it is under the lock,
		// not as a read table had it.
		for _, t := range slices.Clone(u.tenants) {
			if slices.Contains(cmd.Tenants, t) {
				continue
			}
			revoke, err := access.step(ctx, SetTenantAccess{Meta: cmd.Meta, UserID: cmd.UserID, Tenant: t})
			if err != nil {
				return err
			}
			if err := revoke(c, k, u, seq); err != nil {
				return err
			}
		}
		return nil
	})
}
