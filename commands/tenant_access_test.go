package commands_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/internal/testenv"
)

// TestTenantAccessByTenantAdmins: a tenant's administrators manage access
// to their tenant only, find users by email, and Strict makes no-ops
// errors.
func TestTenantAccessByTenantAdmins(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	sys := commands.Meta{Caller: auth.System()}
	for _, tenant := range []string{"acme", "globex"} {
		_, err := w.cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: sys, Tenant: tenant, Username: "root-" + tenant, Email: "root@" + tenant + ".test"})
		testenv.Must(t, err, "bootstrap %s", tenant)
	}
	admin := commands.Meta{Caller: w.user("ops", "acme", authz.RoleTenantAdmin)}
	member := commands.Meta{Caller: w.user("mia", "acme")}
	eve, err := w.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "eve", Email: "eve@example.test"})
	testenv.Must(t, err, "create eve")
	w.sync(eve.Sequence)

	for _, c := range []struct {
		name string
		cmd  commands.SetTenantAccess
		want error
	}{
		{"a member may not grant", commands.SetTenantAccess{Meta: member, UserID: eve.User.ID(), Tenant: "acme", Grant: true}, commands.ErrForbidden},
		{"nor may the admin in another tenant", commands.SetTenantAccess{Meta: admin, UserID: eve.User.ID(), Tenant: "globex", Grant: true}, commands.ErrForbidden},
		{"an unknown email", commands.SetTenantAccess{Meta: admin, Email: "nobody@example.test", Tenant: "acme", Grant: true}, commands.ErrNotFound},
		{"a malformed email", commands.SetTenantAccess{Meta: admin, Email: "eve", Tenant: "acme", Grant: true}, commands.ErrInvalid},
		{"strict revoke without access", commands.SetTenantAccess{Meta: admin, UserID: eve.User.ID(), Tenant: "acme", Strict: true}, commands.ErrNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := w.cmds.SetTenantAccess.Handle(ctx, c.cmd); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	res, err := w.cmds.SetTenantAccess.Handle(ctx, commands.SetTenantAccess{Meta: admin, Email: "EVE@example.test", Tenant: "acme", Grant: true, Strict: true})
	testenv.Must(t, err, "grant by email")
	if res.User.ID() != eve.User.ID() || len(res.User.Tenants()) != 1 {
		t.Fatalf("granted to %s, tenants %v", res.User.ID(), res.User.Tenants())
	}
	if _, err := w.cmds.SetTenantAccess.Handle(ctx, commands.SetTenantAccess{Meta: admin, UserID: eve.User.ID(), Tenant: "acme", Grant: true, Strict: true}); !errors.Is(err, commands.ErrAlreadyExists) {
		t.Fatalf("strict grant twice: %v", err)
	}
	if _, err := w.cmds.SetTenantAccess.Handle(ctx, commands.SetTenantAccess{Meta: admin, UserID: eve.User.ID(), Tenant: "acme", Grant: true}); err != nil {
		t.Fatalf("lenient grant twice: %v", err)
	}
	res, err = w.cmds.SetTenantAccess.Handle(ctx, commands.SetTenantAccess{Meta: admin, UserID: eve.User.ID(), Tenant: "acme", Strict: true})
	testenv.Must(t, err, "revoke")
	if len(res.User.Tenants()) != 0 {
		t.Fatalf("tenants after revoke %v", res.User.Tenants())
	}
}
