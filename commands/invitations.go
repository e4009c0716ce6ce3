package commands

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

// Invitation limits. An acceptance records one binding per role and
// namespace and one membership per group in a single atomic batch, so
// they bound its size.
const (
	// DefaultInvitationLifetime is how long an invitation can be accepted;
	// the instance has no setting for it.
	DefaultInvitationLifetime = 7 * 24 * time.Hour
	MaxInvitationRoles        = 20
	MaxInvitationNamespaces   = 20
	MaxInvitationGroups       = 20
)

// uniqueInvitationEmail reserves an address for the one pending
// invitation it may have in a tenant (blinded, like users' emails).
const uniqueInvitationEmail = "invitation_email"

// Invitation is an invitation's state. Its address is in the clear here
// (read through the key store), "[erased]" once its data key is gone.
type Invitation struct {
	id         string
	tenant     string
	exists     bool
	deleted    bool
	email      string
	roles      []events.InvitationRole
	groups     []string
	superadmin bool
	createUser bool
	sentAt     time.Time
	expiresAt  time.Time
	invitedBy  string
	acceptedBy string
	acceptedAt time.Time
}

func newInvitation(tenant, id string) *Invitation { return &Invitation{tenant: tenant, id: id} }

// ID returns the invitation id.
func (i *Invitation) ID() string { return i.id }

// Tenant returns the tenant the invitation is into.
func (i *Invitation) Tenant() string { return i.tenant }

// Email returns the invited address, lower-cased.
func (i *Invitation) Email() string { return i.email }

// ExpiresAt returns when the invitation can no longer be accepted.
func (i *Invitation) ExpiresAt() time.Time { return i.expiresAt }

// AcceptedBy returns the id of the user who accepted, or "".
func (i *Invitation) AcceptedBy() string { return i.acceptedBy }

func (i *Invitation) clone() state {
	c := *i
	c.roles = slices.Clone(i.roles)
	c.groups = slices.Clone(i.groups)
	return &c
}

func (i *Invitation) apply(env events.Envelope, e events.Event) {
	switch e := e.(type) {
	case events.InvitationCreated:
		// The repository put the address in the clear into Personal.
		i.exists, i.email = true, personalOf(e.Personal).Email
		i.roles, i.groups = slices.Clone(e.Roles), slices.Clone(e.Groups)
		i.superadmin, i.createUser = e.Superadmin, e.CreateUser
		i.sentAt, i.expiresAt, i.invitedBy = env.Time, e.ExpiresAt, e.InvitedBy
	case events.InvitationAccepted:
		i.acceptedBy, i.acceptedAt = e.UserID, env.Time
	case events.InvitationDeleted:
		*i = Invitation{id: i.id, tenant: i.tenant, deleted: true}
	}
}

// pending reports whether the invitation can still be accepted at now.
func (i *Invitation) pending(now time.Time) bool {
	return i.exists && i.acceptedBy == "" && now.Before(i.expiresAt)
}

// usable fails unless the invitation can be accepted at now. Whoever asks
// holds its token, so the error may say why.
func (i *Invitation) usable(now time.Time) error {
	switch {
	case !i.exists:
		return ruleError(ErrNotFound, "", "invitation not found: it was withdrawn, or the link is wrong")
	case i.acceptedBy != "":
		return ruleError(ErrNotFound, "", "invitation not found: it was already accepted")
	case !now.Before(i.expiresAt):
		return ruleError(ErrNotFound, "", "invitation not found: it expired at %s", i.expiresAt.Format(time.RFC3339))
	}
	return nil
}

func (b base) invitation(ctx context.Context, tenant, id string) (*Invitation, key, uint64, error) {
	k := key{tenant, events.AggregateInvitation, id}
	if !events.ValidToken(id) {
		return newInvitation(tenant, id), k, 0, nil
	}
	st, seq, err := b.repo.load(ctx, k, 0, func() state { return newInvitation(tenant, id) })
	if err != nil {
		return nil, k, 0, err
	}
	return st.(*Invitation), k, seq, nil
}

