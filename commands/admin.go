package commands

import (
	"context"
	"slices"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

// ReservedTenantIDs are the first path segments of Kestra's
// instance-level routes (/api/v1/users, /api/v1/me, ..., and /cluster,
// which 0.24 moved to /instance). Tenant routes take the same segment as
// the tenant id, so a tenant with one of these ids could never be reached
// there: no tenant gets one. Read only.
var ReservedTenantIDs = []string{"auths", "banners", "cluster", "configs", "forgotten-password", "instance", "invitation",
	"license-info", "me", "plugins", "reset-password", "setup", "tenants", "users"}

// validNewTenantID checks the id a new tenant is created with.
func validNewTenantID(id string) error {
	if !ValidTenantID(id) {
		return invalid("tenant", "must be 1-63 lowercase letters, digits and dashes, starting with a letter or digit")
	}
	if slices.Contains(ReservedTenantIDs, id) {
		return invalid("tenant", "%q is reserved: it names instance-level resources in API paths", id)
	}
	return nil
}

// CreateTenant creates a tenant on a running instance, with the default
// credential settings and the managed roles.
type CreateTenant struct {
	Meta
	TenantID string
	// Name is the display name; the id when empty.
	Name string
}

// Validate checks the command's input without reading the log.
func (cmd CreateTenant) Validate() error {
	if err := validNewTenantID(cmd.TenantID); err != nil {
		return err
	}
	return validText("name", cmd.Name, textKind{max: MaxDisplayName})
}

// CreateTenantHandler handles CreateTenant.
type CreateTenantHandler struct{ base }

// Handle creates the tenant. Superadmins only. A tenant that exists, or
// existed and was deleted, is ErrAlreadyExists.
func (h CreateTenantHandler) Handle(ctx context.Context, cmd CreateTenant) (TenantResult, error) {
	if err := h.authorize(cmd.Caller, authz.TenantsCreate, authz.Instance); err != nil {
		return TenantResult{}, err
	}
	if err := cmd.Validate(); err != nil {
		return TenantResult{}, err
	}
	name := cmd.Name
	if name == "" {
		name = cmd.TenantID
	}
	k := key{cmd.TenantID, events.AggregateTenant, cmd.TenantID}
	var out *Tenant
	seq, err := h.repo.execute(ctx, cmd.Meta, k, func(c *change) error {
		t, tseq, err := h.loadTenant(ctx, cmd.TenantID)
		if err != nil {
			return err
		}
		if t.exists || t.deleted {
			return ruleError(ErrAlreadyExists, "tenant", "tenant %q already exists or existed", cmd.TenantID)
		}
		in, _, err := h.instance(ctx)
		if err != nil {
			return err
		}
		c.record(k, t, tseq, in.newTenant(name))
		out = t
		return h.seed(ctx, c, cmd.TenantID)
	})
	if err != nil {
		return TenantResult{}, err
	}
	return TenantResult{Tenant: out, Sequence: seq}, nil
}

// UpdateTenant renames a tenant.
type UpdateTenant struct {
	Meta
	TenantID string
	Name     string
}

// UpdateTenantHandler handles UpdateTenant.
type UpdateTenantHandler struct{ base }

// Handle records the new name; the same name appends nothing.
// Superadmins only; an unknown or deleted tenant is ErrNotFound.
func (h UpdateTenantHandler) Handle(ctx context.Context, cmd UpdateTenant) (TenantResult, error) {
	if err := h.authorize(cmd.Caller, authz.TenantsUpdate, authz.Instance); err != nil {
		return TenantResult{}, err
	}
	if cmd.Name == "" {
		return TenantResult{}, invalid("name", "is required")
	}
	if err := validText("name", cmd.Name, textKind{max: MaxDisplayName}); err != nil {
		return TenantResult{}, err
	}
	return h.changeTenant(ctx, cmd.Meta, cmd.TenantID, func(c *change, k key, t *Tenant, seq uint64) {
		if t.name != cmd.Name {
			c.record(k, t, seq, events.TenantUpdated{Name: cmd.Name})
		}
	})
}

// DeleteTenant ends a tenant (see events.TenantDeleted).
type DeleteTenant struct {
	Meta
	TenantID string
}

// DeleteTenantHandler handles DeleteTenant.
type DeleteTenantHandler struct{ base }

// Handle records the deletion: from then on nobody signs in or acts in
// the tenant, and its id is never used again. Superadmins only; an
// unknown or deleted tenant is ErrNotFound.
func (h DeleteTenantHandler) Handle(ctx context.Context, cmd DeleteTenant) (TenantResult, error) {
	if err := h.authorize(cmd.Caller, authz.TenantsDelete, authz.Instance); err != nil {
		return TenantResult{}, err
	}
	return h.changeTenant(ctx, cmd.Meta, cmd.TenantID, func(c *change, k key, t *Tenant, seq uint64) {
		c.record(k, t, seq, events.TenantDeleted{})
	})
}

// loadTenant reads a tenant's current state (no cache age: for writes to it).
func (b base) loadTenant(ctx context.Context, id string) (*Tenant, uint64, error) {
	st, seq, err := b.repo.load(ctx, key{id, events.AggregateTenant, id}, 0, func() state { return newTenant(id) })
	if err != nil {
		return nil, 0, err
	}
	return st.(*Tenant), seq, nil
}

// changeTenant runs decide on an existing tenant under its lock.
func (b base) changeTenant(ctx context.Context, m Meta, id string, decide func(c *change, k key, t *Tenant, seq uint64)) (TenantResult, error) {
	if !ValidTenantID(id) {
		return TenantResult{}, notFound("tenant", id)
	}
	k := key{id, events.AggregateTenant, id}
	var out *Tenant
	seq, err := b.repo.execute(ctx, m, k, func(c *change) error {
		t, tseq, err := b.loadTenant(ctx, id)
		if err != nil {
			return err
		}
		if !t.exists {
			return notFound("tenant", id)
		}
		out = t
		decide(c, k, t, tseq)
		return nil
	})
	if err != nil {
		return TenantResult{}, err
	}
	return TenantResult{Tenant: out, Sequence: seq}, nil
}

// SetSuperadmin makes a user an instance superadmin, or no longer one.
type SetSuperadmin struct {
	Meta
	UserID     string
	Superadmin bool
}

var superadminScope = events.Scope{Level: events.ScopeInstance}

// SetSuperadminHandler handles SetSuperadmin.
type SetSuperadminHandler struct{ base }

// Handle records the grant or revocation; one that changes nothing
// appends nothing. Superadmins only, and none may unset themself (the
// instance could be left without one).
func (h SetSuperadminHandler) Handle(ctx context.Context, cmd SetSuperadmin) (UserResult, error) {
	decide, err := h.step(cmd)
	if err != nil {
		return UserResult{}, err
	}
	return h.change(ctx, cmd.Meta, cmd.UserID, decide)
}

// step checks cmd without the user and returns what it decides on the
// user under its lock.
func (h SetSuperadminHandler) step(cmd SetSuperadmin) (userDecision, error) {
	if err := h.mayManageUsers(cmd.Meta, authz.UsersUpdate); err != nil {
		return nil, err
	}
	if err := validUserID(cmd.UserID); err != nil {
		return nil, err
	}
	if !cmd.Superadmin && cmd.Caller.Kind == auth.KindUser && cmd.Caller.ID == cmd.UserID {
		return nil, invalid("superadmin", "a superadmin cannot take the role from themself")
	}
	return func(c *change, k key, u *User, seq uint64) error {
		switch {
		case cmd.Superadmin && !u.superadmin:
			c.record(k, u, seq, events.UserRoleGranted{Role: auth.RoleSuperadmin, Scope: superadminScope})
		case !cmd.Superadmin && u.superadmin:
			c.record(k, u, seq, events.UserRoleRevoked{Role: auth.RoleSuperadmin, Scope: superadminScope})
		}
		return nil
	}, nil
}

// SetRestricted marks a user restricted or not (see
// events.UserRestrictionChanged).
type SetRestricted struct {
	Meta
	UserID     string
	Restricted bool
}

// SetRestrictedHandler handles SetRestricted.
type SetRestrictedHandler struct{ base }

// Handle records the change; one that changes nothing appends nothing.
// Superadmins only.
func (h SetRestrictedHandler) Handle(ctx context.Context, cmd SetRestricted) (UserResult, error) {
	decide, err := h.step(cmd)
	if err != nil {
		return UserResult{}, err
	}
	return h.change(ctx, cmd.Meta, cmd.UserID, decide)
}

// step checks cmd without the user and returns what it decides on the
// user under its lock.
func (h SetRestrictedHandler) step(cmd SetRestricted) (userDecision, error) {
	if err := h.mayManageUsers(cmd.Meta, authz.UsersUpdate); err != nil {
		return nil, err
	}
	if err := validUserID(cmd.UserID); err != nil {
		return nil, err
	}
	return func(c *change, k key, u *User, seq uint64) error {
		if u.restricted != cmd.Restricted {
			c.record(k, u, seq, events.UserRestrictionChanged{Restricted: cmd.Restricted})
		}
		return nil
	}, nil
}

// selfService reports whether m's caller acts on its own user without
// the right to manage users: then it is bound by the user's restriction.
func (b base) selfService(m Meta, userID string) bool {
	return m.Caller.Kind == auth.KindUser && m.Caller.ID == userID &&
		!m.Caller.Can(b.authz, authz.UsersUpdate, "", authz.Instance).Allowed
}

// restrictedSelf refuses a change a restricted user makes to itself.
func (b base) restrictedSelf(m Meta, u *User) error {
	if u.restricted && b.selfService(m, u.id) {
		return ruleError(ErrForbidden, "", "user %s is restricted: only a superadmin may change it", u.id)
	}
	return nil
}
