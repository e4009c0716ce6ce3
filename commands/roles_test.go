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

func TestRoles(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "acme", Username: "root", Email: "root@acme.test"})
	testenv.Must(t, err, "bootstrap")
	admin := commands.Meta{Caller: w.user("ops", "acme", authz.RoleTenantAdmin)}
	reader := commands.Meta{Caller: w.user("reader", "acme", authz.RoleViewer)}
	allow := func(actions ...string) []authz.Rule { return []authz.Rule{{Effect: authz.Allow, Actions: actions}} }

	created, err := w.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: admin, RoleInput: commands.RoleInput{Name: "sa-readers", Rules: allow(authz.ServiceAccountsList, authz.ServiceAccountsGet)}})
	testenv.Must(t, err, "create role")
	id := created.Role.ID()
	refusals := []struct {
		name string
		run  func() error
		want error
	}{
		{"name taken", func() error {
			_, err := w.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: admin, RoleInput: commands.RoleInput{Name: "sa-readers", Rules: allow(authz.ServiceAccountsList)}})
			return err
		}, commands.ErrAlreadyExists},
		{"managed name taken", func() error {
			_, err := w.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: admin, RoleInput: commands.RoleInput{Name: authz.RoleAuditor, Rules: allow(authz.AuditEventsList)}})
			return err
		}, commands.ErrAlreadyExists},
		{"rules not held", func() error {
			_, err := w.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: admin, RoleInput: commands.RoleInput{Name: "users", Rules: allow(authz.UsersCreate)}})
			return err
		}, commands.ErrForbidden},
		{"bad rule", func() error {
			_, err := w.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: admin, RoleInput: commands.RoleInput{Name: "bad", Rules: allow("")}})
			return err
		}, commands.ErrInvalid},
		{"no right to create roles", func() error {
			_, err := w.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: reader, RoleInput: commands.RoleInput{Name: "mine", Rules: allow(authz.RolesList)}})
			return err
		}, commands.ErrForbidden},
		{"managed roles cannot change", func() error {
			_, err := w.cmds.UpdateRole.Handle(ctx, commands.UpdateRole{Meta: admin, ID: authz.RoleViewer, RoleInput: commands.RoleInput{Name: authz.RoleViewer}})
			return err
		}, commands.ErrForbidden},
		{"managed roles cannot go", func() error {
			_, err := w.cmds.DeleteRole.Handle(ctx, commands.DeleteRole{Meta: admin, ID: authz.RoleTenantAdmin})
			return err
		}, commands.ErrForbidden},
		{"unknown role", func() error {
			_, err := w.cmds.DeleteRole.Handle(ctx, commands.DeleteRole{Meta: admin, ID: "01nosuchrole"})
			return err
		}, commands.ErrNotFound},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}

	t.Run("a binding grants the role's rules at once, and its removal takes them", func(t *testing.T) {
		can := func() bool {
			return reader.Caller.Can(w.dir.Authorizer(), authz.ServiceAccountsList, "", authz.TenantScope("acme")).Allowed
		}
		if can() {
			t.Fatal("reader lists service accounts before the binding")
		}
		b, err := w.cmds.CreateBinding.Handle(ctx, commands.CreateBinding{Meta: admin, Role: id, SubjectKind: events.SubjectUser, SubjectID: reader.Caller.ID})
		testenv.Must(t, err, "bind")
		w.sync(b.Sequence)
		if !can() {
			t.Fatal("binding did not grant the role's rules")
		}
		seq, err := w.cmds.DeleteBinding.Handle(ctx, commands.DeleteBinding{Meta: admin, ID: b.Binding.ID()})
		testenv.Must(t, err, "unbind")
		w.sync(seq)
		if can() {
			t.Fatal("rules outlived the binding")
		}
	})
	t.Run("rename releases the old name", func(t *testing.T) {
		_, err := w.cmds.UpdateRole.Handle(ctx, commands.UpdateRole{Meta: admin, ID: id, RoleInput: commands.RoleInput{Name: "sa-viewers", Rules: allow(authz.ServiceAccountsList)}})
		testenv.Must(t, err, "rename")
		_, err = w.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: admin, RoleInput: commands.RoleInput{Name: "sa-readers", Rules: allow(authz.ServiceAccountsGet)}})
		testenv.Must(t, err, "reuse the old name")
		if _, err := w.cmds.DeleteRole.Handle(ctx, commands.DeleteRole{Meta: admin, ID: id}); err != nil {
			t.Fatalf("delete: %v", err)
		}
		_, err = w.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: admin, RoleInput: commands.RoleInput{Name: "sa-viewers", Rules: allow(authz.ServiceAccountsGet)}})
		testenv.Must(t, err, "reuse a deleted role's name")
	})
	t.Run("seeding is idempotent", func(t *testing.T) {
		seq, err := w.cmds.SeedManagedRoles.Handle(ctx, commands.SeedManagedRoles{Meta: commands.Meta{Caller: auth.System()}, Tenant: "acme"})
		testenv.Must(t, err, "seed")
		if seq != 0 {
			t.Fatalf("seeding a bootstrapped tenant appended up to %d", seq)
		}
		if _, err := w.cmds.SeedManagedRoles.Handle(ctx, commands.SeedManagedRoles{Meta: admin, Tenant: "acme"}); !errors.Is(err, commands.ErrForbidden) {
			t.Fatalf("tenant admin seeds: %v", err)
		}
	})
}