// InvitationResult is an invitation after a command and the sequence to
// wait for; UserID is the user an acceptance granted to.
type InvitationResult struct {
	Invitation *Invitation
	UserID     string
	Sequence   uint64
}

// InvitationToken returns the registration token of invitation id in
// tenant, which accepting it takes: a secret, to be shown only to whoever
// may read the invitation, and never logged or stored.
func (c *Commands) InvitationToken(tenant, id string) (string, error) {
	if c.personal == nil {
		return "", errNoKeyStore
	}
	return c.personal.InvitationToken(tenant, id), nil
}

// CreateInvitation invites an email address into the caller's tenant,
// with roles (at namespaces, or across the tenant), groups and
// superadmin rights the invitee gets on accepting.
type CreateInvitation struct {
	Meta
	Email      string
	Roles      []events.InvitationRole
	Groups     []string
	Superadmin bool
	// CreateUser allows registering a new user from the invitation;
	// without it only an existing user can accept it.
	CreateUser bool
}

// CreateInvitationHandler handles CreateInvitation.
type CreateInvitationHandler struct{ base }

// Handle checks that the caller may invite (iam.invitations.create) and
// could grant everything the invitation grants (scope-down: the roles at
// their namespaces with the right to bind them, membership of each group,
// superadmin only as a superadmin), then records the invitation, its
// address sealed. An address with a pending invitation in the tenant, or
// whose user already has access to it, is ErrAlreadyExists.
func (h CreateInvitationHandler) Handle(ctx context.Context, cmd CreateInvitation) (InvitationResult, error) {
	tenant := cmd.Caller.Tenant
	if err := h.authorize(cmd.Caller, authz.InvitationsCreate, authz.TenantScope(tenant)); err != nil {
		return InvitationResult{}, err
	}
	if h.personal == nil {
		return InvitationResult{}, errNoKeyStore
	}
	cmd.Email = strings.ToLower(cmd.Email)
	if err := validEmail(cmd.Email); err != nil {
		return InvitationResult{}, err
	}
	roles, groups, err := h.checkGrants(ctx, cmd)
	if err != nil {
		return InvitationResult{}, err
	}
	id := cmd.IDSeed
	if id == "" {
		id = events.NewID()
	}
	expires := h.now().Add(DefaultInvitationLifetime).UTC().Truncate(time.Second)
	var out *Invitation
	seq, err := h.repo.execute(ctx, cmd.Meta, key{tenant, events.AggregateInvitation, id}, func(c *change) error {
		inv, k, seq, err := h.invitation(ctx, tenant, id)
		if err != nil {
			return err
		}
		out = inv
		switch {
		case inv.exists:
			return nil // a retry of a keyed request that reached the log
		case inv.deleted:
			return ruleError(ErrAlreadyExists, "", "invitation %s was created and deleted since", id)
		}
		if err := h.notMember(ctx, tenant, cmd.Email); err != nil {
			return err
		}
		if err := h.mayRestoreEmail(ctx, cmd.Caller, tenant, cmd.Email); err != nil {
			return err
		}
		if err := h.claimInvitation(ctx, c, tenant, cmd.Email, id); err != nil {
			return err
		}
		p := events.Personal{Email: cmd.Email}
		enc, err := h.sealPersonal(ctx, id, events.InvitationCreated{}.EventType(), p)
		if err != nil {
			return err
		}
		e := events.InvitationCreated{Roles: roles, Groups: groups, Superadmin: cmd.Superadmin, CreateUser: cmd.CreateUser,
			ExpiresAt: expires, InvitedBy: cmd.Caller.ID}
		stored, applied := e, e
		stored.PersonalEnc, applied.Personal = enc, &p
		c.recordAs(k, inv, seq, stored, applied)
		return nil
	})
	if err != nil {
		return InvitationResult{}, err
	}
	return InvitationResult{Invitation: out, Sequence: seq}, nil
}

