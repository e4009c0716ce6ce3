package commands

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

// Bootstrap creates a tenant and its first administrator: an instance
// superadmin holding every built-in tenant role, with a personal API token.
type Bootstrap struct {
	Meta
	Tenant   string
	Username string
	// Email is lower-cased.
	Email string
	// Password, when set, lets the administrator use HTTP Basic too. It
	// must meet auth.CheckPassword; only its verifier is stored.
	Password string
}

// Validate checks the command's input without reading the log, so a
// caller can refuse it before connecting to anything; Handle checks it
// too.
func (cmd Bootstrap) Validate() error {
	if err := validNewTenantID(cmd.Tenant); err != nil {
		return err
	}
	if err := validUsername(cmd.Username); err != nil {
		return err
	}
	if err := validEmail(strings.ToLower(cmd.Email)); err != nil {
		return err
	}
	if cmd.Password != "" {
		return validPassword(cmd.Password, cmd.Username, cmd.Email)
	}
	return nil
}

// BootstrapResult is what Bootstrap created. Token is shown only here.
type BootstrapResult struct {
	Tenant   string
	UserID   string
	Token    string
	Sequence uint64
}

// BootstrapHandler handles Bootstrap.
type BootstrapHandler struct{ base }

// Handle creates the tenant, the user, their grants and token atomically.
// A tenant that already exists, or a taken username or email, fails with
// ErrAlreadyExists and changes nothing.
func (h BootstrapHandler) Handle(ctx context.Context, cmd Bootstrap) (BootstrapResult, error) {
	if err := cmd.Validate(); err != nil {
		return BootstrapResult{}, err
	}
	if !cmd.Caller.Can(h.authz, authz.TenantsCreate, "", authz.Instance).Allowed {
		return BootstrapResult{}, ruleError(ErrForbidden, "", "only a superadmin may bootstrap a tenant")
	}
	cmd.Email = strings.ToLower(cmd.Email)
	userID := events.NewID()
	token := auth.NewSecret(auth.PrefixAPIToken)
	var verifier string
	if cmd.Password != "" {
		verifier = auth.HashPassword(cmd.Password, auth.DefaultPasswordParams)
	}
	seq, err := h.repo.execute(ctx, cmd.Meta, key{cmd.Tenant, events.AggregateTenant, cmd.Tenant}, func(c *change) error {
		t, tseq, err := h.tenant(ctx, cmd.Tenant)
		if err != nil {
			return err
		}
		if t.exists || t.deleted {
			return ruleError(ErrAlreadyExists, "tenant", "tenant %q is already bootstrapped", cmd.Tenant)
		}
		in, _, err := h.instance(ctx)
		if err != nil {
			return err
		}
		c.record(key{cmd.Tenant, events.AggregateTenant, cmd.Tenant}, t, tseq, in.newTenant(cmd.Tenant))
		if err := h.seed(ctx, c, cmd.Tenant); err != nil {
			return err
		}
		personal := events.Personal{Username: cmd.Username, Email: cmd.Email}
		for _, l := range logins(personal) {
			if err := h.claim(ctx, c, events.InstanceTenant, l.kind, l.value, userID); err != nil {
				return err
			}
		}
		uk := key{events.InstanceTenant, events.AggregateUser, userID}
		u := newUser(userID)
		if err := h.recordCreated(ctx, c, uk, u.(*User), 0, personal, true, verifier); err != nil {
			return err
		}
		c.record(uk, u, 0, events.UserTenantAccessGranted{Tenant: cmd.Tenant})
		c.record(uk, u, 0, events.UserRoleGranted{Role: auth.RoleSuperadmin, Scope: events.Scope{Level: events.ScopeInstance}})
		for _, r := range []string{authz.RoleAuditor, authz.RoleTenantAdmin, authz.RoleViewer} {
			c.record(uk, u, 0, events.UserRoleGranted{Role: r, Tenant: cmd.Tenant, Scope: events.Scope{Level: events.ScopeTenant, Target: cmd.Tenant}})
		}
		c.record(uk, u, 0, events.APITokenIssued{TokenID: events.NewID(), PrincipalKind: events.SubjectUser, Verifier: auth.Verifier(token)})
		return nil
	})
	if err != nil {
		return BootstrapResult{}, err
	}
	return BootstrapResult{Tenant: cmd.Tenant, UserID: userID, Token: token, Sequence: seq}, nil
}

// ChangeTenantSettings changes a tenant's credential lifetimes and allowed
// service-account scope levels; nil fields stay as they are.
type ChangeTenantSettings struct {
	Meta
	Tenant                    string
	CredentialDefaultLifetime *int64 // seconds
	CredentialMaxLifetime     *int64 // seconds
	ScopeLevels               *[]string
}

