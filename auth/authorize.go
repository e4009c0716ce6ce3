package auth

import (
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

// Authorizer answers authorization questions about principals by id; the
// server's directory keeps an authz.Model current from the log for it.
// Implementations must be safe for concurrent use.
type Authorizer interface {
	Can(id string, req authz.Request) authz.Decision
	Missing(id string, rules []authz.Rule, scope authz.Scope, roles []string) (authz.Rule, bool)
	// Bound returns what a subject's own bindings grant; Held adds what
	// the bindings of its groups grant.
	Bound(subject string) []authz.Bound
	Held(subject string) []authz.Bound
	// IsOwner reports whether principal owns group.
	IsOwner(group, principal string) bool
	// BindingsOf returns a subject's own bindings; GroupsOf the groups a
	// principal is a member of.
	BindingsOf(subject string) []authz.Binding
	GroupsOf(principal string) []string
}

// Can decides whether p may do action on resource at scope. The operator's
// own principal (System) may do everything without asking a; every other
// principal is decided by a, within the roles its token is limited to.
// A nil a allows only the operator.
func (p Principal) Can(a Authorizer, action, resource string, scope authz.Scope) authz.Decision {
	if p.Kind == KindSystem {
		return authz.Decision{Allowed: true, Reason: "operator"}
	}
	if a == nil {
		return authz.Decision{Reason: "no authorization model"}
	}
	return a.Can(p.ID, authz.Request{Action: action, Resource: resource, Scope: scope, Roles: p.roleKeys()})
}

// Missing returns the first allow rule of rules that p does not hold at
// scope (scope-down), or ok true when p holds them all.
func (p Principal) Missing(a Authorizer, rules []authz.Rule, scope authz.Scope) (missing authz.Rule, ok bool) {
	if p.Kind == KindSystem {
		return authz.Rule{}, true
	}
	if a == nil {
		for _, r := range rules {
			if r.Effect == authz.Allow {
				return r, false
			}
		}
		return authz.Rule{}, true
	}
	return a.Missing(p.ID, rules, scope, p.roleKeys())
}

// roleKeys turns the token limit into model role keys (nil: no limit).
func (p Principal) roleKeys() []string {
	if p.Roles == nil {
		return nil
	}
	keys := make([]string, len(p.Roles))
	for i, r := range p.Roles {
		keys[i] = authz.RoleKey(p.Tenant, r)
	}
	return keys
}

// ScopeOf is the authorization scope of an events scope in tenant.
func ScopeOf(tenant string, s events.Scope) authz.Scope {
	switch s.Level {
	case events.ScopeInstance:
		return authz.Instance
	case events.ScopeNamespace:
		return authz.Scope{Tenant: tenant, Node: s.Target}
	}
	return authz.TenantScope(tenant)
}

// RulesOf turns rules as the log stores them into the evaluator's.
func RulesOf(rules []events.Rule) []authz.Rule {
	out := make([]authz.Rule, len(rules))
	for i, r := range rules {
		e := authz.Allow
		if r.Effect == events.EffectDeny {
			e = authz.Deny
		}
		out[i] = authz.Rule{Effect: e, Actions: r.Actions, Resources: r.Resources}
	}
	return out
}

// EventRules turns the evaluator's rules into the log's form.
func EventRules(rules []authz.Rule) []events.Rule {
	out := make([]events.Rule, len(rules))
	for i, r := range rules {
		e := events.EffectAllow
		if r.Effect == authz.Deny {
			e = events.EffectDeny
		}
		out[i] = events.Rule{Effect: e, Actions: r.Actions, Resources: r.Resources}
	}
	return out
}