// checkGrants validates what the invitation grants and that the caller
// could grant it, and returns it normalised (duplicates dropped).
func (h CreateInvitationHandler) checkGrants(ctx context.Context, cmd CreateInvitation) ([]events.InvitationRole, []string, error) {
	tenant := cmd.Caller.Tenant
	if len(cmd.Roles) > MaxInvitationRoles {
		return nil, nil, invalid("roles", "must hold at most %d roles", MaxInvitationRoles)
	}
	if len(cmd.Groups) > MaxInvitationGroups {
		return nil, nil, invalid("groups", "must hold at most %d groups", MaxInvitationGroups)
	}
	if cmd.Superadmin {
		all := []authz.Rule{{Effect: authz.Allow, Actions: []string{"*"}}}
		if _, ok := cmd.Caller.Missing(h.authz, all, authz.Instance); !ok {
			return nil, nil, ruleError(ErrForbidden, "superAdmin", "only a superadmin may invite a superadmin")
		}
	}
	if len(cmd.Roles) > 0 {
		if err := h.authorize(cmd.Caller, authz.BindingsCreate, authz.TenantScope(tenant)); err != nil {
			return nil, nil, err
		}
	}
	var roles []events.InvitationRole
	for i, r := range cmd.Roles {
		field := fmt.Sprintf("roles[%d]", i)
		if !events.ValidToken(r.Role) {
			return nil, nil, invalid(field+".id", "%q is not a role id", r.Role)
		}
		if len(r.Namespaces) > MaxInvitationNamespaces {
			return nil, nil, invalid(field+".namespaces", "must hold at most %d namespaces", MaxInvitationNamespaces)
		}
		rules, err := h.roleRules(ctx, tenant, field+".id", []string{r.Role})
		if err != nil {
			return nil, nil, err
		}
		namespaces := slices.Compact(slices.Sorted(slices.Values(r.Namespaces)))
		scopes := []events.Scope{{Level: events.ScopeTenant, Target: tenant}}
		if len(namespaces) > 0 {
			scopes = scopes[:0]
		}
		for j, ns := range namespaces {
			if err := validNamespace(ns); err != nil {
				return nil, nil, invalid(fmt.Sprintf("%s.namespaces[%d]", field, j), "%q is not a namespace (lowercase letters, digits, _ and -, dot-separated)", ns)
			}
			scopes = append(scopes, events.Scope{Level: events.ScopeNamespace, Target: ns})
		}
		for _, s := range scopes {
			if err := h.scopeDown(cmd.Caller, rules, auth.ScopeOf(tenant, s), "roles", fmt.Sprintf("invite with role %q", r.Role)); err != nil {
				return nil, nil, err
			}
		}
		roles = append(roles, events.InvitationRole{Role: r.Role, Namespaces: namespaces})
	}
	var groups []string
	for i, id := range cmd.Groups {
		if slices.Contains(groups, id) {
			continue
		}
		g, _, _, err := h.group(ctx, tenant, id)
		if err != nil {
			return nil, nil, err
		}
		if !g.exists {
			return nil, nil, invalid(fmt.Sprintf("groups[%d]", i), "no group %q in tenant %q", id, tenant)
		}
		// Inviting into a group is adding a member to it.
		if err := h.mayManageMembers(cmd.Caller, g, authz.GroupMembersCreate); err != nil {
			return nil, nil, err
		}
		groups = append(groups, id)
	}
	return roles, groups, nil
}

// notMember fails with ErrAlreadyExists when the user holding email
// already has access to tenant.
func (b base) notMember(ctx context.Context, tenant, email string) error {
	owner, err := b.emailOwner(ctx, email)
	if err != nil || owner == "" {
		return err
	}
	u, _, err := b.existingUser(ctx, owner)
	if err != nil {
		return nil // a reservation of a user gone since
	}
	if slices.Contains(u.tenants, tenant) {
		return ruleError(ErrAlreadyExists, "email", "the user with this address already has access to tenant %q", tenant)
	}
	return nil
}

