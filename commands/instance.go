package commands

import (
	"context"
	"slices"
	"time"

	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/query"
)

// Instance is the instance's settings. Settings never set keep their
// defaults (DefaultAPITokenLifetime, MaxAPITokenLifetime,
// DefaultCredentialLifetime, MaxCredentialLifetime, every scope level).
type Instance struct {
	apiTokenDefault time.Duration
	apiTokenMax     time.Duration
	// What a tenant created from now on starts with.
	credentialDefault time.Duration
	credentialMax     time.Duration
	scopeLevels       []string
}

func newInstance() state {
	return &Instance{apiTokenDefault: DefaultAPITokenLifetime, apiTokenMax: MaxAPITokenLifetime,
		credentialDefault: DefaultCredentialLifetime, credentialMax: MaxCredentialLifetime, scopeLevels: slices.Clone(events.ServiceAccountScopeLevels)}
}

// View returns the settings in the shape queries return them.
func (i *Instance) View() query.InstanceSettings {
	return query.InstanceSettings{APITokenDefaultLifetime: i.apiTokenDefault, APITokenMaxLifetime: i.apiTokenMax,
		CredentialDefaultLifetime: i.credentialDefault, CredentialMaxLifetime: i.credentialMax, ScopeLevels: slices.Clone(i.scopeLevels)}
}

// InstanceDefaults are the settings of an instance that never changed
// them, for queries to fill in what the read tables do not hold.
func InstanceDefaults() query.InstanceSettings { return newInstance().(*Instance).View() }

// CredentialDefaultLifetime is a new tenant's default credential lifetime.
func (i *Instance) CredentialDefaultLifetime() time.Duration { return i.credentialDefault }

// CredentialMaxLifetime is a new tenant's maximum credential lifetime.
func (i *Instance) CredentialMaxLifetime() time.Duration { return i.credentialMax }

// ScopeLevels are the service-account scope levels a new tenant allows.
func (i *Instance) ScopeLevels() []string { return slices.Clone(i.scopeLevels) }

// newTenant is the event creating tenant name with the instance's
// settings for new tenants; the tenant changes its own afterwards.
func (i *Instance) newTenant(name string) events.TenantCreated {
	return events.TenantCreated{Name: name, CredentialDefaultLifetime: int64(i.credentialDefault.Seconds()),
		CredentialMaxLifetime: int64(i.credentialMax.Seconds()), ScopeLevels: slices.Clone(i.scopeLevels)}
}

// APITokenDefaultLifetime is the lifetime of a personal API token issued
// without one.
func (i *Instance) APITokenDefaultLifetime() time.Duration { return i.apiTokenDefault }

// APITokenMaxLifetime is the longest lifetime a personal API token may get.
func (i *Instance) APITokenMaxLifetime() time.Duration { return i.apiTokenMax }

func (i *Instance) clone() state { c := *i; c.scopeLevels = slices.Clone(i.scopeLevels); return &c }

func (i *Instance) apply(_ events.Envelope, e events.Event) {
	if e, ok := e.(events.InstanceSettingsChanged); ok {
		if e.APITokenDefaultLifetime != nil {
			i.apiTokenDefault = time.Duration(*e.APITokenDefaultLifetime) * time.Second
		}
		if e.APITokenMaxLifetime != nil {
			i.apiTokenMax = time.Duration(*e.APITokenMaxLifetime) * time.Second
		}
		if e.CredentialDefaultLifetime != nil {
			i.credentialDefault = time.Duration(*e.CredentialDefaultLifetime) * time.Second
		}
		if e.CredentialMaxLifetime != nil {
			i.credentialMax = time.Duration(*e.CredentialMaxLifetime) * time.Second
		}
		if e.ScopeLevels != nil {
			i.scopeLevels = slices.Clone(*e.ScopeLevels)
		}
	}
}

var instanceKey = key{events.InstanceTenant, events.AggregateInstance, events.InstanceID}

// instance loads the settings, from a cache at most tenantMaxAge old.
func (b base) instance(ctx context.Context) (*Instance, uint64, error) {
	st, seq, err := b.repo.load(ctx, instanceKey, tenantMaxAge, newInstance)
	if err != nil {
		return nil, 0, err
	}
	return st.(*Instance), seq, nil
}

// Bounds of the API token lifetime settings.
const (
	MinAPITokenLifetimeSetting = time.Hour
	MaxAPITokenLifetimeSetting = 10 * 365 * 24 * time.Hour
)

// ChangeInstanceSettings changes instance-level settings; nil fields stay.
type ChangeInstanceSettings struct {
	Meta
	APITokenDefaultLifetime *time.Duration
	APITokenMaxLifetime     *time.Duration
	// What tenants created from now on start with; existing tenants keep
	// their own (ChangeTenantSettings).
	CredentialDefaultLifetime *time.Duration
	CredentialMaxLifetime     *time.Duration
	ScopeLevels               *[]string
}

