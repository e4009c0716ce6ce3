// Package authz decides what a principal may do. It holds the
// authorization model every dialect shares: roles as data (sets of rules),
// bindings of roles to principals or groups at a scope, group memberships,
// tenant access and superadmins, and one evaluator, Model.Can, that answers
// every question with a reason. Dialects translate their own vocabulary
// (Kestra permissions, Kong endpoint rules, Fleet capability sets, k0rdent
// actions) into rules and requests; they never decide themselves.
package authz

import (
	"errors"
	"fmt"
	"strings"
)

// Scope is where a grant applies or a request acts: the instance (Tenant
// empty), a tenant (Node empty), or a node under a tenant. A node is a
// dot-separated path (a Kestra namespace "company.team", a k0rdent
// folder or project, a Kong workspace, a Fleet fleet); a grant on a node
// covers the node and its descendants, a grant on a tenant covers all of
// its nodes, and an instance grant covers every tenant.
type Scope struct {
	Tenant string
	Node   string
}

// Instance is the instance-level scope.
var Instance = Scope{}

// TenantScope returns the scope of a whole tenant.
func TenantScope(tenant string) Scope { return Scope{Tenant: tenant} }

// Covers reports whether a grant at s applies to a request at t.
func (s Scope) Covers(t Scope) bool {
	if s.Tenant == "" {
		return true
	}
	if s.Tenant != t.Tenant {
		return false
	}
	if s.Node == "" {
		return true
	}
	n := len(s.Node)
	return t.Node == s.Node || len(t.Node) > n && t.Node[n] == '.' && t.Node[:n] == s.Node
}

// String renders the scope for reasons and logs: "instance", "tenant acme",
// "acme/team.app".
func (s Scope) String() string {
	switch {
	case s.Tenant == "":
		return "instance"
	case s.Node == "":
		return "tenant " + s.Tenant
	}
	return s.Tenant + "/" + s.Node
}

// Effect says whether a rule allows or denies.
type Effect uint8

// Effects. A deny that matches a request wins over any allow.
const (
	Allow Effect = iota + 1
	Deny
)

func (e Effect) String() string {
	switch e {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	}
	return fmt.Sprintf("effect(%d)", uint8(e))
}

// Rule allows or denies actions on resources. It is the one form every
// dialect writes its roles in:
//   - a permission with verbs (Kestra "FLOW" with CREATE, READ) is Actions
//     {"kestra.FLOW.create", "kestra.FLOW.read"} on every resource; IAM
//     permissions ("SERVICE_ACCOUNT") are the core's own actions
//     ("iam.serviceAccounts.create", ...), see http/kestra;
//   - an endpoint rule (Kong workspace, "/services/*", read and create,
//     negative) is Actions {"read", "create"}, Resources {"/services/*"},
//     Effect Deny, with the workspace as the binding's scope;
//   - a capability set (Fleet "maintainer") is a role whose rules list its
//     actions; a principal's endpoint allowlist narrows it further.
//
// Action patterns are dot-separated; a segment "*" matches any one
// segment, and a last segment "*" matches any rest ("iam.*" matches
// "iam.serviceAccounts.create"). A lone "*" matches every action.
// Resource patterns are slash-separated the same way ("/services/*"
// matches "/services/abc"); empty Resources
// means every resource. In resources "*" is always exactly one segment
// (Kong's "/services/*" does not reach "/services/a/routes").
type Rule struct {
	Effect    Effect
	Actions   []string
	Resources []string
}

// String renders the rule for reasons: "allow iam.serviceAccounts.create on *".
func (r Rule) String() string {
	res := "*"
	if len(r.Resources) > 0 {
		res = strings.Join(r.Resources, ",")
	}
	return fmt.Sprintf("%s %s on %s", r.Effect, strings.Join(r.Actions, ","), res)
}

// Limits on the model's inputs, so one role or principal cannot make every
// decision slow.
const (
	MaxRules         = 256
	MaxPatterns      = 256
	MaxPatternLength = 512
)