// emailOwner returns the id of the user holding email, or "".
func (b base) emailOwner(ctx context.Context, email string) (string, error) {
	id, legacy, err := b.reservationIDs(uniqueEmail, email)
	if err != nil {
		return "", err
	}
	for _, rid := range []string{id, legacy} {
		if rid == "" {
			continue
		}
		u, _, _, err := b.reservation(ctx, events.InstanceTenant, rid)
		if err != nil {
			return "", err
		}
		if u.owner != "" {
			return u.owner, nil
		}
	}
	return "", nil
}

// claimInvitation reserves email for invitation id in tenant, in change
// c: an address has at most one pending invitation per tenant. A
// reservation whose invitation is no longer pending (expired) passes to
// the new one.
func (b base) claimInvitation(ctx context.Context, c *change, tenant, email, id string) error {
	u, k, seq, err := b.reservation(ctx, tenant, b.personal.Blind(uniqueInvitationEmail, email))
	if err != nil {
		return err
	}
	if u.owner != "" && u.owner != id {
		other, _, _, err := b.invitation(ctx, tenant, u.owner)
		if err != nil {
			return err
		}
		if other.pending(b.now()) {
			return ruleError(ErrAlreadyExists, "email", "invitation %s for this address is pending until %s", other.id, other.expiresAt.Format(time.RFC3339))
		}
	}
	c.record(k, u, seq, events.UniqueKeyClaimed{Kind: uniqueInvitationEmail, Owner: id})
	return nil
}

// releaseInvitation frees the reservation of inv's address if inv holds it.
func (b base) releaseInvitation(ctx context.Context, c *change, inv *Invitation) error {
	if inv.email == "" || inv.email == events.ErasedMarker {
		return nil
	}
	u, k, seq, err := b.reservation(ctx, inv.tenant, b.personal.Blind(uniqueInvitationEmail, inv.email))
	if err != nil {
		return err
	}
	if u.owner == inv.id {
		c.record(k, u, seq, events.UniqueKeyReleased{Kind: uniqueInvitationEmail, Owner: inv.id})
	}
	return nil
}

// AcceptInvitation gives the signed-in user what an invitation addressed
// to its email grants.
type AcceptInvitation struct {
	Meta
	// Token is the invitation's registration token.
	Token string
}

// AcceptInvitationHandler handles AcceptInvitation.
type AcceptInvitationHandler struct{ base }

// Handle checks the token (in constant time) and that the invitation is
// pending and addressed to the caller's email (ErrForbidden otherwise),
// then records in one atomic batch the caller's access to the tenant, a
// binding per role and namespace, a membership per group, superadmin if
// invited so, and the acceptance, which ends the token; the invitation's
// data key is destroyed after. An unknown, used or expired token is
// ErrNotFound. Roles and groups deleted since grant nothing.
func (h AcceptInvitationHandler) Handle(ctx context.Context, cmd AcceptInvitation) (InvitationResult, error) {
	if cmd.Caller.Kind != auth.KindUser {
		return InvitationResult{}, ruleError(ErrForbidden, "", "only a signed-in user may accept an invitation")
	}
	tenant, id, err := h.verifyToken(cmd.Token)
	if err != nil {
		return InvitationResult{}, err
	}
	var out *Invitation
	seq, err := h.repo.execute(ctx, cmd.Meta, key{tenant, events.AggregateInvitation, id}, func(c *change) error {
		inv, k, seq, err := h.invitation(ctx, tenant, id)
		if err != nil {
			return err
		}
		if err := inv.usable(h.now()); err != nil {
			return err
		}
		u, useq, err := h.existingUser(ctx, cmd.Caller.ID)
		if err != nil {
			return err
		}
		if u.erased || !strings.EqualFold(u.personal.Email, inv.email) {
			return ruleError(ErrForbidden, "", "this invitation is addressed to another email address than yours")
		}
		out = inv
		return h.accept(ctx, c, k, inv, seq, u, useq, false)
	})
	if err != nil {
		return InvitationResult{}, err
	}
	return h.ended(ctx, out, cmd.Caller.ID, seq)
}

