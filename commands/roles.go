package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/query"
)

// Role is a role's state: a named set of rules in a tenant.
type Role struct {
	id          string
	exists      bool
	deleted     bool
	name        string
	description string
	managed     bool
	isDefault   bool
	rules       []events.Rule
}

func newRole(id string) state { return &Role{id: id} }

// ID returns the role's id, unique in its tenant (a managed role's id is its name).
func (r *Role) ID() string { return r.id }

// Name returns the role's name.
func (r *Role) Name() string { return r.name }

// Description returns the role's description.
func (r *Role) Description() string { return r.description }

// Managed reports whether the role is built in.
func (r *Role) Managed() bool { return r.managed }

// Default reports whether new tenant members get the role.
func (r *Role) Default() bool { return r.isDefault }

// Rules returns the role's rules.
func (r *Role) Rules() []authz.Rule { return auth.RulesOf(slices.Clone(r.rules)) }

// View returns the role in the shape queries return it, so that a dialect
// maps one type. Number is the read tables' to know: 0.
func (r *Role) View() query.Role {
	return query.Role{ID: r.id, Name: r.name, Description: r.description, Managed: r.managed, Default: r.isDefault, Rules: r.Rules()}
}

func (r *Role) clone() state {
	c := *r
	c.rules = slices.Clone(r.rules)
	return &c
}

func (r *Role) apply(_ events.Envelope, e events.Event) {
	switch e := e.(type) {
	case events.RoleCreated:
		r.exists, r.name, r.description, r.managed, r.isDefault, r.rules = true, e.Name, e.Description, e.Managed, e.Default, slices.Clone(e.Rules)
	case events.RoleUpdated:
		if e.Name != nil {
			r.name = *e.Name
		}
		if e.Description != nil {
			r.description = *e.Description
		}
		if e.Default != nil {
			r.isDefault = *e.Default
		}
		if e.Rules != nil {
			r.rules = slices.Clone(*e.Rules)
		}
	case events.RoleDeleted:
		r.exists, r.deleted = false, true
	}
}

func (b base) role(ctx context.Context, tenant, id string) (*Role, key, uint64, error) {
	k := key{tenant, events.AggregateRole, id}
	if !events.ValidToken(id) {
		return &Role{id: id}, k, 0, nil
	}
	st, seq, err := b.repo.load(ctx, k, 0, func() state { return newRole(id) })
	if err != nil {
		return nil, k, 0, err
	}
	return st.(*Role), k, seq, nil
}

// authorize fails with ErrForbidden, giving the evaluator's reason, when
// p may not do action at scope.
func (b base) authorize(p auth.Principal, action string, scope authz.Scope) error {
	if d := p.Can(b.authz, action, "", scope); !d.Allowed {
		return &Error{Kind: ErrForbidden, Message: fmt.Sprintf("you may not %s: %s", action, d.Reason)}
	}
	return nil
}

// hidden is authorize for resources whose existence a caller without the
// right may not learn: it fails with ErrNotFound.
func (b base) hidden(p auth.Principal, action string, scope authz.Scope, what, id string) error {
	if p.Can(b.authz, action, "", scope).Allowed {
		return nil
	}
	return notFound(what, id)
}

