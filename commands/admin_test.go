package commands_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

func TestTenantLifecycle(t *testing.T) {
	_, cmds, admin := setup(t)
	ctx := context.Background()
	sys := commands.Meta{Caller: auth.System()}
	bob, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Email: "bob@acme.test"})
	testenv.Must(t, err, "create bob")
	if bob.User.Personal().Username != "bob@acme.test" {
		t.Fatalf("a user created without a username signs in with its email: %q", bob.User.Personal().Username)
	}
	res, err := cmds.CreateTenant.Handle(ctx, commands.CreateTenant{Meta: sys, TenantID: "globex"})
	testenv.Must(t, err, "create globex")
	if res.Tenant.Name() != "globex" {
		t.Fatalf("name %q, want the id", res.Tenant.Name())
	}
	_, err = cmds.SetTenantAccess.Handle(ctx, commands.SetTenantAccess{Meta: sys, UserID: bob.User.ID(), Tenant: "globex", Grant: true})
	testenv.Must(t, err, "grant globex")
	_, err = cmds.UpdateTenant.Handle(ctx, commands.UpdateTenant{Meta: sys, TenantID: "globex", Name: "Globex Corp"})
	testenv.Must(t, err, "rename globex")
	_, err = cmds.DeleteTenant.Handle(ctx, commands.DeleteTenant{Meta: sys, TenantID: "globex"})
	testenv.Must(t, err, "delete globex")

	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"reserved id on create", func() error {
			_, err := cmds.CreateTenant.Handle(ctx, commands.CreateTenant{Meta: sys, TenantID: "users"})
			return err
		}, commands.ErrInvalid},
		{"reserved id on bootstrap", func() error {
			_, err := cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: sys, Tenant: "me", Username: "x", Email: "x@me.test"})
			return err
		}, commands.ErrInvalid},
		{"existing tenant", func() error {
			_, err := cmds.CreateTenant.Handle(ctx, commands.CreateTenant{Meta: sys, TenantID: "acme"})
			return err
		}, commands.ErrAlreadyExists},
		{"deleted id again", func() error {
			_, err := cmds.CreateTenant.Handle(ctx, commands.CreateTenant{Meta: sys, TenantID: "globex"})
			return err
		}, commands.ErrAlreadyExists},
		{"bootstrap a deleted tenant", func() error {
			_, err := cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: sys, Tenant: "globex", Username: "y", Email: "y@globex.test"})
			return err
		}, commands.ErrAlreadyExists},
		{"rename a deleted tenant", func() error {
			_, err := cmds.UpdateTenant.Handle(ctx, commands.UpdateTenant{Meta: sys, TenantID: "globex", Name: "back"})
			return err
		}, commands.ErrNotFound},
		{"delete twice", func() error {
			_, err := cmds.DeleteTenant.Handle(ctx, commands.DeleteTenant{Meta: sys, TenantID: "globex"})
			return err
		}, commands.ErrNotFound},
		{"grant a deleted tenant the user still lists", func() error {
			_, err := cmds.SetTenantAccess.Handle(ctx, commands.SetTenantAccess{Meta: sys, UserID: bob.User.ID(), Tenant: "globex", Grant: true})
			return err
		}, commands.ErrNotFound},
		{"tenant admin creates a tenant", func() error {
			_, err := cmds.CreateTenant.Handle(ctx, commands.CreateTenant{Meta: commands.Meta{Caller: admin}, TenantID: "initech"})
			return err
		}, commands.ErrForbidden},
		{"tenant admin deletes its tenant", func() error {
			_, err := cmds.DeleteTenant.Handle(ctx, commands.DeleteTenant{Meta: commands.Meta{Caller: admin}, TenantID: "acme"})
			return err
		}, commands.ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSuperadminAndRestricted(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "acme", Username: "root", Email: "root@acme.test"})
	testenv.Must(t, err, "bootstrap")
	cmds, admin := w.cmds, w.user("ops", "acme", authz.RoleTenantAdmin)
	sys := commands.Meta{Caller: auth.System()}
	bob, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Email: "bob@acme.test", Password: "bob's first password", Restricted: true})
	testenv.Must(t, err, "create bob")
	id := bob.User.ID()
	if !bob.User.Restricted() {
		t.Fatal("created restricted, reads unrestricted")
	}
	self := commands.Meta{Caller: auth.Principal{ID: id, Kind: auth.KindUser}}
	refused := []struct {
		name string
		run  func() error
	}{
		{"own names", func() error {
			_, err := cmds.UpdateUser.Handle(ctx, commands.UpdateUser{Meta: self, UserID: id, FirstName: ptr("Bob")})
			return err
		}},
		{"own password", func() error {
			_, err := cmds.SetPassword.Handle(ctx, commands.SetPassword{Meta: self, UserID: id, Password: "bob's second password", OldPassword: "bob's first password"})
			return err
		}},
		{"own API token", func() error {
			_, err := cmds.IssueAPIToken.Handle(ctx, commands.IssueAPIToken{Meta: self, UserID: id})
			return err
		}},
	}
	for _, tt := range refused {
		t.Run("restricted "+tt.name, func(t *testing.T) {
			if err := tt.run(); !errors.Is(err, commands.ErrForbidden) {
				t.Fatalf("err = %v, want ErrForbidden", err)
			}
		})
	}
	res, err := cmds.SetRestricted.Handle(ctx, commands.SetRestricted{Meta: sys, UserID: id, Restricted: false})
	testenv.Must(t, err, "unrestrict")
	if res.User.Restricted() {
		t.Fatal("still restricted")
	}
	for _, tt := range refused {
		testenv.Must(t, tt.run(), "unrestricted %s", tt.name)
	}

	res, err = cmds.SetSuperadmin.Handle(ctx, commands.SetSuperadmin{Meta: sys, UserID: id, Superadmin: true})
	testenv.Must(t, err, "make bob superadmin")
	if !res.User.Superadmin() {
		t.Fatal("not a superadmin")
	}
	if res.Sequence == 0 {
		t.Fatal("no event recorded")
	}
	again, err := cmds.SetSuperadmin.Handle(ctx, commands.SetSuperadmin{Meta: sys, UserID: id, Superadmin: true})
	testenv.Must(t, err, "again")
	if again.Sequence > res.Sequence {
		t.Fatal("setting what is set appended an event")
	}
	_, err = cmds.SetSuperadmin.Handle(ctx, commands.SetSuperadmin{Meta: commands.Meta{Caller: admin}, UserID: id, Superadmin: false})
	if !errors.Is(err, commands.ErrForbidden) {
		t.Fatalf("a tenant admin unsets a superadmin: %v", err)
	}
	// A superadmin cannot unset itself: the instance could be left without one.
	w.sync(res.Sequence)
	bobSuper := auth.Principal{ID: id, Kind: auth.KindUser, Bindings: []auth.Binding{{Role: auth.RoleSuperadmin, Scope: events.Scope{Level: events.ScopeInstance}}}}
	_, err = cmds.SetSuperadmin.Handle(ctx, commands.SetSuperadmin{Meta: commands.Meta{Caller: bobSuper}, UserID: id, Superadmin: false})
	if !errors.Is(err, commands.ErrInvalid) {
		t.Fatalf("unset oneself: %v", err)
	}
	res, err = cmds.SetSuperadmin.Handle(ctx, commands.SetSuperadmin{Meta: sys, UserID: id, Superadmin: false})
	testenv.Must(t, err, "unset bob")
	if res.User.Superadmin() {
		t.Fatal("still a superadmin")
	}
}