// RegisterFromInvitation creates a user from an invitation that allows it
// and accepts the invitation as that user. It needs no authentication:
// the token is the proof.
type RegisterFromInvitation struct {
	Meta
	Token     string
	FirstName string
	LastName  string
	Password  string
}

// RegisterFromInvitationHandler handles RegisterFromInvitation.
type RegisterFromInvitationHandler struct{ base }

// Handle checks the token as AcceptInvitation does and that the
// invitation allows registering (ErrForbidden otherwise), then creates
// the user with the invited address as username and email, the names and
// the password (which must meet the password policy; only its verifier is
// stored), and accepts the invitation, all in one atomic batch. An
// address already taken by a user is ErrAlreadyExists: that user signs in
// and accepts instead.
func (h RegisterFromInvitationHandler) Handle(ctx context.Context, cmd RegisterFromInvitation) (InvitationResult, error) {
	tenant, id, err := h.verifyToken(cmd.Token)
	if err != nil {
		return InvitationResult{}, err
	}
	for field, v := range map[string]string{"firstName": cmd.FirstName, "lastName": cmd.LastName} {
		if err := validText(field, v, textKind{max: MaxDisplayName, required: true}); err != nil {
			return InvitationResult{}, err
		}
	}
	if cmd.Password == "" {
		return InvitationResult{}, invalid("password", "is required")
	}
	userID := cmd.IDSeed
	if userID == "" {
		userID = events.NewID()
	}
	// The new user acts for itself: the events name it as their actor.
	cmd.Caller = auth.Principal{ID: userID, Kind: auth.KindUser, Tenant: tenant}
	var out *Invitation
	var verifier string
	seq, err := h.repo.execute(ctx, cmd.Meta, key{tenant, events.AggregateInvitation, id}, func(c *change) error {
		inv, k, seq, err := h.invitation(ctx, tenant, id)
		if err != nil {
			return err
		}
		if err := inv.usable(h.now()); err != nil {
			return err
		}
		if !inv.createUser {
			return ruleError(ErrForbidden, "", "this invitation does not allow registering a new user: sign in and accept it")
		}
		p := events.Personal{Username: inv.email, Email: inv.email, FirstName: cmd.FirstName, LastName: cmd.LastName}
		if err := validPersonal(p); err != nil {
			return err
		}
		if err := validPassword(cmd.Password, p.Username, p.Email); err != nil {
			return err
		}
		if verifier == "" {
			verifier = auth.HashPassword(cmd.Password, auth.DefaultPasswordParams)
		}
		uk := key{events.InstanceTenant, events.AggregateUser, userID}
		u := newUser(userID).(*User)
		for _, l := range logins(p) {
			if err := h.claim(ctx, c, events.InstanceTenant, l.kind, l.value, userID); err != nil {
				return err
			}
		}
		if err := h.recordCreated(ctx, c, uk, u, 0, p, false, verifier); err != nil {
			return err
		}
		out = inv
		return h.accept(ctx, c, k, inv, seq, u, 0, true)
	})
	if err != nil {
		return InvitationResult{}, err
	}
	return h.ended(ctx, out, userID, seq)
}

// verifyToken returns the tenant and id of a token this instance made.
func (b base) verifyToken(token string) (tenant, id string, err error) {
	if b.personal == nil {
		return "", "", errNoKeyStore
	}
	tenant, id, ok := b.personal.VerifyInvitationToken(token)
	if !ok {
		return "", "", ruleError(ErrNotFound, "", "invitation not found: the link is wrong")
	}
	return tenant, id, nil
}

