package authz_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/authz"
)

func allow(actions []string, resources ...string) authz.Rule {
	return authz.Rule{Effect: authz.Allow, Actions: actions, Resources: resources}
}

func deny(actions []string, resources ...string) authz.Rule {
	return authz.Rule{Effect: authz.Deny, Actions: actions, Resources: resources}
}

// fixture builds a model with two tenants, roles of every dialect family
// and principals holding them directly, through a group, or not at all.
func fixture(t *testing.T) *authz.Model {
	t.Helper()
	m := authz.NewModel()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	acme, globex := authz.TenantScope("acme"), authz.TenantScope("globex")
	team := authz.Scope{Tenant: "acme", Node: "company.team"}
	must(m.PutRole(authz.Role{ID: "admin", Tenant: "acme", Name: "tenant-admin", Managed: true, Rules: []authz.Rule{
		allow([]string{"iam.serviceAccounts.*", "iam.serviceAccountCredentials.*"}),
	}}))
	must(m.PutRole(authz.Role{ID: "flows", Tenant: "acme", Name: "flow-editor", Rules: []authz.Rule{
		allow([]string{"kestra.FLOW.CREATE", "kestra.FLOW.READ"}),
	}}))
	must(m.PutRole(authz.Role{ID: "kong", Tenant: "acme", Name: "services-no-delete", Rules: []authz.Rule{
		allow([]string{"read", "create", "update", "delete"}, "/services/*"),
		deny([]string{"delete"}, "/services/*"),
	}}))
	must(m.PutRole(authz.Role{ID: "observer", Tenant: "acme", Name: "observer", Rules: []authz.Rule{
		allow([]string{"fleet.hosts.read", "fleet.queries.read"}),
	}}))
	must(m.PutRole(authz.Role{ID: "gadmin", Tenant: "globex", Name: "tenant-admin", Rules: []authz.Rule{allow([]string{"*"})}}))

	m.PutPrincipal(authz.Principal{ID: "sa-admin", Kind: authz.KindServiceAccount, Tenant: "acme"})
	must(m.Bind(authz.Binding{ID: "b1", Role: "admin", Subject: "sa-admin", Scope: acme}))
	m.PutPrincipal(authz.Principal{ID: "sa-team", Kind: authz.KindServiceAccount, Tenant: "acme"})
	must(m.Bind(authz.Binding{ID: "b2", Role: "flows", Subject: "sa-team", Scope: team}))
	m.PutPrincipal(authz.Principal{ID: "alice", Kind: authz.KindUser})
	m.GrantTenant("alice", "acme")
	m.SetMember("g-kong", "alice", authz.Member)
	must(m.Bind(authz.Binding{ID: "b3", Role: "kong", Subject: "g-kong", Scope: acme}))
	m.PutPrincipal(authz.Principal{ID: "bob", Kind: authz.KindUser}) // no tenant access
	must(m.Bind(authz.Binding{ID: "b4", Role: "admin", Subject: "bob", Scope: acme}))
	m.PutPrincipal(authz.Principal{ID: "root", Kind: authz.KindUser, Superadmin: true})
	m.PutPrincipal(authz.Principal{ID: "api-only", Kind: authz.KindUser, Endpoints: []string{"/api/v1/fleet/hosts"}})
	m.GrantTenant("api-only", "acme")
	must(m.Bind(authz.Binding{ID: "b5", Role: "observer", Subject: "api-only", Scope: acme}))
	m.PutPrincipal(authz.Principal{ID: "sa-globex", Kind: authz.KindServiceAccount, Tenant: "globex"})
	must(m.Bind(authz.Binding{ID: "b6", Role: "gadmin", Subject: "sa-globex", Scope: globex}))
	m.PutPrincipal(authz.Principal{ID: "off", Kind: authz.KindServiceAccount, Tenant: "acme", Disabled: true})
	must(m.Bind(authz.Binding{ID: "b7", Role: "admin", Subject: "off", Scope: acme}))
	return m
}