var (
	// ErrInvalidRule means a rule has no effect, no action, an empty or
	// oversized pattern, or too many patterns.
	ErrInvalidRule = errors.New("authz: invalid rule")

	// ErrInvalidBinding means a binding lacks its id, role or subject.
	ErrInvalidBinding = errors.New("authz: invalid binding")
)

// Validate checks a rule's form.
func (r Rule) Validate() error {
	if r.Effect != Allow && r.Effect != Deny {
		return fmt.Errorf("%w: effect must be allow or deny", ErrInvalidRule)
	}
	if len(r.Actions) == 0 {
		return fmt.Errorf("%w: at least one action", ErrInvalidRule)
	}
	if len(r.Actions) > MaxPatterns || len(r.Resources) > MaxPatterns {
		return fmt.Errorf("%w: at most %d actions and %d resources", ErrInvalidRule, MaxPatterns, MaxPatterns)
	}
	for _, p := range append(append([]string(nil), r.Actions...), r.Resources...) {
		if p == "" || len(p) > MaxPatternLength {
			return fmt.Errorf("%w: patterns must be 1 to %d bytes", ErrInvalidRule, MaxPatternLength)
		}
	}
	return nil
}

// Role is a named set of rules in a tenant. Managed roles are built in
// (seeded per tenant, not editable); Default roles are granted to new
// members of the tenant.
type Role struct {
	ID      string
	Tenant  string
	Name    string
	Managed bool
	Default bool
	Rules   []Rule
}

// Validate checks the role's rules.
func (r Role) Validate() error {
	if r.ID == "" {
		return fmt.Errorf("%w: role without id", ErrInvalidRule)
	}
	if len(r.Rules) > MaxRules {
		return fmt.Errorf("%w: at most %d rules in a role", ErrInvalidRule, MaxRules)
	}
	for i, rule := range r.Rules {
		if err := rule.Validate(); err != nil {
			return fmt.Errorf("rule %d: %w", i, err)
		}
	}
	return nil
}

// Binding grants a role to a subject (a principal id or a group id) at a
// scope.
type Binding struct {
	ID      string
	Role    string
	Subject string
	Scope   Scope
}

// Membership is a member's standing in a group.
type Membership uint8

// Memberships. An owner manages the group's members.
const (
	Member Membership = iota + 1
	Owner
)

// Principal kinds.
const (
	KindUser           = "user"
	KindServiceAccount = "service_account"
	KindSystem         = "system"
)

// Principal is what the model knows of a caller besides its bindings.
type Principal struct {
	ID   string
	Kind string
	// Tenant is the tenant a service account belongs to; users are
	// instance-level and reach tenants through tenant access.
	Tenant     string
	Superadmin bool
	Disabled   bool
	// Endpoints, when not nil, is an allowlist of resource patterns: a
	// request whose resource matches none is denied whatever the roles
	// say. It only ever narrows (Fleet API-only users).
	Endpoints []string
	// Own, when set, are roles the principal holds without bindings of
	// their own: a service account's role list, at its scope. Principals
	// with the same roles at the same scope share one set, which is never
	// written after PutPrincipal: a binding per account and role would
	// cost some 300 bytes an account.
	Own *RoleSet
}

// RoleSet is roles (role keys, see RoleKey) held at one scope.
type RoleSet struct {
	Roles []string
	Scope Scope
}

// Request is one question: may the principal do Action on Resource at
// Scope? An empty Resource stands for the scope itself.
type Request struct {
	Action   string
	Resource string
	Scope    Scope
	// Roles, when not nil, limits the allow rules that count to those of
	// the roles with these ids (a token narrowed to some of its holder's
	// roles). Deny rules count whatever the limit.
	Roles []string
}

// Decision is the answer with its reason, fit to show the caller.
type Decision struct {
	Allowed bool
	Reason  string
}