// Validate checks the values' bounds without reading the log.
func (cmd ChangeInstanceSettings) Validate() error {
	for _, f := range []struct {
		field string
		v     *time.Duration
	}{{"api_token_default_lifetime", cmd.APITokenDefaultLifetime}, {"api_token_max_lifetime", cmd.APITokenMaxLifetime}} {
		if f.v != nil && (*f.v < MinAPITokenLifetimeSetting || *f.v > MaxAPITokenLifetimeSetting || *f.v%time.Second != 0) {
			return invalid(f.field, "must be whole seconds from %s to %s", lifetime(int64(MinAPITokenLifetimeSetting.Seconds())), lifetime(int64(MaxAPITokenLifetimeSetting.Seconds())))
		}
	}
	for _, f := range []struct {
		field string
		v     *time.Duration
	}{{"credential_default_lifetime", cmd.CredentialDefaultLifetime}, {"credential_max_lifetime", cmd.CredentialMaxLifetime}} {
		if f.v != nil && (*f.v < MinCredentialLifetimeSetting*time.Second || *f.v > MaxCredentialLifetimeSetting*time.Second || *f.v%time.Second != 0) {
			return invalid(f.field, "must be whole seconds from %s to %s", lifetime(MinCredentialLifetimeSetting), lifetime(MaxCredentialLifetimeSetting))
		}
	}
	if cmd.ScopeLevels != nil {
		if _, err := scopeLevels(*cmd.ScopeLevels); err != nil {
			return err
		}
	}
	return nil
}

// InstanceResult is the settings after a change.
type InstanceResult struct {
	Instance *Instance
	Sequence uint64
}

// ChangeInstanceSettingsHandler handles ChangeInstanceSettings.
type ChangeInstanceSettingsHandler struct{ base }

// Handle records the settings that differ. The default lifetime may not
// exceed the maximum. Superadmins only.
func (h ChangeInstanceSettingsHandler) Handle(ctx context.Context, cmd ChangeInstanceSettings) (InstanceResult, error) {
	if err := h.authorize(cmd.Caller, authz.InstanceUpdate, authz.Instance); err != nil {
		return InstanceResult{}, err
	}
	if err := cmd.Validate(); err != nil {
		return InstanceResult{}, err
	}
	var out *Instance
	var unchanged uint64
	seq, err := h.repo.execute(ctx, cmd.Meta, instanceKey, func(c *change) error {
		st, seq, err := h.repo.load(ctx, instanceKey, 0, newInstance)
		if err != nil {
			return err
		}
		in := st.(*Instance)
		def, maxi := in.apiTokenDefault, in.apiTokenMax
		var e events.InstanceSettingsChanged
		if cmd.APITokenDefaultLifetime != nil && *cmd.APITokenDefaultLifetime != def {
			def = *cmd.APITokenDefaultLifetime
			s := int64(def.Seconds())
			e.APITokenDefaultLifetime = &s
		}
		if cmd.APITokenMaxLifetime != nil && *cmd.APITokenMaxLifetime != maxi {
			maxi = *cmd.APITokenMaxLifetime
			s := int64(maxi.Seconds())
			e.APITokenMaxLifetime = &s
		}
		if def > maxi {
			return invalid("api_token_default_lifetime", "must not exceed the maximum API token lifetime (%s)", lifetime(int64(maxi.Seconds())))
		}
		cdef, cmax := in.credentialDefault, in.credentialMax
		if cmd.CredentialDefaultLifetime != nil && *cmd.CredentialDefaultLifetime != cdef {
			cdef = *cmd.CredentialDefaultLifetime
			s := int64(cdef.Seconds())
			e.CredentialDefaultLifetime = &s
		}
		if cmd.CredentialMaxLifetime != nil && *cmd.CredentialMaxLifetime != cmax {
			cmax = *cmd.CredentialMaxLifetime
			s := int64(cmax.Seconds())
			e.CredentialMaxLifetime = &s
		}
		if cdef > cmax {
			return invalid("credential_default_lifetime", "must not exceed the maximum credential lifetime (%s)", lifetime(int64(cmax.Seconds())))
		}
		if cmd.ScopeLevels != nil {
			levels, err := scopeLevels(*cmd.ScopeLevels)
			if err != nil {
				return err
			}
			if had := slices.Sorted(slices.Values(in.scopeLevels)); !slices.Equal(levels, had) {
				e.ScopeLevels = &levels
			}
		}
		out, unchanged = in, seq
		if e.APITokenDefaultLifetime == nil && e.APITokenMaxLifetime == nil && e.CredentialDefaultLifetime == nil && e.CredentialMaxLifetime == nil && e.ScopeLevels == nil {
			return nil
		}
		c.record(instanceKey, in, seq, e)
		return nil
	})
	if err != nil {
		return InstanceResult{}, err
	}
	if seq == 0 {
		seq = unchanged
	}
	return InstanceResult{Instance: out, Sequence: seq}, nil
}
