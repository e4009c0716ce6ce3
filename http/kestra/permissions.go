package kestra

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keyhold/keyhold/authz"
)

// Permissions are Kestra 0.24's permissions, in the order its OpenAPI
// document lists them.
var Permissions = []string{
	"FLOW", "BLUEPRINT", "TEMPLATE", "NAMESPACE", "EXECUTION", "USER", "GROUP", "ROLE", "BINDING",
	"AUDITLOG", "SECRET", "KVSTORE", "IMPERSONATE", "SETTING", "INFRASTRUCTURE", "APP", "APPEXECUTION",
	"TEST", "DASHBOARD", "TENANT_ACCESS", "SERVICE_ACCOUNT", "INVITATION", "GROUP_MEMBERSHIP",
}

// Verbs are Kestra's actions on a permission, in the order a role reads
// back when they came from another dialect.
var Verbs = []string{"CREATE", "READ", "UPDATE", "DELETE"}

// removedPermissions are the permissions 0.24 dropped, with what replaced
// them; a role naming one is refused.
var removedPermissions = map[string]string{
	"ME":        "permission ME was removed in Kestra 0.24: every authenticated user may use /api/v1/me without it",
	"API_TOKEN": "permission API_TOKEN was removed in Kestra 0.24: use SERVICE_ACCOUNT for service accounts and their tokens; personal tokens live under /api/v1/me/api-tokens",
	"APITOKEN":  "permission APITOKEN was removed in Kestra 0.24: use SERVICE_ACCOUNT for service accounts and their tokens; personal tokens live under /api/v1/me/api-tokens",
	"TENANT":    "permission TENANT was removed in Kestra 0.24: use TENANT_ACCESS to manage who has access to a tenant",
}

// iamResources maps the permissions that concern IAM onto the core's
// resources, so that a role made here decides the same requests in every
// dialect (a SERVICE_ACCOUNT CREATE role may create service accounts
// through the k0rdent API too).
var iamResources = map[string][]string{
	"SERVICE_ACCOUNT":  {"iam.serviceAccounts", "iam.serviceAccountCredentials"},
	"ROLE":             {"iam.roles"},
	"GROUP":            {"iam.groups"},
	"BINDING":          {"iam.bindings"},
	"GROUP_MEMBERSHIP": {"iam.groupMembers"},
	"INVITATION":       {"iam.invitations"},
	"TENANT_ACCESS":    {"iam.tenantAccess"},
}

// actionsOf returns the core actions a Kestra permission and verb grant:
// IAM permissions the core's actions (READ is list and get), AUDITLOG READ
// the audit trail, everything else kestra.<PERMISSION>.<verb>.
func actionsOf(permission, verb string) []string {
	if res, ok := iamResources[permission]; ok {
		var out []string
		for _, r := range res {
			if verb == "READ" {
				out = append(out, r+".list", r+".get")
				continue
			}
			out = append(out, r+"."+strings.ToLower(verb))
		}
		return out
	}
	if permission == "AUDITLOG" && verb == "READ" {
		return []string{authz.AuditEventsList}
	}
	return []string{"kestra." + permission + "." + strings.ToLower(verb)}
}

// reverse maps every action actionsOf returns to its permission and verb.
var reverse = func() map[string][2]string {
	m := map[string][2]string{}
	for _, p := range Permissions {
		for _, v := range Verbs {
			for _, a := range actionsOf(p, v) {
				m[a] = [2]string{p, v}
			}
		}
	}
	return m
}()

// permissionError is a refused permissions body, naming the field.
type permissionError struct{ field, message string }

func (e *permissionError) Error() string { return e.message }

// rulesOf turns a Kestra permissions object into one allow rule per
// permission, listing the actions of its verbs in the order given (a
// verb given twice counts once). Permissions without verbs grant nothing
// and add no rule.
func rulesOf(perms map[string][]string) ([]authz.Rule, error) {
	names := make([]string, 0, len(perms))
	for p := range perms {
		names = append(names, p)
	}
	// Map order is random; rules follow Kestra's permission order.
	slices.SortFunc(names, func(a, b string) int { return slices.Index(Permissions, a) - slices.Index(Permissions, b) })
	var rules []authz.Rule
	for _, p := range names {
		if msg, gone := removedPermissions[p]; gone {
			return nil, &permissionError{field: "permissions." + p, message: msg}
		}
		if !slices.Contains(Permissions, p) {
			return nil, &permissionError{field: "permissions." + p, message: fmt.Sprintf("unknown permission %q; known: %s", p, strings.Join(Permissions, ", "))}
		}
		var actions []string
		seen := map[string]bool{}
		for i, v := range perms[p] {
			if !slices.Contains(Verbs, v) {
				return nil, &permissionError{field: fmt.Sprintf("permissions.%s[%d]", p, i), message: fmt.Sprintf("unknown action %q for %s; known: %s", v, p, strings.Join(Verbs, ", "))}
			}
			if seen[v] {
				continue
			}
			seen[v] = true
			actions = append(actions, actionsOf(p, v)...)
		}
		if len(actions) > 0 {
			rules = append(rules, authz.Rule{Effect: authz.Allow, Actions: actions})
		}
	}
	return rules, nil
}

// permissionsOf reads a role's rules back as Kestra permissions. A
// permission's verb is shown when the role allows every action it maps to
// and denies none of them; verbs appear in the order the rules name them,
// so a role made through this dialect reads back as it was written.
// Patterns (roles made elsewhere, "iam.roles.*") show every verb they
// cover, in Verbs order.
func permissionsOf(rules []authz.Rule) map[string][]string {
	var candidates [][2]string
	for _, r := range rules {
		if r.Effect != authz.Allow || len(r.Resources) > 0 {
			continue
		}
		for _, a := range r.Actions {
			if pv, ok := reverse[a]; ok {
				candidates = append(candidates, pv)
				continue
			}
			for _, p := range Permissions {
				for _, v := range Verbs {
					for _, mapped := range actionsOf(p, v) {
						if authz.MatchAction(a, mapped) {
							candidates = append(candidates, [2]string{p, v})
							break
						}
					}
				}
			}
		}
	}
	out := map[string][]string{}
	for _, pv := range candidates {
		p, v := pv[0], pv[1]
		if slices.Contains(out[p], v) || !grants(rules, actionsOf(p, v)) {
			continue
		}
		out[p] = append(out[p], v)
	}
	return out
}

// grants reports whether rules allow every action (on every resource) and
// deny none.
func grants(rules []authz.Rule, actions []string) bool {
	for _, a := range actions {
		allowed := false
		for _, r := range rules {
			hit := slices.ContainsFunc(r.Actions, func(p string) bool { return authz.MatchAction(p, a) })
			switch {
			case hit && r.Effect == authz.Deny:
				return false
			case hit && r.Effect == authz.Allow && len(r.Resources) == 0:
				allowed = true
			}
		}
		if !allowed {
			return false
		}
	}
	return true
}