func TestGroups(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "acme", Username: "root", Email: "root@acme.test"})
	testenv.Must(t, err, "bootstrap")
	admin := commands.Meta{Caller: w.user("ops", "acme", authz.RoleTenantAdmin)}
	alice := w.user("alice", "acme")
	bob := w.user("bob", "acme")
	flows, err := w.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: operator("acme"), RoleInput: commands.RoleInput{
		Name: "flows", Rules: []authz.Rule{{Effect: authz.Allow, Actions: []string{"vault.secrets.*"}}},
	}})
	testenv.Must(t, err, "role")
	g, err := w.cmds.CreateGroup.Handle(ctx, commands.CreateGroup{Meta: admin, GroupInput: commands.GroupInput{Name: "devs"}})
	testenv.Must(t, err, "create group")
	gid := g.Group.ID()
	if _, err := w.cmds.CreateGroup.Handle(ctx, commands.CreateGroup{Meta: admin, GroupInput: commands.GroupInput{Name: "devs"}}); !errors.Is(err, commands.ErrAlreadyExists) {
		t.Fatalf("second group named devs: %v", err)
	}
	set := func(meta commands.Meta, member auth.Principal, ms string) error {
		r, err := w.cmds.SetGroupMember.Handle(ctx, commands.SetGroupMember{Meta: meta, GroupID: gid, MemberKind: events.SubjectUser, MemberID: member.ID, Membership: ms})
		if err == nil {
			w.sync(r.Sequence)
		}
		return err
	}
	flowsCan := func(p auth.Principal) bool {
		return p.Can(w.dir.Authorizer(), "vault.secrets.read", "", authz.Scope{Tenant: "acme", Node: "company.team"}).Allowed
	}

	testenv.Must(t, set(admin, alice, events.MembershipOwner), "alice owns devs")
	// alice owns the group: she may add members without the right to.
	testenv.Must(t, set(commands.Meta{Caller: alice}, bob, ""), "owner adds bob")
	if err := set(commands.Meta{Caller: bob}, alice, events.MembershipMember); !errors.Is(err, commands.ErrForbidden) {
		t.Fatalf("a plain member demotes the owner: %v", err)
	}
	b, err := w.cmds.CreateBinding.Handle(ctx, commands.CreateBinding{Meta: operator("acme"), Role: flows.Role.ID(), SubjectKind: events.SubjectGroup, SubjectID: gid,
		Scope: events.Scope{Level: events.ScopeNamespace, Target: "company"}})
	testenv.Must(t, err, "bind flows to the group")
	w.sync(b.Sequence)
	if !flowsCan(bob) {
		t.Fatal("a member lacks the group's role at a node below the binding")
	}
	// Now the group grants flows, which the administrator does not hold.
	carol := w.user("carol", "acme")
	if err := set(admin, carol, ""); !errors.Is(err, commands.ErrForbidden) {
		t.Fatalf("admin adds a member to a group granting what it lacks: %v", err)
	}
	seq, err := w.cmds.RemoveGroupMember.Handle(ctx, commands.RemoveGroupMember{Meta: operator("acme"), GroupID: gid, MemberID: bob.ID})
	testenv.Must(t, err, "remove bob")
	w.sync(seq)
	if flowsCan(bob) {
		t.Fatal("rules outlived the membership")
	}
	if _, err := w.cmds.RemoveGroupMember.Handle(ctx, commands.RemoveGroupMember{Meta: operator("acme"), GroupID: gid, MemberID: bob.ID}); !errors.Is(err, commands.ErrNotFound) {
		t.Fatalf("remove a non-member: %v", err)
	}
	seq, err = w.cmds.DeleteGroup.Handle(ctx, commands.DeleteGroup{Meta: admin, ID: gid})
	testenv.Must(t, err, "delete group")
	w.sync(seq)
	if flowsCan(alice) {
		t.Fatal("rules outlived the group")
	}
	if _, err := w.cmds.CreateGroup.Handle(ctx, commands.CreateGroup{Meta: admin, GroupInput: commands.GroupInput{Name: "devs"}}); err != nil {
		t.Fatalf("the deleted group's name is not free: %v", err)
	}
}

