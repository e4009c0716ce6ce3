package query

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

// MaxChecks bounds the questions of one decision request.
const MaxChecks = 100

// Check is one question to the decision API: may the principal do Action
// on Resource at Node of Tenant?
type Check struct {
	// Tenant defaults to the caller's; no other tenant may be asked about.
	Tenant string
	// Node is a scope node under the tenant ("team.app"), or "" for the
	// whole tenant.
	Node     string
	Action   string
	Resource string
}

// Decisions answers authorization questions for resource servers and
// dialects: the same evaluator commands and queries use. Safe for
// concurrent use.
type Decisions struct{ dir *Directory }

// NewDecisions returns decisions over dir's model.
func NewDecisions(dir *Directory) *Decisions { return &Decisions{dir: dir} }

// Principal returns the principal with id as it acts in tenant: a service
// account of the tenant (by its id or its chosen name) or a user with
// access to it. ok is false for anyone else.
func (d *Decisions) Principal(id, tenant string) (auth.Principal, bool) {
	if p, ok := d.dir.UserInTenant(id, tenant); ok {
		return p, true
	}
	d.dir.mu.RLock()
	defer d.dir.mu.RUnlock()
	if sa := d.dir.accounts[id]; sa != nil && sa.tenant == tenant {
		return sa.principal(), true
	}
	if sa := d.dir.named[[2]string{tenant, id}]; sa != nil {
		return sa.principal(), true
	}
	return auth.Principal{}, false
}

// Decide answers checks about subject, in order, for caller. Every check
// must be about caller's own tenant (ErrForbidden otherwise), well formed
// (a FieldError naming "checks[i].field"), and at most MaxChecks. A nil
// subject (an unknown principal or an invalid token) and a subject
// outside the tenant are denied every check, with the reason.
func (d *Decisions) Decide(caller auth.Principal, subject *auth.Principal, checks []Check) ([]authz.Decision, error) {
	if len(checks) == 0 || len(checks) > MaxChecks {
		return nil, invalid("checks", "give 1 to %d checks", MaxChecks)
	}
	if caller.Tenant == "" {
		return nil, fmt.Errorf("%w: the caller acts in no tenant", ErrForbidden)
	}
	for i := range checks {
		c := &checks[i]
		if c.Tenant == "" {
			c.Tenant = caller.Tenant
		}
		if c.Tenant != caller.Tenant {
			return nil, fmt.Errorf("%w: checks[%d].tenant: only the caller's own tenant %q may be asked about", ErrForbidden, i, caller.Tenant)
		}
		if err := validCheck(i, *c); err != nil {
			return nil, err
		}
	}
	out := make([]authz.Decision, len(checks))
	for i, c := range checks {
		if subject == nil {
			out[i] = authz.Decision{Reason: "no such principal in tenant " + c.Tenant + ", or the token is not valid"}
			continue
		}
		if subject.Tenant != c.Tenant && subject.Kind != auth.KindSystem {
			out[i] = authz.Decision{Reason: "the principal does not act in tenant " + c.Tenant}
			continue
		}
		out[i] = subject.Can(d.dir.Authorizer(), c.Action, c.Resource, authz.Scope{Tenant: c.Tenant, Node: c.Node})
	}
	return out, nil
}

func validCheck(i int, c Check) error {
	field := func(f string) string { return fmt.Sprintf("checks[%d].%s", i, f) }
	switch {
	case c.Action == "" || len(c.Action) > authz.MaxPatternLength || strings.ContainsAny(c.Action, "* \t\n"):
		return invalid(field("action"), "%s must be an action such as %s: 1 to %d characters, no wildcards or spaces", field("action"), authz.ServiceAccountsCreate, authz.MaxPatternLength)
	case len(c.Resource) > authz.MaxPatternLength || strings.ContainsAny(c.Resource, "* \t\n"):
		return invalid(field("resource"), "%s must be at most %d characters, no wildcards or spaces", field("resource"), authz.MaxPatternLength)
	case c.Node != "" && !ValidNamespace(c.Node):
		return invalid(field("scope"), "%s must be a node such as team.app: dot-separated names of lowercase letters, digits, _ and -, each starting with a letter or digit, at most %d characters", field("scope"), MaxNamespace)
	}
	return nil
}

var tenantPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidTenantID reports whether id can be a tenant's: 1 to 63 lowercase
// letters, digits and dashes, starting with a letter or digit. The write
// side creates tenants by the same rule.
func ValidTenantID(id string) bool { return tenantPattern.MatchString(id) }

// MaxNamespace bounds a namespace node's name.
const MaxNamespace = 253

var namespacePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$`)

// ValidNamespace reports whether s can name a namespace node: dot-separated
// segments of lowercase letters, digits, '_' and '-', each starting with a
// letter or digit, at most MaxNamespace characters. The write side names
// nodes by the same rule.
func ValidNamespace(s string) bool { return len(s) <= MaxNamespace && namespacePattern.MatchString(s) }

// ServiceAccountScope returns where the service account id of tenant
// applies (the scope its own roles are bound at); ok is false for an
// unknown account and for another tenant's.
func (d *Decisions) ServiceAccountScope(id, tenant string) (events.Scope, bool) {
	d.dir.mu.RLock()
	defer d.dir.mu.RUnlock()
	if sa := d.dir.accounts[id]; sa != nil && sa.tenant == tenant {
		return sa.scope, true
	}
	return events.Scope{}, false
}
