package commands

import (
	"context"
	"time"

	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

// Instance is the instance's settings. Settings never set keep their
// defaults (DefaultAPITokenLifetime, MaxAPITokenLifetime).
type Instance struct {
	apiTokenDefault time.Duration
	apiTokenMax     time.Duration
}

func newInstance() state {
	return &Instance{apiTokenDefault: DefaultAPITokenLifetime, apiTokenMax: MaxAPITokenLifetime}
}

// APITokenDefaultLifetime is the lifetime of a personal API token issued
// without one.
func (i *Instance) APITokenDefaultLifetime() time.Duration { return i.apiTokenDefault }

// APITokenMaxLifetime is the longest lifetime a personal API token may get.
func (i *Instance) APITokenMaxLifetime() time.Duration { return i.apiTokenMax }

func (i *Instance) clone() state { c := *i; return &c }

func (i *Instance) apply(_ events.Envelope, e events.Event) {
	if e, ok := e.(events.InstanceSettingsChanged); ok {
		if e.APITokenDefaultLifetime != nil {
			i.apiTokenDefault = time.Duration(*e.APITokenDefaultLifetime) * time.Second
		}
		if e.APITokenMaxLifetime != nil {
			i.apiTokenMax = time.Duration(*e.APITokenMaxLifetime) * time.Second
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
		out, unchanged = in, seq
		if e == (events.InstanceSettingsChanged{}) {
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
