package commands_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

// TestRestoringAccessIsScopedDown: a user whose access was revoked keeps
// its bindings and memberships in the tenant, so whoever lets it back in
// (by a grant or an invitation) must hold what they grant; a user
// without any is let in by the same caller.
func TestRestoringAccessIsScopedDown(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "acme", Username: "root", Email: "root@acme.test"})
	testenv.Must(t, err, "bootstrap")
	onboarding, err := w.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: operator("acme"), RoleInput: commands.RoleInput{
		Name: "onboarding", Rules: []authz.Rule{{Effect: authz.Allow, Actions: []string{"iam.tenantAccess.*", "iam.invitations.*"}}},
	}})
	testenv.Must(t, err, "role")
	olga := commands.Meta{Caller: w.user("olga", "acme", onboarding.Role.ID())}
	fred := w.user("fred", "acme", authz.RoleTenantAdmin)
	admins, err := w.cmds.CreateGroup.Handle(ctx, commands.CreateGroup{Meta: operator("acme"), GroupInput: commands.GroupInput{Name: "admins"}})
	testenv.Must(t, err, "group")
	_, err = w.cmds.CreateBinding.Handle(ctx, commands.CreateBinding{Meta: operator("acme"), Role: authz.RoleTenantAdmin, SubjectKind: events.SubjectGroup, SubjectID: admins.Group.ID()})
	testenv.Must(t, err, "bind group")
	gina := w.user("gina", "acme")
	_, err = w.cmds.SetGroupMember.Handle(ctx, commands.SetGroupMember{Meta: operator("acme"), GroupID: admins.Group.ID(), MemberKind: events.SubjectUser, MemberID: gina.ID})
	testenv.Must(t, err, "member")
	nina := w.user("nina", "acme")
	var seq uint64
	for _, p := range []auth.Principal{fred, gina, nina} {
		res, err := w.cmds.SetTenantAccess.Handle(ctx, commands.SetTenantAccess{Meta: operator("acme"), UserID: p.ID, Tenant: "acme"})
		testenv.Must(t, err, "revoke %s", p.ID)
		seq = res.Sequence
	}
	w.sync(seq)

	for _, c := range []struct {
		name  string
		user  auth.Principal
		email string
		want  error
	}{
		{"a former administrator", fred, "fred@example.test", commands.ErrForbidden},
		{"a member of an administrators' group", gina, "gina@example.test", commands.ErrForbidden},
		{"a user holding nothing", nina, "nina@example.test", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := w.cmds.CreateInvitation.Handle(ctx, commands.CreateInvitation{Meta: olga, Email: c.email})
			if !errors.Is(err, c.want) {
				t.Fatalf("invite: err = %v, want %v", err, c.want)
			}
			res, err := w.cmds.SetTenantAccess.Handle(ctx, commands.SetTenantAccess{Meta: olga, UserID: c.user.ID, Tenant: "acme", Grant: true})
			if !errors.Is(err, c.want) {
				t.Fatalf("grant: err = %v, want %v", err, c.want)
			}
			// A later write, so that the directory shows what the grant did.
			later, err := w.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: operator("acme"), RoleInput: commands.RoleInput{Name: "after-" + c.user.ID}})
			testenv.Must(t, err, "later write")
			w.sync(max(res.Sequence, later.Sequence))
			if _, ok := w.dir.UserInTenant(c.user.ID, "acme"); ok != (c.want == nil) {
				t.Fatalf("in tenant = %v after the grant", ok)
			}
		})
	}
	// The tenant's administrator holds what fred kept and may let him back.
	admin := commands.Meta{Caller: w.user("ops", "acme", authz.RoleTenantAdmin)}
	if _, err := w.cmds.SetTenantAccess.Handle(ctx, commands.SetTenantAccess{Meta: admin, UserID: fred.ID, Tenant: "acme", Grant: true}); err != nil {
		t.Fatalf("grant by the administrator: %v", err)
	}
}