func TestCan(t *testing.T) {
	m := fixture(t)
	acme := authz.TenantScope("acme")
	tests := []struct {
		name      string
		principal string
		req       authz.Request
		allowed   bool
		reason    string
	}{
		{"tenant role allows its actions", "sa-admin", authz.Request{Action: "iam.serviceAccounts.create", Scope: acme}, true, `role "tenant-admin"`},
		{"tenant role covers a node", "sa-admin", authz.Request{Action: "iam.serviceAccounts.list", Scope: authz.Scope{Tenant: "acme", Node: "a.b"}}, true, "tenant acme"},
		{"action outside the role", "sa-admin", authz.Request{Action: "iam.roles.create", Scope: acme}, false, "no role grants iam.roles.create"},
		{"node grant covers descendants", "sa-team", authz.Request{Action: "kestra.FLOW.CREATE", Scope: authz.Scope{Tenant: "acme", Node: "company.team.sub"}}, true, "acme/company.team"},
		{"node grant not the parent", "sa-team", authz.Request{Action: "kestra.FLOW.CREATE", Scope: authz.Scope{Tenant: "acme", Node: "company"}}, false, "no role grants"},
		{"node grant not a sibling with a shared prefix", "sa-team", authz.Request{Action: "kestra.FLOW.READ", Scope: authz.Scope{Tenant: "acme", Node: "company.teamx"}}, false, "no role grants"},
		{"node grant not the tenant", "sa-team", authz.Request{Action: "kestra.FLOW.READ", Scope: acme}, false, "no role grants"},
		{"group-derived allow", "alice", authz.Request{Action: "create", Resource: "/services/abc", Scope: acme}, true, "through group g-kong"},
		{"negative rule wins", "alice", authz.Request{Action: "delete", Resource: "/services/abc", Scope: acme}, false, "denied by"},
		{"endpoint pattern segment", "alice", authz.Request{Action: "read", Resource: "/routes/abc", Scope: acme}, false, "no role grants"},
		{"star is one segment", "alice", authz.Request{Action: "read", Resource: "/services/abc/plugins", Scope: acme}, false, "no role grants"},
		{"user without tenant access", "bob", authz.Request{Action: "iam.serviceAccounts.create", Scope: acme}, false, "no access to tenant acme"},
		{"superadmin everywhere", "root", authz.Request{Action: "anything.at.all", Scope: authz.TenantScope("globex")}, true, "superadmin"},
		{"superadmin at instance", "root", authz.Request{Action: "iam.tenants.create", Scope: authz.Instance}, true, "superadmin"},
		{"tenant admin not at instance", "sa-admin", authz.Request{Action: "iam.serviceAccounts.create", Scope: authz.Instance}, false, "no role grants"},
		{"allowlist lets a listed endpoint through", "api-only", authz.Request{Action: "fleet.hosts.read", Resource: "/api/v1/fleet/hosts", Scope: acme}, true, `role "observer"`},
		{"allowlist never widens", "api-only", authz.Request{Action: "fleet.hosts.write", Resource: "/api/v1/fleet/hosts", Scope: acme}, false, "no role grants"},
		{"allowlist narrows the role", "api-only", authz.Request{Action: "fleet.queries.read", Resource: "/api/v1/fleet/queries", Scope: acme}, false, "allowlist"},
		{"cross-tenant never, even with a wildcard role", "sa-globex", authz.Request{Action: "iam.serviceAccounts.list", Scope: acme}, false, "no access to tenant acme"},
		{"wildcard role in its own tenant", "sa-globex", authz.Request{Action: "iam.serviceAccounts.list", Scope: authz.TenantScope("globex")}, true, "allowed"},
		{"disabled principal", "off", authz.Request{Action: "iam.serviceAccounts.list", Scope: acme}, false, "disabled"},
		{"unknown principal", "ghost", authz.Request{Action: "iam.serviceAccounts.list", Scope: acme}, false, "unknown principal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := m.Can(tt.principal, tt.req)
			if d.Allowed != tt.allowed || !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("Can(%s, %+v) = %+v, want allowed=%v with reason containing %q", tt.principal, tt.req, d, tt.allowed, tt.reason)
			}
		})
	}
}