// TenantResult is a tenant's state after a command.
type TenantResult struct {
	Tenant   *Tenant
	Sequence uint64
}

// scopeLevels checks a list of allowed service-account scope levels and
// returns it sorted, without repeats.
func scopeLevels(levels []string) ([]string, error) {
	levels = slices.Clone(levels)
	if len(levels) == 0 {
		return nil, invalid("scope_levels", "must allow at least one of tenant, namespace")
	}
	for _, l := range levels {
		if !slices.Contains(events.ServiceAccountScopeLevels, l) {
			return nil, invalid("scope_levels", "unknown level %q (known: tenant, namespace)", l)
		}
	}
	slices.Sort(levels)
	return slices.Compact(levels), nil
}

// ChangeTenantSettingsHandler handles ChangeTenantSettings.
type ChangeTenantSettingsHandler struct{ base }

// Limits on credential lifetimes a tenant may set.
const (
	MinCredentialLifetimeSetting = 3600                 // one hour, in seconds
	MaxCredentialLifetimeSetting = 10 * 365 * 24 * 3600 // ten years, in seconds
)

// Authorize decides from cmd's caller and tenant alone whether the caller
// may change the settings at all: only tenant administrators may; others
// get ErrNotFound. Handle calls it too; a dialect calls it before reading
// the request body, so a caller without the right learns nothing about
// its input.
func (h ChangeTenantSettingsHandler) Authorize(cmd ChangeTenantSettings) error {
	return h.hidden(cmd.Caller, authz.SettingsUpdate, authz.TenantScope(cmd.Tenant), "tenant", cmd.Tenant)
}

// Handle validates and records the new settings. Only tenant administrators
// may change them (see Authorize).
func (h ChangeTenantSettingsHandler) Handle(ctx context.Context, cmd ChangeTenantSettings) (TenantResult, error) {
	if err := h.Authorize(cmd); err != nil {
		return TenantResult{}, err
	}
	if cmd.CredentialDefaultLifetime == nil && cmd.CredentialMaxLifetime == nil && cmd.ScopeLevels == nil {
		return TenantResult{}, invalid("", "nothing to update: give at least one of the settings")
	}
	if cmd.ScopeLevels != nil {
		levels, err := scopeLevels(*cmd.ScopeLevels)
		if err != nil {
			return TenantResult{}, err
		}
		cmd.ScopeLevels = &levels
	}
	for field, v := range map[string]*int64{"credential_default_lifetime": cmd.CredentialDefaultLifetime, "credential_max_lifetime": cmd.CredentialMaxLifetime} {
		if v != nil && (*v < MinCredentialLifetimeSetting || *v > MaxCredentialLifetimeSetting) {
			return TenantResult{}, invalid(field, "must be between 1 hour and 10 years")
		}
	}
	var out *Tenant
	seq, err := h.repo.execute(ctx, cmd.Meta, key{cmd.Tenant, events.AggregateTenant, cmd.Tenant}, func(c *change) error {
		t, tseq, err := h.tenant(ctx, cmd.Tenant)
		if err != nil {
			return err
		}
		if !t.exists {
			return ruleError(ErrNotFound, "", "tenant %q not found", cmd.Tenant)
		}
		def, max := int64(t.defaultLifetime.Seconds()), int64(t.maxLifetime.Seconds())
		if cmd.CredentialDefaultLifetime != nil {
			def = *cmd.CredentialDefaultLifetime
		}
		if cmd.CredentialMaxLifetime != nil {
			max = *cmd.CredentialMaxLifetime
		}
		if def > max {
			return invalid("credential_default_lifetime", "must not exceed the maximum lifetime (%s)", lifetime(max))
		}
		c.record(key{cmd.Tenant, events.AggregateTenant, cmd.Tenant}, t, tseq, events.TenantSettingsChanged{
			CredentialDefaultLifetime: cmd.CredentialDefaultLifetime,
			CredentialMaxLifetime:     cmd.CredentialMaxLifetime,
			ScopeLevels:               cmd.ScopeLevels,
		})
		out = t
		return nil
	})
	if err != nil {
		return TenantResult{}, err
	}
	return TenantResult{Tenant: out, Sequence: seq}, nil
}

// lifetime describes a lifetime in seconds in whole days when it is one,
// the unit tenants set it in.
func lifetime(seconds int64) string {
	if seconds%86400 == 0 {
		if seconds == 86400 {
			return "1 day"
		}
		return strconv.FormatInt(seconds/86400, 10) + " days"
	}
	return (time.Duration(seconds) * time.Second).String()
}