// accept records in c what inv grants user u (at useq) and the
// acceptance.
func (b base) accept(ctx context.Context, c *change, k key, inv *Invitation, seq uint64, u *User, useq uint64, created bool) error {
	uk := key{events.InstanceTenant, events.AggregateUser, u.id}
	tenant := inv.tenant
	t, _, err := b.tenant(ctx, tenant)
	if err != nil {
		return err
	}
	if !t.exists {
		return ruleError(ErrNotFound, "", "invitation not found: its tenant was deleted")
	}
	if !slices.Contains(u.tenants, tenant) {
		c.record(uk, u, useq, events.UserTenantAccessGranted{Tenant: tenant})
	}
	if inv.superadmin {
		c.record(uk, u, useq, events.UserRoleGranted{Role: auth.RoleSuperadmin, Scope: events.Scope{Level: events.ScopeInstance}})
	}
	for _, r := range inv.roles {
		role, _, _, err := b.role(ctx, tenant, r.Role)
		if err != nil {
			return err
		}
		if !role.exists {
			continue
		}
		scopes := []events.Scope{{Level: events.ScopeTenant, Target: tenant}}
		if len(r.Namespaces) > 0 {
			scopes = scopes[:0]
			for _, ns := range r.Namespaces {
				scopes = append(scopes, events.Scope{Level: events.ScopeNamespace, Target: ns})
			}
		}
		for _, s := range scopes {
			id := events.NewID()
			c.record(key{tenant, events.AggregateBinding, id}, &Binding{id: id}, 0, events.BindingCreated{
				Role: r.Role, SubjectKind: events.SubjectUser, SubjectID: u.id, Scope: s,
			})
		}
	}
	for _, gid := range inv.groups {
		g, gk, gseq, err := b.group(ctx, tenant, gid)
		if err != nil {
			return err
		}
		if _, in := g.members[u.id]; !g.exists || in || len(g.members) >= MaxGroupMembers {
			continue
		}
		c.record(gk, g, gseq, events.GroupMemberSet{MemberKind: events.SubjectUser, MemberID: u.id, Membership: events.MembershipMember})
	}
	if err := b.releaseInvitation(ctx, c, inv); err != nil {
		return err
	}
	c.record(k, inv, seq, events.InvitationAccepted{UserID: u.id, UserCreated: created})
	return nil
}

// ended destroys the data key of an invitation that was accepted or
// deleted: its address lives on as the user's (erasable with the user),
// or not at all.
func (b base) ended(ctx context.Context, inv *Invitation, userID string, seq uint64) (InvitationResult, error) {
	res := InvitationResult{Invitation: inv, UserID: userID, Sequence: seq}
	if err := b.personal.Erase(ctx, inv.id); err != nil {
		return res, fmt.Errorf("%w: the invitation is recorded as ended but its address is not erased yet (delete the invitation to finish): %v", ErrUnavailable, err)
	}
	return res, nil
}

// DeleteInvitation withdraws an invitation of the caller's tenant.
type DeleteInvitation struct {
	Meta
	ID string
}

// DeleteInvitationHandler handles DeleteInvitation.
type DeleteInvitationHandler struct{ base }

// Handle records the deletion, which ends the token, and destroys the
// invitation's data key, which erases its address. It needs
// iam.invitations.delete; an unknown invitation is ErrNotFound.
func (h DeleteInvitationHandler) Handle(ctx context.Context, cmd DeleteInvitation) (InvitationResult, error) {
	tenant := cmd.Caller.Tenant
	if err := h.authorize(cmd.Caller, authz.InvitationsDelete, authz.TenantScope(tenant)); err != nil {
		return InvitationResult{}, err
	}
	if h.personal == nil {
		return InvitationResult{}, errNoKeyStore
	}
	var out *Invitation
	seq, err := h.repo.execute(ctx, cmd.Meta, key{tenant, events.AggregateInvitation, cmd.ID}, func(c *change) error {
		inv, k, seq, err := h.invitation(ctx, tenant, cmd.ID)
		if err != nil {
			return err
		}
		if !inv.exists {
			return notFound("invitation", cmd.ID)
		}
		out = inv.clone().(*Invitation)
		if err := h.releaseInvitation(ctx, c, inv); err != nil {
			return err
		}
		c.record(k, inv, seq, events.InvitationDeleted{})
		return nil
	})
	if err != nil {
		return InvitationResult{}, err
	}
	return h.ended(ctx, out, "", seq)
}