// Creating a credential acts for the account: roles bound to it (not only
// its own list) must be held too.
func TestActingForIncludesBoundRoles(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "acme", Username: "root", Email: "root@acme.test"})
	testenv.Must(t, err, "bootstrap")
	admin := commands.Meta{Caller: w.user("ops", "acme", authz.RoleTenantAdmin)}
	flows, err := w.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: operator("acme"), RoleInput: commands.RoleInput{
		Name: "flows", Rules: []authz.Rule{{Effect: authz.Allow, Actions: []string{"vault.secrets.*"}}},
	}})
	testenv.Must(t, err, "role")
	sa, err := w.cmds.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: admin, DisplayName: "plain", Scope: events.Scope{Level: "tenant"}})
	testenv.Must(t, err, "account")
	if _, err := w.cmds.CreateCredential.Handle(ctx, commands.CreateCredential{Meta: admin, ServiceAccountID: sa.ServiceAccount.ID()}); err != nil {
		t.Fatalf("credential for an account holding nothing: %v", err)
	}
	b, err := w.cmds.CreateBinding.Handle(ctx, commands.CreateBinding{Meta: operator("acme"), Role: flows.Role.ID(), SubjectKind: events.SubjectServiceAccount, SubjectID: sa.ServiceAccount.ID()})
	testenv.Must(t, err, "bind")
	w.sync(b.Sequence)
	if _, err := w.cmds.CreateCredential.Handle(ctx, commands.CreateCredential{Meta: admin, ServiceAccountID: sa.ServiceAccount.ID()}); !errors.Is(err, commands.ErrForbidden) {
		t.Fatalf("credential for an account bound to a role the caller lacks: %v", err)
	}
	// The same through a group the account is a member of.
	member, err := w.cmds.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: admin, DisplayName: "member", Scope: events.Scope{Level: "tenant"}})
	testenv.Must(t, err, "account")
	g, err := w.cmds.CreateGroup.Handle(ctx, commands.CreateGroup{Meta: operator("acme"), GroupInput: commands.GroupInput{Name: "flowers"}})
	testenv.Must(t, err, "group")
	_, err = w.cmds.CreateBinding.Handle(ctx, commands.CreateBinding{Meta: operator("acme"), Role: flows.Role.ID(), SubjectKind: events.SubjectGroup, SubjectID: g.Group.ID()})
	testenv.Must(t, err, "bind the group")
	m, err := w.cmds.SetGroupMember.Handle(ctx, commands.SetGroupMember{Meta: operator("acme"), GroupID: g.Group.ID(), MemberKind: events.SubjectServiceAccount, MemberID: member.ServiceAccount.ID()})
	testenv.Must(t, err, "add to the group")
	w.sync(m.Sequence)
	if _, err := w.cmds.CreateCredential.Handle(ctx, commands.CreateCredential{Meta: admin, ServiceAccountID: member.ServiceAccount.ID()}); !errors.Is(err, commands.ErrForbidden) {
		t.Fatalf("credential for an account whose group holds a role the caller lacks: %v", err)
	}
}

// Several commands of one keyed request (a dialect creating a group with
// members) each land: the log must not take the later ones for repeats.
func TestCommandsOfOneKeyedRequestAllLand(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "acme", Username: "root", Email: "root@acme.test"})
	testenv.Must(t, err, "bootstrap")
	admin := w.user("ops", "acme", authz.RoleTenantAdmin)
	alice, bob := w.user("alice", "acme"), w.user("bob", "acme")
	keyed := commands.Meta{Caller: admin, IdempotencyKey: "one-request"}
	g, err := w.cmds.CreateGroup.Handle(ctx, commands.CreateGroup{Meta: keyed, GroupInput: commands.GroupInput{Name: "devs"}})
	testenv.Must(t, err, "create group")
	for _, m := range []auth.Principal{alice, bob} {
		if _, err := w.cmds.SetGroupMember.Handle(ctx, commands.SetGroupMember{Meta: keyed, GroupID: g.Group.ID(), MemberKind: events.SubjectUser, MemberID: m.ID}); err != nil {
			t.Fatalf("add %s under the same key: %v", m.ID, err)
		}
	}
	st, _, err := w.st.Load(ctx, "acme", events.AggregateGroup, g.Group.ID())
	testenv.Must(t, err, "load")
	if len(st) != 3 {
		t.Fatalf("the group has %d events, want created and two members", len(st))
	}
}
