package commands

import (
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
)

// Input limits.
const (
	MaxDisplayName = 128
	MaxDescription = 1024
	MaxRoles       = 32
	MaxNamespace   = 253
)

var (
	tenantPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	usernamePattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$`)
	namespacePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$`)
)

// ValidTenantID reports whether id is a usable tenant id: 1 to 63
// lowercase letters, digits and dashes, starting with a letter or digit.
func ValidTenantID(id string) bool { return tenantPattern.MatchString(id) }

// ValidScopeTarget reports whether s can be a scope's target: a tenant id
// or a namespace name. A filter on anything else matches nothing, so a
// query can refuse it as bad input.
func ValidScopeTarget(s string) bool {
	return ValidTenantID(s) || len(s) <= MaxNamespace && namespacePattern.MatchString(s)
}

func validText(field, s string, required bool, max int) error {
	if required && strings.TrimSpace(s) == "" {
		return invalid(field, "is required and must not be blank")
	}
	if !utf8.ValidString(s) {
		return invalid(field, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalid(field, "must be at most %d characters (got %d)", max, n)
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return invalid(field, "must not contain control characters")
		}
	}
	return nil
}

func validUsername(s string) error {
	if !usernamePattern.MatchString(s) {
		return invalid("username", "must be 1-64 characters of letters, digits and . _ @ + -, starting with a letter or digit")
	}
	return nil
}

func validEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 254 {
		return invalid("email", "must be a plain address like name@example.com")
	}
	return nil
}

// validScope checks a service-account scope against the tenant's allowed
// levels and fills in the tenant target.
func validScope(t *Tenant, s events.Scope) (events.Scope, error) {
	switch s.Level {
	case "":
		return s, invalid("scope.level", "is required: one of %s", strings.Join(t.scopeLevels, ", "))
	case events.ScopeTenant:
		if s.Target != "" && s.Target != t.id {
			return s, invalid("scope.target", "must be empty or the caller's tenant %q for level tenant", t.id)
		}
		s.Target = t.id
	case events.ScopeNamespace:
		if len(s.Target) > MaxNamespace || !namespacePattern.MatchString(s.Target) {
			return s, invalid("scope.target", "must be a namespace like team.app (lowercase letters, digits, _ and -, dot-separated, at most %d characters)", MaxNamespace)
		}
	default:
		return s, invalid("scope.level", "must be tenant or namespace, not %q", s.Level)
	}
	if !slices.Contains(t.scopeLevels, s.Level) {
		return s, invalid("scope.level", "level %q is not allowed by the tenant's policy (allowed: %s)", s.Level, strings.Join(t.scopeLevels, ", "))
	}
	return s, nil
}

// validRoles checks role names and returns them sorted without duplicates.
func validRoles(roles []string) ([]string, error) {
	if len(roles) > MaxRoles {
		return nil, invalid("roles", "must hold at most %d roles", MaxRoles)
	}
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if !auth.IsTenantRole(r) {
			return nil, invalid("roles", "unknown role %q (known: %s)", r, strings.Join(auth.TenantRoles, ", "))
		}
		out = append(out, r)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// missingRole returns the first of roles that caller does not hold within
// scope of tenant, and false when it holds them all. It is the one rule of
// scope-down: assigning roles to a principal and acting for one (creating
// its credentials, and any other way to obtain its rights) both need every
// role involved, so no administrator reaches a right it does not hold.
func missingRole(caller auth.Principal, tenant string, scope events.Scope, roles []string) (string, bool) {
	for _, r := range roles {
		if !caller.Holds(r, tenant, scope) {
			return r, true
		}
	}
	return "", false
}

// scopeDown enforces that the caller holds each newly assigned role within
// the target scope.
func scopeDown(caller auth.Principal, tenant string, scope events.Scope, added []string) error {
	if r, missing := missingRole(caller, tenant, scope, added); missing {
		return ruleError(ErrForbidden, "roles", "you cannot assign role %q: you do not hold it within %s", r, scopeText(scope))
	}
	return nil
}

// mayActFor enforces that the caller holds every role of sa within sa's
// scope before it obtains sa's rights, e.g. by creating a credential.
func mayActFor(caller auth.Principal, sa *ServiceAccount) error {
	if r, missing := missingRole(caller, sa.tenant, sa.scope, sa.roles); missing {
		return ruleError(ErrForbidden, "", "you cannot act for service account %q: it holds role %q, which you do not hold within %s", sa.id, r, scopeText(sa.scope))
	}
	return nil
}

func scopeText(scope events.Scope) string {
	if scope.Target != "" {
		return scope.Level + " " + scope.Target
	}
	return scope.Level
}

func validStatus(s string) error {
	if s != StatusActive && s != StatusDisabled {
		return invalid("status", "must be active or disabled, not %q", s)
	}
	return nil
}