// roleRules returns the rules of the roles with ids in tenant; an unknown
// or deleted role fails with ErrInvalid naming field.
func (b base) roleRules(ctx context.Context, tenant, field string, ids []string) ([]authz.Rule, error) {
	var rules []authz.Rule
	for _, id := range ids {
		r, _, _, err := b.role(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		if !r.exists {
			return nil, invalid(field, "unknown role %q in tenant %q", id, tenant)
		}
		rules = append(rules, r.Rules()...)
	}
	return rules, nil
}

// scopeDown is the one rule against escalation: granting rules (through
// a role, a binding, or a credential that acts as a principal) needs the
// caller to hold each of them within the scope they are granted at. The
// error names the first rule missing.
func (b base) scopeDown(p auth.Principal, rules []authz.Rule, scope authz.Scope, field, what string) error {
	if r, ok := p.Missing(b.authz, rules, scope); !ok {
		return ruleError(ErrForbidden, field, "you cannot %s: that grants %s within %s, which you do not hold", what, r, scope)
	}
	return nil
}

// SeedManagedRoles brings a tenant's managed roles in line with
// authz.ManagedRoles: it creates missing ones and corrects changed ones.
// Idempotent: a tenant already in line gets no events. The server runs it
// for every tenant at start, so tenants created by an older version get
// the roles a newer one defines.
type SeedManagedRoles struct {
	Meta
	Tenant string
}

// SeedManagedRolesHandler handles SeedManagedRoles.
type SeedManagedRolesHandler struct{ base }

// Handle records what is missing or different; it returns sequence 0 when
// nothing was. Only the operator (System) or a superadmin may run it.
func (h SeedManagedRolesHandler) Handle(ctx context.Context, cmd SeedManagedRoles) (uint64, error) {
	if err := h.authorize(cmd.Caller, authz.TenantsCreate, authz.Instance); err != nil {
		return 0, err
	}
	return h.repo.execute(ctx, cmd.Meta, key{cmd.Tenant, events.AggregateTenant, cmd.Tenant}, func(c *change) error {
		t, _, err := h.tenant(ctx, cmd.Tenant)
		if err != nil {
			return err
		}
		if !t.exists {
			return notFound("tenant", cmd.Tenant)
		}
		return h.seed(ctx, c, cmd.Tenant)
	})
}

// seed records, in c, the managed roles of tenant that are missing or differ.
func (b base) seed(ctx context.Context, c *change, tenant string) error {
	for _, want := range authz.ManagedRoles(tenant) {
		r, k, seq, err := b.role(ctx, tenant, want.ID)
		if err != nil {
			return err
		}
		rules := auth.EventRules(want.Rules)
		switch {
		case !r.exists && !r.deleted:
			if err := b.claim(ctx, c, tenant, "role_name", want.Name, want.ID); err != nil {
				return err
			}
			c.record(k, r, seq, events.RoleCreated{Name: want.Name, Managed: true, Rules: rules})
		case r.exists && !sameRules(r.rules, rules):
			c.record(k, r, seq, events.RoleUpdated{Rules: &rules})
		}
	}
	return nil
}

func sameRules(a, b []events.Rule) bool {
	return slices.EqualFunc(a, b, func(x, y events.Rule) bool {
		return x.Effect == y.Effect && slices.Equal(x.Actions, y.Actions) && slices.Equal(x.Resources, y.Resources)
	})
}

// RoleInput is a role's editable content.
type RoleInput struct {
	Name        string
	Description string
	Default     bool
	Rules       []authz.Rule
}

func (in RoleInput) validate() error {
	if err := validText("name", in.Name, nameText); err != nil {
		return err
	}
	if err := validText("description", in.Description, descriptionText); err != nil {
		return err
	}
	if len(in.Rules) > authz.MaxRules {
		return invalid("rules", "must hold at most %d rules", authz.MaxRules)
	}
	for i, r := range in.Rules {
		if err := r.Validate(); err != nil {
			return invalid(fmt.Sprintf("rules[%d]", i), "%s", errors.Unwrap(err))
		}
	}
	return nil
}

// CreateRole adds a role to the caller's tenant.
type CreateRole struct {
	Meta
	RoleInput
}

// RoleResult is a role after a command and the sequence to wait for.
type RoleResult struct {
	Role     *Role
	Sequence uint64
}

// CreateRoleHandler handles CreateRole.
type CreateRoleHandler struct{ base }

// Handle validates the role, claims its name in the tenant, and records
// it. The caller must hold every rule it contains (scope-down).
func (h CreateRoleHandler) Handle(ctx context.Context, cmd CreateRole) (RoleResult, error) {
	tenant := cmd.Caller.Tenant
	scope := authz.TenantScope(tenant)
	if err := h.authorize(cmd.Caller, authz.RolesCreate, scope); err != nil {
		return RoleResult{}, err
	}
	if err := cmd.validate(); err != nil {
		return RoleResult{}, err
	}
	if err := h.scopeDown(cmd.Caller, cmd.Rules, scope, "rules", "create this role"); err != nil {
		return RoleResult{}, err
	}
	id := events.NewID()
	var out *Role
	seq, err := h.repo.execute(ctx, cmd.Meta, key{}, func(c *change) error {
		if err := h.claim(ctx, c, tenant, "role_name", cmd.Name, id); err != nil {
			return err
		}
		out = &Role{id: id}
		c.record(key{tenant, events.AggregateRole, id}, out, 0, events.RoleCreated{
			Name: cmd.Name, Description: cmd.Description, Default: cmd.Default, Rules: auth.EventRules(cmd.Rules),
		})
		return nil
	})
	if err != nil {
		return RoleResult{}, err
	}
	return RoleResult{Role: out, Sequence: seq}, nil
}

// UpdateRole replaces a role's content.
type UpdateRole struct {
	Meta
	ID string
	RoleInput
}

// UpdateRoleHandler handles UpdateRole.
type UpdateRoleHandler struct{ base }

// Handle records the differences; a renamed role's old name is released.
// Managed roles cannot be changed (ErrForbidden). The caller must hold
// every rule of the new content.
func (h UpdateRoleHandler) Handle(ctx context.Context, cmd UpdateRole) (RoleResult, error) {
	tenant := cmd.Caller.Tenant
	scope := authz.TenantScope(tenant)
	if err := h.authorize(cmd.Caller, authz.RolesUpdate, scope); err != nil {
		return RoleResult{}, err
	}
	if err := cmd.validate(); err != nil {
		return RoleResult{}, err
	}
	if err := h.scopeDown(cmd.Caller, cmd.Rules, scope, "rules", "give this role these rules"); err != nil {
		return RoleResult{}, err
	}
	var out *Role
	var unchanged uint64
	seq, err := h.repo.execute(ctx, cmd.Meta, key{tenant, events.AggregateRole, cmd.ID}, func(c *change) error {
		r, k, seq, err := h.role(ctx, tenant, cmd.ID)
		if err != nil {
			return err
		}
		if !r.exists {
			return notFound("role", cmd.ID)
		}
		if r.managed {
			return ruleError(ErrForbidden, "", "role %q is built in and cannot be changed", r.name)
		}
		var e events.RoleUpdated
		if cmd.Name != r.name {
			if err := h.claim(ctx, c, tenant, "role_name", cmd.Name, r.id); err != nil {
				return err
			}
			if err := h.release(ctx, c, tenant, "role_name", r.name, r.id); err != nil {
				return err
			}
			e.Name = &cmd.Name
		}
		if cmd.Description != r.description {
			e.Description = &cmd.Description
		}
		if cmd.Default != r.isDefault {
			e.Default = &cmd.Default
		}
		if rules := auth.EventRules(cmd.Rules); !sameRules(rules, r.rules) {
			e.Rules = &rules
		}
		out, unchanged = r, seq
		if e == (events.RoleUpdated{}) {
			return nil
		}
		c.record(k, r, seq, e)
		return nil
	})
	if err != nil {
		return RoleResult{}, err
	}
	if seq == 0 {
		seq = unchanged
	}
	return RoleResult{Role: out, Sequence: seq}, nil
}

// DeleteRole removes a role with every binding of it.
type DeleteRole struct {
	Meta
	ID string
}

// DeleteRoleHandler handles DeleteRole.
type DeleteRoleHandler struct{ base }

// Handle records the deletion and releases the name. Managed roles cannot
// be deleted (ErrForbidden). Service accounts that listed the role keep
// its id in their role list, granting nothing, until it is edited.
func (h DeleteRoleHandler) Handle(ctx context.Context, cmd DeleteRole) (uint64, error) {
	tenant := cmd.Caller.Tenant
	if err := h.authorize(cmd.Caller, authz.RolesDelete, authz.TenantScope(tenant)); err != nil {
		return 0, err
	}
	return h.repo.execute(ctx, cmd.Meta, key{tenant, events.AggregateRole, cmd.ID}, func(c *change) error {
		r, k, seq, err := h.role(ctx, tenant, cmd.ID)
		if err != nil {
			return err
		}
		if !r.exists {
			return notFound("role", cmd.ID)
		}
		if r.managed {
			return ruleError(ErrForbidden, "", "role %q is built in and cannot be deleted", r.name)
		}
		c.record(k, r, seq, events.RoleDeleted{})
		return h.release(ctx, c, tenant, "role_name", r.name, r.id)
	})
}

// Binding is a binding's state.
type Binding struct {
	id          string
	exists      bool
	role        string
	subjectKind string
	subjectID   string
	scope       events.Scope
}

func newBinding(id string) state { return &Binding{id: id} }

// ID returns the binding's id.
func (b *Binding) ID() string { return b.id }

// Role returns the id of the bound role.
func (b *Binding) Role() string { return b.role }

// Subject returns the kind and id of who holds the role.
func (b *Binding) Subject() (kind, id string) { return b.subjectKind, b.subjectID }

// Scope returns where the binding applies.
func (b *Binding) Scope() events.Scope { return b.scope }

func (b *Binding) clone() state { c := *b; return &c }

func (b *Binding) apply(_ events.Envelope, e events.Event) {
	switch e := e.(type) {
	case events.BindingCreated:
		b.exists, b.role, b.subjectKind, b.subjectID, b.scope = true, e.Role, e.SubjectKind, e.SubjectID, e.Scope
	case events.BindingDeleted:
		b.exists = false
	}
}

// CreateBinding grants a role of the caller's tenant to a user, a service
// account or a group at a scope of the tenant (the whole tenant when Scope
// is zero).
type CreateBinding struct {
	Meta
	Role        string
	SubjectKind string // events.SubjectUser, SubjectServiceAccount or SubjectGroup
	SubjectID   string
	Scope       events.Scope
}

// BindingResult is a binding after a command and the sequence to wait for.
type BindingResult struct {
	Binding  *Binding
	Sequence uint64
}

// CreateBindingHandler handles CreateBinding.
type CreateBindingHandler struct{ base }

// Handle checks the role, the subject (a user with access to the tenant,
// or a service account of it) and scope-down (the caller holds the role's
// rules at the scope), then records the binding.
func (h CreateBindingHandler) Handle(ctx context.Context, cmd CreateBinding) (BindingResult, error) {
	tenant := cmd.Caller.Tenant
	if err := h.authorize(cmd.Caller, authz.BindingsCreate, authz.TenantScope(tenant)); err != nil {
		return BindingResult{}, err
	}
	scope, err := h.checkBinding(ctx, cmd)
	if err != nil {
		return BindingResult{}, err
	}
	id := events.NewID()
	out := &Binding{id: id}
	seq, err := h.repo.execute(ctx, cmd.Meta, key{}, func(c *change) error {
		c.record(key{tenant, events.AggregateBinding, id}, out, 0, events.BindingCreated{
			Role: cmd.Role, SubjectKind: cmd.SubjectKind, SubjectID: cmd.SubjectID, Scope: scope,
		})
		return nil
	})
	if err != nil {
		return BindingResult{}, err
	}
	return BindingResult{Binding: out, Sequence: seq}, nil
}

// checkBinding checks a binding's scope, role, subject and scope-down, and
// returns the scope to record.
func (b base) checkBinding(ctx context.Context, cmd CreateBinding) (events.Scope, error) {
	tenant := cmd.Caller.Tenant
	scope, err := bindingScope(tenant, cmd.Scope)
	if err != nil {
		return scope, err
	}
	rules, err := b.roleRules(ctx, tenant, "role", []string{cmd.Role})
	if err != nil {
		return scope, err
	}
	if err := b.scopeDown(cmd.Caller, rules, auth.ScopeOf(tenant, scope), "role", fmt.Sprintf("grant role %q", cmd.Role)); err != nil {
		return scope, err
	}
	if cmd.SubjectKind == events.SubjectGroup {
		g, _, _, err := b.group(ctx, tenant, cmd.SubjectID)
		if err != nil {
			return scope, err
		}
		if !g.exists {
			return scope, invalid("subject_id", "no group %q in tenant %q", cmd.SubjectID, tenant)
		}
	} else if err := b.principalIn(ctx, tenant, cmd.SubjectKind, cmd.SubjectID, "subject"); err != nil {
		return scope, err
	}
	return scope, nil
}

// bindingScope checks a binding's scope: the tenant (the zero scope too)
// or a namespace of it.
func bindingScope(tenant string, s events.Scope) (events.Scope, error) {
	switch s.Level {
	case "", events.ScopeTenant:
		if s.Target != "" && s.Target != tenant {
			return s, invalid("scope.target", "must be the tenant %q", tenant)
		}
		return events.Scope{Level: events.ScopeTenant, Target: tenant}, nil
	case events.ScopeNamespace:
		return s, validNamespace(s.Target)
	}
	return s, invalid("scope.level", "must be tenant or namespace, not %q", s.Level)
}

// DeleteBinding removes a binding.
type DeleteBinding struct {
	Meta
	ID string
}

// DeleteBindingHandler handles DeleteBinding.
type DeleteBindingHandler struct{ base }

// Handle records the deletion. A service account losing a role also loses
// the access tokens issued before (AccessTokensInvalidated, same batch).
func (h DeleteBindingHandler) Handle(ctx context.Context, cmd DeleteBinding) (uint64, error) {
	tenant := cmd.Caller.Tenant
	if err := h.authorize(cmd.Caller, authz.BindingsDelete, authz.TenantScope(tenant)); err != nil {
		return 0, err
	}
	return h.repo.execute(ctx, cmd.Meta, key{tenant, events.AggregateBinding, cmd.ID}, func(c *change) error {
		k := key{tenant, events.AggregateBinding, cmd.ID}
		if !events.ValidToken(cmd.ID) {
			return notFound("binding", cmd.ID)
		}
		st, seq, err := h.repo.load(ctx, k, 0, func() state { return newBinding(cmd.ID) })
		if err != nil {
			return err
		}
		b := st.(*Binding)
		if !b.exists {
			return notFound("binding", cmd.ID)
		}
		c.record(k, b, seq, events.BindingDeleted{})
		if b.subjectKind == events.SubjectServiceAccount {
			sa, sk, sseq, err := h.serviceAccount(ctx, tenant, b.subjectID)
			if err != nil {
				return err
			}
			if sa.exists {
				c.record(sk, sa, sseq, events.AccessTokensInvalidated{Reason: "role " + b.role + " removed"})
			}
		}
		return nil
	})
}