// The instance's settings for new tenants are what tenants created (or
// bootstrapped) afterwards start with; tenants made before keep theirs.
func TestInstanceSettingsForNewTenants(t *testing.T) {
	_, cmds, _ := setup(t)
	ctx := context.Background()
	sys := commands.Meta{Caller: auth.System()}
	before, err := cmds.CreateTenant.Handle(ctx, commands.CreateTenant{Meta: sys, TenantID: "before"})
	testenv.Must(t, err, "tenant before")
	week, month := 7*24*time.Hour, 30*24*time.Hour
	levels := []string{events.ScopeNamespace}
	for _, bad := range []commands.ChangeInstanceSettings{
		{Meta: sys, CredentialDefaultLifetime: &month, CredentialMaxLifetime: &week},
		{Meta: sys, ScopeLevels: &[]string{}},
		{Meta: sys, ScopeLevels: &[]string{"planet"}},
		{Meta: sys, CredentialMaxLifetime: new(time.Duration)},
	} {
		if _, err := cmds.ChangeInstance.Handle(ctx, bad); !errors.Is(err, commands.ErrInvalid) {
			t.Errorf("%+v: err %v, want ErrInvalid", bad, err)
		}
	}
	res, err := cmds.ChangeInstance.Handle(ctx, commands.ChangeInstanceSettings{Meta: sys, CredentialDefaultLifetime: &week, CredentialMaxLifetime: &month, ScopeLevels: &levels})
	testenv.Must(t, err, "change")
	if v := res.Instance.View(); v.CredentialDefaultLifetime != week || v.CredentialMaxLifetime != month || !slices.Equal(v.ScopeLevels, levels) {
		t.Fatalf("settings after the change: %+v", v)
	}
	after, err := cmds.CreateTenant.Handle(ctx, commands.CreateTenant{Meta: sys, TenantID: "after"})
	testenv.Must(t, err, "tenant after")
	if tn := after.Tenant; tn.DefaultLifetime() != week || tn.MaxLifetime() != month || !slices.Equal(tn.ScopeLevels(), levels) {
		t.Fatalf("new tenant: %s %s %v", tn.DefaultLifetime(), tn.MaxLifetime(), tn.ScopeLevels())
	}
	_, err = cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: sys, Tenant: "booted", Username: "root2", Email: "root2@booted.test"})
	testenv.Must(t, err, "bootstrap")
	boot, err := cmds.UpdateTenant.Handle(ctx, commands.UpdateTenant{Meta: sys, TenantID: "booted", Name: "Booted"})
	testenv.Must(t, err, "read the bootstrapped tenant")
	if tn := boot.Tenant; tn.DefaultLifetime() != week || !slices.Equal(tn.ScopeLevels(), levels) {
		t.Fatalf("bootstrapped tenant: %s %v", tn.DefaultLifetime(), tn.ScopeLevels())
	}
	if tn := before.Tenant; tn.DefaultLifetime() != commands.DefaultCredentialLifetime || len(tn.ScopeLevels()) != 2 {
		t.Fatalf("older tenant changed: %s %v", tn.DefaultLifetime(), tn.ScopeLevels())
	}
}
