package authz_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/keyhold/keyhold/authz"
)

// A model's state restores into an empty model as it was, bindings in each
// subject's own order (which decides the reason of a decision), and
// decisions come out the same once the principals are put again.
func TestStateRestores(t *testing.T) {
	m := fixture(t)
	// A second binding of sa-admin, bound before b1 in id order but after it.
	if err := m.Bind(authz.Binding{ID: "a0", Role: "flows", Subject: "sa-admin", Scope: authz.TenantScope("acme")}); err != nil {
		t.Fatal(err)
	}
	s := m.State()
	var order []string
	for _, b := range s.Bindings {
		if b.Subject == "sa-admin" {
			order = append(order, b.ID)
		}
	}
	if !reflect.DeepEqual(order, []string{"b1", "a0"}) {
		t.Fatalf("sa-admin's bindings in the state: %v, want the order bound", order)
	}
	if err := m.Restore(s); !errors.Is(err, authz.ErrNotEmpty) {
		t.Fatalf("restore into a model in use: %v", err)
	}

	n := authz.NewModel()
	if err := n.Restore(s); err != nil {
		t.Fatal(err)
	}
	// The principals are not in the state: they are put again below.
	if got := n.State(); got.Principals != 0 || !reflect.DeepEqual(got.Roles, s.Roles) || !reflect.DeepEqual(got.Bindings, s.Bindings) || !reflect.DeepEqual(got.Members, s.Members) {
		t.Fatalf("restored state\n%+v\nwant\n%+v", got, s)
	}
	n.PutPrincipal(authz.Principal{ID: "alice", Kind: authz.KindUser})
	n.GrantTenant("alice", "acme")
	n.PutPrincipal(authz.Principal{ID: "sa-admin", Kind: authz.KindServiceAccount, Tenant: "acme"})
	for _, tt := range []struct {
		principal string
		req       authz.Request
	}{
		{"alice", authz.Request{Action: "create", Resource: "/services/abc", Scope: authz.TenantScope("acme")}},
		{"alice", authz.Request{Action: "delete", Resource: "/services/abc", Scope: authz.TenantScope("acme")}},
		{"sa-admin", authz.Request{Action: "iam.serviceAccounts.create", Scope: authz.TenantScope("acme")}},
		{"sa-admin", authz.Request{Action: "kestra.FLOW.READ", Scope: authz.TenantScope("acme")}},
	} {
		if got, want := n.Can(tt.principal, tt.req), m.Can(tt.principal, tt.req); got != want {
			t.Errorf("Can(%s, %+v): restored %+v, original %+v", tt.principal, tt.req, got, want)
		}
	}

	m.Reset()
	if got := m.State(); len(got.Roles)+len(got.Bindings)+len(got.Members) != 0 {
		t.Fatalf("after Reset: %+v", got)
	}
	if d := m.Can("sa-admin", authz.Request{Action: "iam.serviceAccounts.create", Scope: authz.TenantScope("acme")}); d.Allowed {
		t.Fatalf("a reset model still allows: %+v", d)
	}
	if err := m.Restore(s); err != nil {
		t.Fatalf("restore after Reset: %v", err)
	}
}
