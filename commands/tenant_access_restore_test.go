package commands_test

import (
	"context"
	"testing"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

// TestRevokingAccessEndsBindingsAndMemberships: revoking a user's access
// to a tenant ends its bindings and group memberships there, so whoever
// lets it back in (by a grant or an invitation) gives it nothing it held,
// and a caller who may only manage access can do so for anyone.
func TestRevokingAccessEndsBindingsAndMemberships(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "acme", Username: "root", Email: "root@acme.test"})
	testenv.Must(t, err, "bootstrap")
	onboarding, err := w.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: operator("acme"), RoleInput: commands.RoleInput{
		Name: "onboarding", Rules: []authz.Rule{{Effect: authz.Allow, Actions: []string{"iam.tenantAccess.*", "iam.invitations.*"}}},
	}})
	testenv.Must(t, err, "role")
	olga := commands.Meta{Caller: w.user("olga", "acme", onboarding.Role.ID())}
	fred := w.user("fred", "acme", authz.RoleTenantAdmin, authz.RoleViewer+"@team")
	admins, err := w.cmds.CreateGroup.Handle(ctx, commands.CreateGroup{Meta: operator("acme"), GroupInput: commands.GroupInput{Name: "admins"}})
	testenv.Must(t, err, "group")
	_, err = w.cmds.CreateBinding.Handle(ctx, commands.CreateBinding{Meta: operator("acme"), Role: authz.RoleTenantAdmin, SubjectKind: events.SubjectGroup, SubjectID: admins.Group.ID()})
	testenv.Must(t, err, "bind group")
	gina := w.user("gina", "acme")
	joined, err := w.cmds.SetGroupMember.Handle(ctx, commands.SetGroupMember{Meta: operator("acme"), GroupID: admins.Group.ID(), MemberKind: events.SubjectUser, MemberID: gina.ID})
	testenv.Must(t, err, "member")
	// The revocation ends the memberships the directory knows of, as a
	// client that got the answer above (after read-your-writes) would.
	w.sync(joined.Sequence)
	var seq uint64
	for _, p := range []auth.Principal{fred, gina} {
		res, err := w.cmds.SetTenantAccess.Handle(ctx, commands.SetTenantAccess{Meta: operator("acme"), UserID: p.ID, Tenant: "acme"})
		testenv.Must(t, err, "revoke %s", p.ID)
		seq = res.Sequence
	}
	w.sync(seq)
	model := w.dir.Authorizer()
	if b := model.BindingsOf(fred.ID); len(b) != 0 {
		t.Fatalf("fred's bindings after the revocation: %+v", b)
	}
	if g := model.GroupsOf(gina.ID); len(g) != 0 {
		t.Fatalf("gina's groups after the revocation: %v", g)
	}

	for _, c := range []struct {
		name  string
		user  auth.Principal
		email string
	}{
		{"a former administrator", fred, "fred@example.test"},
		{"a former member of an administrators' group", gina, "gina@example.test"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := w.cmds.CreateInvitation.Handle(ctx, commands.CreateInvitation{Meta: olga, Email: c.email}); err != nil {
				t.Fatalf("invite: %v", err)
			}
			res, err := w.cmds.SetTenantAccess.Handle(ctx, commands.SetTenantAccess{Meta: olga, UserID: c.user.ID, Tenant: "acme", Grant: true})
			testenv.Must(t, err, "grant")
			w.sync(res.Sequence)
			back, ok := w.dir.UserInTenant(c.user.ID, "acme")
			if !ok {
				t.Fatal("not in the tenant after the grant")
			}
			if back.Can(model, authz.ServiceAccountsCreate, "", authz.TenantScope("acme")).Allowed {
				t.Fatal("let back in with administrator rights")
			}
		})
	}
}
