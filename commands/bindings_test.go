package commands_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

// TestCreateBindingsAllOrNothing: every binding of a bulk request is
// checked before any is recorded, and an error names the item at fault.
func TestCreateBindingsAllOrNothing(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "acme", Username: "root", Email: "root@acme.test"})
	testenv.Must(t, err, "bootstrap")
	admin := commands.Meta{Caller: w.user("ops", "acme", authz.RoleTenantAdmin)}
	alice := w.user("alice", "acme")
	flows, err := w.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: operator("acme"), RoleInput: commands.RoleInput{
		Name: "flows", Rules: []authz.Rule{{Effect: authz.Allow, Actions: []string{"vault.secrets.*"}}},
	}})
	testenv.Must(t, err, "role")
	viewer := commands.CreateBinding{Role: authz.RoleViewer, SubjectKind: events.SubjectUser, SubjectID: alice.ID}
	can := func() bool {
		return alice.Can(w.dir.Authorizer(), authz.RolesList, "", authz.TenantScope("acme")).Allowed
	}

	for _, c := range []struct {
		name  string
		items []commands.CreateBinding
		kind  error
		field string
	}{
		{"none", nil, commands.ErrInvalid, "bindings"},
		{"too many", make([]commands.CreateBinding, commands.MaxBindingsPerRequest+1), commands.ErrInvalid, "bindings"},
		{"an unknown role", []commands.CreateBinding{viewer, {Role: "nope", SubjectKind: events.SubjectUser, SubjectID: alice.ID}}, commands.ErrInvalid, "bindings[1].role"},
		{"an unknown subject", []commands.CreateBinding{viewer, {Role: authz.RoleViewer, SubjectKind: events.SubjectGroup, SubjectID: "01nosuchgroup"}}, commands.ErrInvalid, "bindings[1].subject_id"},
		{"a role the caller does not hold", []commands.CreateBinding{viewer, {Role: flows.Role.ID(), SubjectKind: events.SubjectUser, SubjectID: alice.ID}}, commands.ErrForbidden, "bindings[1].role"},
		{"a bad namespace", []commands.CreateBinding{viewer, {Role: authz.RoleViewer, SubjectKind: events.SubjectUser, SubjectID: alice.ID, Scope: events.Scope{Level: events.ScopeNamespace, Target: "Bad Name"}}}, commands.ErrInvalid, "bindings[1]."},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := w.cmds.CreateBindings.Handle(ctx, commands.CreateBindings{Meta: admin, Bindings: c.items})
			var ce *commands.Error
			if !errors.As(err, &ce) || !errors.Is(err, c.kind) || !strings.HasPrefix(ce.Field, c.field) {
				t.Fatalf("err = %v (field %q), want %v naming %q", err, fieldOf(ce), c.kind, c.field)
			}
		})
	}
	// Once the directory has caught up with a later write, it shows that
	// no refused request granted its first binding.
	later, err := w.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: operator("acme"), RoleInput: commands.RoleInput{Name: "later"}})
	testenv.Must(t, err, "later write")
	w.sync(later.Sequence)
	if can() {
		t.Fatal("a refused bulk request granted its first binding")
	}

	res, err := w.cmds.CreateBindings.Handle(ctx, commands.CreateBindings{Meta: admin, Bindings: []commands.CreateBinding{
		viewer, {Role: authz.RoleAuditor, SubjectKind: events.SubjectUser, SubjectID: alice.ID, Scope: events.Scope{Level: events.ScopeNamespace, Target: "team"}},
	}})
	testenv.Must(t, err, "bulk")
	w.sync(res.Sequence)
	if len(res.Bindings) != 2 || res.Bindings[0].Role() != authz.RoleViewer || res.Bindings[1].Scope().Target != "team" || !can() {
		t.Fatalf("bulk result %+v", res)
	}
	reader := commands.Meta{Caller: alice}
	if _, err := w.cmds.CreateBindings.Handle(ctx, commands.CreateBindings{Meta: reader, Bindings: []commands.CreateBinding{viewer}}); !errors.Is(err, commands.ErrForbidden) {
		t.Fatalf("bulk without iam.bindings.create: %v", err)
	}
}

func fieldOf(ce *commands.Error) string {
	if ce == nil {
		return ""
	}
	return ce.Field
}