func TestChangesApplyAtOnce(t *testing.T) {
	m := fixture(t)
	acme := authz.TenantScope("acme")
	req := authz.Request{Action: "create", Resource: "/services/x", Scope: acme}
	steps := []struct {
		name    string
		change  func()
		allowed bool
	}{
		{"member of the group", func() {}, true},
		{"removed from the group", func() { m.RemoveMember("g-kong", "alice") }, false},
		{"added again", func() { m.SetMember("g-kong", "alice", authz.Owner) }, true},
		{"role narrowed", func() {
			if err := m.PutRole(authz.Role{ID: "kong", Tenant: "acme", Name: "services-read", Rules: []authz.Rule{allow([]string{"read"}, "/services/*")}}); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"role widened", func() {
			if err := m.PutRole(authz.Role{ID: "kong", Tenant: "acme", Name: "services-all", Rules: []authz.Rule{allow([]string{"*"}, "/services/*")}}); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"binding removed", func() { m.Unbind("b3") }, false},
		{"bound directly", func() {
			if err := m.Bind(authz.Binding{ID: "b9", Role: "kong", Subject: "alice", Scope: acme}); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"tenant access revoked", func() { m.RevokeTenant("alice", "acme") }, false},
		{"tenant access back", func() { m.GrantTenant("alice", "acme") }, true},
		{"role deleted", func() { m.DeleteRole("kong") }, false},
	}
	for _, s := range steps {
		s.change()
		if d := m.Can("alice", req); d.Allowed != s.allowed {
			t.Fatalf("after %s: %+v, want allowed=%v", s.name, d, s.allowed)
		}
	}
	if !m.IsOwner("g-kong", "alice") {
		t.Fatal("alice should own g-kong after SetMember(Owner)")
	}
	m.RemovePrincipal("sa-admin")
	if d := m.Can("sa-admin", authz.Request{Action: "iam.serviceAccounts.list", Scope: acme}); d.Allowed {
		t.Fatalf("removed principal still allowed: %+v", d)
	}
}

func TestMissing(t *testing.T) {
	m := fixture(t)
	acme := authz.TenantScope("acme")
	team := authz.Scope{Tenant: "acme", Node: "company.team"}
	tests := []struct {
		name      string
		principal string
		rules     []authz.Rule
		scope     authz.Scope
		held      bool
	}{
		{"holds exactly", "sa-admin", []authz.Rule{allow([]string{"iam.serviceAccounts.create"})}, acme, true},
		{"holds a wildcard it has", "sa-admin", []authz.Rule{allow([]string{"iam.serviceAccounts.*"})}, acme, true},
		{"not a wider wildcard", "sa-admin", []authz.Rule{allow([]string{"iam.*"})}, acme, false},
		{"not another action", "sa-admin", []authz.Rule{allow([]string{"audit.events.read"})}, acme, false},
		{"a tenant grant covers a node", "sa-admin", []authz.Rule{allow([]string{"iam.serviceAccounts.get"})}, team, true},
		{"a node grant does not cover the tenant", "sa-team", []authz.Rule{allow([]string{"kestra.FLOW.READ"})}, acme, false},
		{"a node grant covers itself", "sa-team", []authz.Rule{allow([]string{"kestra.FLOW.READ"})}, team, true},
		{"a deny need not be held", "sa-team", []authz.Rule{allow([]string{"kestra.FLOW.READ"}), deny([]string{"*"})}, team, true},
		{"an allow blocked by the holder's own deny", "alice", []authz.Rule{allow([]string{"delete"}, "/services/x")}, acme, false},
		{"resource covered", "alice", []authz.Rule{allow([]string{"read"}, "/services/x")}, acme, true},
		{"resource not covered", "alice", []authz.Rule{allow([]string{"read"}, "/routes/x")}, acme, false},
		{"every resource is wider than a pattern", "alice", []authz.Rule{allow([]string{"read"})}, acme, false},
		{"superadmin holds everything", "root", []authz.Rule{allow([]string{"*"})}, acme, true},
		{"cross-tenant holds nothing", "sa-globex", []authz.Rule{allow([]string{"iam.serviceAccounts.list"})}, acme, false},
		{"disabled holds nothing", "off", []authz.Rule{allow([]string{"iam.serviceAccounts.list"})}, acme, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := m.Missing(tt.principal, tt.rules, tt.scope, nil)
			if ok != tt.held {
				t.Fatalf("Missing = %v, %v; want held=%v", r, ok, tt.held)
			}
			if !ok && r.Effect != authz.Allow {
				t.Fatalf("missing rule %v should be an allow rule", r)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, value string
		action         bool
		want           bool
	}{
		{"*", "", true, true},
		{"iam.*", "iam.serviceAccounts.create", true, true},
		{"iam.*", "iam", true, false},
		{"iam.*.create", "iam.serviceAccounts.create", true, true},
		{"iam.*.create", "iam.serviceAccounts.delete", true, false},
		{"iam.serviceAccounts", "iam.serviceAccounts.create", true, false},
		{"/services/*", "/services/a", false, true},
		{"/services/*", "/services", false, false},
		{"/services/*/plugins", "/services/a/plugins", false, true},
		{"/services/*/plugins", "/services/a/routes", false, false},
		{"/services", "/services/", false, false},
		{"iam.serviceAccounts.create", "iam.serviceAccounts.create", true, true},
		{"iam.serviceAccounts.create", "iam.serviceAccounts.delete", true, false},
		{"/services/a", "/services/a", false, true},
		{"/services/a", "/services/a/", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.value, func(t *testing.T) {
			got := authz.MatchResource(tt.pattern, tt.value)
			if tt.action {
				got = authz.MatchAction(tt.pattern, tt.value)
			}
			if got != tt.want {
				t.Fatalf("match(%q, %q) = %v", tt.pattern, tt.value, got)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	m := authz.NewModel()
	bad := []authz.Role{
		{Rules: []authz.Rule{allow([]string{"a"})}},
		{ID: "r", Rules: []authz.Rule{{Actions: []string{"a"}}}},
		{ID: "r", Rules: []authz.Rule{allow(nil)}},
		{ID: "r", Rules: []authz.Rule{allow([]string{""})}},
		{ID: "r", Rules: []authz.Rule{allow([]string{strings.Repeat("a", authz.MaxPatternLength+1)})}},
	}
	for i, r := range bad {
		if err := m.PutRole(r); err == nil {
			t.Errorf("role %d accepted: %+v", i, r)
		}
	}
	if err := m.Bind(authz.Binding{ID: "b", Role: "r"}); err == nil {
		t.Error("binding without a subject accepted")
	}
}

// A deny wins wherever the index keeps it: an exact allow against a
// wildcard deny of another role, whichever was bound first.
func TestDenyFromAnotherListWins(t *testing.T) {
	acme := authz.TenantScope("acme")
	for _, order := range [][]string{{"allow", "deny"}, {"deny", "allow"}} {
		t.Run(strings.Join(order, "_then_"), func(t *testing.T) {
			m := authz.NewModel()
			m.PutPrincipal(authz.Principal{ID: "sa", Kind: authz.KindServiceAccount, Tenant: "acme"})
			roles := map[string][]authz.Rule{
				"allow": {allow([]string{"iam.serviceAccounts.delete"})},
				"deny":  {deny([]string{"*"}, "/locked/*"), deny([]string{"iam.*"}, "/frozen")},
			}
			for _, r := range order {
				if err := m.PutRole(authz.Role{ID: r, Tenant: "acme", Name: r, Rules: roles[r]}); err != nil {
					t.Fatal(err)
				}
				if err := m.Bind(authz.Binding{ID: r, Role: r, Subject: "sa", Scope: acme}); err != nil {
					t.Fatal(err)
				}
			}
			for _, tt := range []struct {
				resource string
				allowed  bool
			}{{"/open", true}, {"/locked/x", false}, {"/frozen", false}} {
				d := m.Can("sa", authz.Request{Action: "iam.serviceAccounts.delete", Resource: tt.resource, Scope: acme})
				if d.Allowed != tt.allowed {
					t.Errorf("%s: %+v, want allowed=%v", tt.resource, d, tt.allowed)
				}
			}
		})
	}
}

// A binding may arrive before its role (a log binds a role before the
// event that seeds it): it grants nothing until the role is put.
func TestBindingBeforeItsRole(t *testing.T) {
	m := authz.NewModel()
	m.PutPrincipal(authz.Principal{ID: "sa", Kind: authz.KindServiceAccount, Tenant: "acme"})
	if err := m.Bind(authz.Binding{ID: "b", Role: "later", Subject: "sa", Scope: authz.TenantScope("acme")}); err != nil {
		t.Fatal(err)
	}
	req := authz.Request{Action: "iam.serviceAccounts.list", Scope: authz.TenantScope("acme")}
	if d := m.Can("sa", req); d.Allowed {
		t.Fatalf("allowed by a role that does not exist: %s", d.Reason)
	}
	if err := m.PutRole(authz.Role{ID: "later", Name: "later", Rules: []authz.Rule{allow([]string{"iam.*"})}}); err != nil {
		t.Fatal(err)
	}
	if d := m.Can("sa", req); !d.Allowed {
		t.Fatalf("denied once the role exists: %s", d.Reason)
	}
}

// FuzzCan checks the evaluator's invariants on arbitrary requests: it
// never panics, a cross-tenant service account is never allowed, a
// disabled principal never, and a principal with an allowlist is never
// allowed a resource outside it.
func FuzzCan(f *testing.F) {
	f.Add("iam.serviceAccounts.create", "/services/a", "acme", "company.team")
	f.Add("*", "", "", "")
	f.Add("delete", "/services/*", "globex", "a..b")
	f.Fuzz(func(t *testing.T, action, resource, tenant, node string) {
		m := fixture(t)
		req := authz.Request{Action: action, Resource: resource, Scope: authz.Scope{Tenant: tenant, Node: node}}
		for _, p := range []string{"sa-admin", "sa-team", "alice", "bob", "root", "api-only", "sa-globex", "off"} {
			d := m.Can(p, req)
			if !d.Allowed {
				continue
			}
			switch {
			case p == "off":
				t.Fatalf("disabled principal allowed: %+v", req)
			case strings.HasPrefix(p, "sa-") && tenant != map[string]string{"sa-globex": "globex"}[p] && tenant != "acme":
				t.Fatalf("%s allowed in tenant %q: %+v", p, tenant, d)
			case p == "sa-globex" && tenant != "globex":
				t.Fatalf("sa-globex allowed in tenant %q: %+v", tenant, d)
			case p == "api-only" && resource != "/api/v1/fleet/hosts":
				t.Fatalf("allowlist widened to %q: %+v", resource, d)
			case p == "bob":
				t.Fatalf("user without tenant access allowed: %+v", d)
			}
		}
	})
}

// BenchmarkCan decides on a warm cache for principals with 100 bindings:
// "100_roles" holds 100 roles of one shape at 10 nodes, half reached
// through 50 groups; "100_bindings_mixed" holds the managed roles and
// custom roles of every dialect family (exact actions, wildcards, endpoint
// rules with denies) at the tenant, at nodes of several depths and
// through one group, and asks what each family asks. The target is under
// a microsecond a decision.
func BenchmarkCan(b *testing.B) {
	b.Run("100_roles", func(b *testing.B) {
		m := authz.NewModel()
		m.PutPrincipal(authz.Principal{ID: "u", Kind: authz.KindUser})
		m.GrantTenant("u", "acme")
		for i := range 100 {
			role := fmt.Sprintf("r%d", i)
			rules := []authz.Rule{
				allow([]string{fmt.Sprintf("svc%d.items.read", i), fmt.Sprintf("svc%d.items.create", i)}),
				allow([]string{fmt.Sprintf("svc%d.admin.*", i)}, "/things/*"),
				deny([]string{fmt.Sprintf("svc%d.items.delete", i)}),
			}
			if err := m.PutRole(authz.Role{ID: role, Tenant: "acme", Name: role, Rules: rules}); err != nil {
				b.Fatal(err)
			}
			subject := "u"
			if i%2 == 1 {
				subject = fmt.Sprintf("g%d", i)
				m.SetMember(subject, "u", authz.Member)
			}
			if err := m.Bind(authz.Binding{ID: fmt.Sprintf("b%d", i), Role: role, Subject: subject, Scope: authz.Scope{Tenant: "acme", Node: fmt.Sprintf("n%d", i%10)}}); err != nil {
				b.Fatal(err)
			}
		}
		benchDecision(b, m, "u", authz.Request{Action: "svc42.items.create", Resource: "/things/1", Scope: authz.Scope{Tenant: "acme", Node: "n2.deep"}}, true)
	})

	b.Run("100_bindings_mixed", func(b *testing.B) {
		m := mixedModel(b)
		acme := authz.TenantScope("acme")
		for _, bc := range []struct {
			name    string
			req     authz.Request
			allowed bool
		}{
			{"allow_wildcard_at_tenant", authz.Request{Action: authz.ServiceAccountsCreate, Scope: authz.Scope{Tenant: "acme", Node: "team7.app"}}, true},
			{"allow_exact_at_node", authz.Request{Action: "kestra.FLOW.READ", Scope: authz.Scope{Tenant: "acme", Node: "team3.app.sub"}}, true},
			{"allow_through_group", authz.Request{Action: "fleet.hosts.read", Resource: "/api/v1/fleet/hosts", Scope: acme}, true},
			{"deny_endpoint_rule", authz.Request{Action: "delete", Resource: "/services/abc", Scope: authz.Scope{Tenant: "acme", Node: "ws1"}}, false},
			{"no_role_grants", authz.Request{Action: "iam.users.delete", Scope: acme}, false},
		} {
			b.Run(bc.name, func(b *testing.B) { benchDecision(b, m, "u", bc.req, bc.allowed) })
		}
	})
}

// mixedModel returns a model in which principal "u" (a user with access
// to tenant acme) holds 100 bindings: the four managed roles at the
// tenant, 60 Kestra-style roles of exact actions at nodes one to three
// deep, 20 Kong-style endpoint roles with a negative rule at workspaces,
// and, through group "ops", 16 Fleet-style capability roles.
func mixedModel(tb testing.TB) *authz.Model {
	tb.Helper()
	m := authz.NewModel()
	m.PutPrincipal(authz.Principal{ID: "u", Kind: authz.KindUser})
	m.GrantTenant("u", "acme")
	m.SetMember("ops", "u", authz.Member)
	n := 0
	bind := func(role, subject string, scope authz.Scope) {
		tb.Helper()
		n++
		if err := m.Bind(authz.Binding{ID: fmt.Sprintf("b%d", n), Role: role, Subject: subject, Scope: scope}); err != nil {
			tb.Fatal(err)
		}
	}
	put := func(r authz.Role) {
		tb.Helper()
		if err := m.PutRole(r); err != nil {
			tb.Fatal(err)
		}
	}
	for _, r := range authz.ManagedRoles("acme") {
		put(r)
		bind(r.ID, "u", authz.TenantScope("acme"))
	}
	nodes := []string{"team%d", "team%d.app", "team%d.app.sub"}
	for i := range 60 {
		id := fmt.Sprintf("kestra%d", i)
		put(authz.Role{ID: id, Tenant: "acme", Name: id, Rules: []authz.Rule{
			allow([]string{"kestra.FLOW.READ", "kestra.FLOW.CREATE", fmt.Sprintf("kestra.NAMESPACE%d.READ", i)}),
			allow([]string{fmt.Sprintf("kestra.EXECUTION%d.*", i)}),
		}})
		bind(id, "u", authz.Scope{Tenant: "acme", Node: fmt.Sprintf(nodes[i%3], i%10)})
	}
	for i := range 20 {
		id := fmt.Sprintf("kong%d", i)
		put(authz.Role{ID: id, Tenant: "acme", Name: id, Rules: []authz.Rule{
			allow([]string{"read", "create", "update", "delete"}, "/services/*", fmt.Sprintf("/routes%d/*", i)),
			deny([]string{"delete"}, "/services/*"),
		}})
		bind(id, "u", authz.Scope{Tenant: "acme", Node: fmt.Sprintf("ws%d", i%5)})
	}
	for i := range 16 {
		id := fmt.Sprintf("fleet%d", i)
		put(authz.Role{ID: id, Tenant: "acme", Name: id, Rules: []authz.Rule{
			allow([]string{"fleet.hosts.read", "fleet.queries.read", fmt.Sprintf("fleet.policies%d.*", i)}, "/api/v1/fleet/*"),
		}})
		bind(id, "ops", authz.TenantScope("acme"))
	}
	if n != 100 {
		tb.Fatalf("mixed model holds %d bindings, want 100", n)
	}
	return m
}

// benchDecision measures m.Can(id, req) after checking its answer once.
func benchDecision(b *testing.B, m *authz.Model, id string, req authz.Request, allowed bool) {
	b.Helper()
	if d := m.Can(id, req); d.Allowed != allowed {
		b.Fatalf("Can(%s, %+v) = %+v, want allowed=%v", id, req, d, allowed)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		m.Can(id, req)
	}
}

// A tenant's default roles hold for every user with access to it, and
// for no one else; changing the flag takes effect at once.
func TestDefaultRoles(t *testing.T) {
	m := authz.NewModel()
	acme := authz.TenantScope("acme")
	m.PutPrincipal(authz.Principal{ID: "member", Kind: authz.KindUser})
	m.PutPrincipal(authz.Principal{ID: "outsider", Kind: authz.KindUser})
	m.PutPrincipal(authz.Principal{ID: "sa", Kind: authz.KindServiceAccount, Tenant: "acme"})
	m.GrantTenant("member", "acme")
	role := authz.Role{ID: "acme/readers", Tenant: "acme", Name: "readers", Default: true, Rules: []authz.Rule{allow([]string{"kestra.flows.read"})}}
	if err := m.PutRole(role); err != nil {
		t.Fatal(err)
	}
	req := authz.Request{Action: "kestra.flows.read", Scope: authz.Scope{Tenant: "acme", Node: "company"}}
	for _, tt := range []struct {
		id   string
		want bool
	}{{"member", true}, {"outsider", false}, {"sa", false}} {
		if d := m.Can(tt.id, req); d.Allowed != tt.want {
			t.Errorf("%s: %+v, want allowed=%v", tt.id, d, tt.want)
		}
	}
	role.Default = false
	if err := m.PutRole(role); err != nil {
		t.Fatal(err)
	}
	if d := m.Can("member", req); d.Allowed {
		t.Fatalf("no longer default, still allowed: %s", d.Reason)
	}
	role.Default = true
	if err := m.PutRole(role); err != nil {
		t.Fatal(err)
	}
	m.RevokeTenant("member", "acme")
	if d := m.Can("member", authz.Request{Action: "kestra.flows.read", Scope: acme}); d.Allowed {
		t.Fatalf("after leaving the tenant: %s", d.Reason)
	}
}

// A principal's own roles (a service account's role list) grant like
// bindings at the set's scope, follow changes of the roles at once, and
// count for Held, which scope-down on acting as the principal reads.
func TestOwnRoles(t *testing.T) {
	m := authz.NewModel()
	team := authz.Scope{Tenant: "acme", Node: "company.team"}
	if err := m.PutRole(authz.Role{ID: "acme/flows", Tenant: "acme", Name: "flows", Rules: []authz.Rule{allow([]string{"kestra.FLOW.READ"})}}); err != nil {
		t.Fatal(err)
	}
	own := &authz.RoleSet{Roles: []string{"acme/flows"}, Scope: team}
	m.PutPrincipal(authz.Principal{ID: "sa", Kind: authz.KindServiceAccount, Tenant: "acme", Own: own})
	m.PutPrincipal(authz.Principal{ID: "twin", Kind: authz.KindServiceAccount, Tenant: "acme", Own: own})
	read := func(id string, scope authz.Scope) bool {
		return m.Can(id, authz.Request{Action: "kestra.FLOW.READ", Scope: scope}).Allowed
	}
	steps := []struct {
		name   string
		change func()
		sub    bool // at company.team.app
		tenant bool // at the whole tenant
		held   int
	}{
		{"own role at its scope and below, not above", func() {}, true, false, 1},
		{"role changed: the cached grant goes", func() {
			if err := m.PutRole(authz.Role{ID: "acme/flows", Tenant: "acme", Name: "flows", Rules: []authz.Rule{allow([]string{"kestra.FLOW.CREATE"})}}); err != nil {
				t.Fatal(err)
			}
		}, false, false, 1},
		{"role back", func() {
			if err := m.PutRole(authz.Role{ID: "acme/flows", Tenant: "acme", Name: "flows", Rules: []authz.Rule{allow([]string{"kestra.FLOW.READ"})}}); err != nil {
				t.Fatal(err)
			}
		}, true, false, 1},
		{"principal put without own roles", func() {
			m.PutPrincipal(authz.Principal{ID: "sa", Kind: authz.KindServiceAccount, Tenant: "acme"})
		}, false, false, 0},
		{"own roles at the tenant", func() {
			m.PutPrincipal(authz.Principal{ID: "sa", Kind: authz.KindServiceAccount, Tenant: "acme", Own: &authz.RoleSet{Roles: []string{"acme/flows"}, Scope: authz.TenantScope("acme")}})
		}, true, true, 1},
		{"role deleted", func() { m.DeleteRole("acme/flows") }, false, false, 0},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.change()
			if got := read("sa", authz.Scope{Tenant: "acme", Node: "company.team.app"}); got != s.sub {
				t.Errorf("below the scope: allowed %v, want %v", got, s.sub)
			}
			if got := read("sa", authz.TenantScope("acme")); got != s.tenant {
				t.Errorf("at the tenant: allowed %v, want %v", got, s.tenant)
			}
			if got := len(m.Held("sa")); got != s.held {
				t.Errorf("Held: %d grants, want %d", got, s.held)
			}
		})
	}
	// The twin sharing the first set was never touched by sa's changes.
	if m.Can("twin", authz.Request{Action: "kestra.FLOW.READ", Scope: team}).Allowed {
		t.Error("twin still reads flows after the role was deleted")
	}
	if m.Can("sa", authz.Request{Action: "kestra.FLOW.READ", Scope: authz.TenantScope("globex")}).Allowed {
		t.Error("own roles reach another tenant")
	}
}
