package query_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

// A deleted tenant is closed at once: its service accounts stop
// authenticating and its users lose their access to it; other tenants'
// principals are untouched.
func TestDirectoryTenantDeleted(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sys := commands.Meta{Caller: auth.System()}
	sa := f.serviceAccount(events.Scope{Level: events.ScopeTenant})
	cred := f.credential(sa.ID(), nil)
	_, err := f.cmds.CreateTenant.Handle(ctx, commands.CreateTenant{Meta: sys, TenantID: "globex"})
	testenv.Must(t, err, "create globex")
	res, err := f.cmds.SetTenantAccess.Handle(ctx, commands.SetTenantAccess{Meta: sys, UserID: f.userID, Tenant: "globex", Grant: true})
	testenv.Must(t, err, "grant globex")
	f.sync(res.Sequence)
	if _, ok := f.dir.UserInTenant(f.userID, "globex"); !ok {
		t.Fatal("no access to globex before its deletion")
	}

	del, err := f.cmds.DeleteTenant.Handle(ctx, commands.DeleteTenant{Meta: sys, TenantID: "acme"})
	testenv.Must(t, err, "delete acme")
	f.sync(del.Sequence)
	if _, err := f.dir.AuthenticateClient(sa.ClientID(), cred.Secret, time.Now()); err == nil {
		t.Fatal("a deleted tenant's service account still authenticates")
	}
	if _, ok := f.dir.UserInTenant(f.userID, "acme"); ok {
		t.Fatal("access to a deleted tenant")
	}
	p, err := f.dir.APITokenPrincipal(f.token, time.Now())
	testenv.Must(t, err, "the user's token still works")
	if p.Tenant != "globex" {
		t.Fatalf("the token acts in %q, want the next tenant, globex", p.Tenant)
	}
	for _, id := range f.dir.Tenants() {
		if id == "acme" {
			t.Fatal("a deleted tenant is listed")
		}
	}
}

// Revoking superadmin takes its rights at once.
func TestDirectorySuperadminRevoked(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sys := commands.Meta{Caller: auth.System()}
	can := func() bool {
		p, err := f.dir.APITokenPrincipal(f.token, time.Now())
		testenv.Must(t, err, "principal")
		return p.Can(f.dir.Authorizer(), authz.UsersCreate, "", authz.Instance).Allowed
	}
	if !can() {
		t.Fatal("the bootstrapped administrator is no superadmin")
	}
	res, err := f.cmds.SetSuperadmin.Handle(ctx, commands.SetSuperadmin{Meta: sys, UserID: f.userID, Superadmin: false})
	testenv.Must(t, err, "revoke")
	f.sync(res.Sequence)
	if can() {
		t.Fatal("still a superadmin")
	}
	res, err = f.cmds.SetSuperadmin.Handle(ctx, commands.SetSuperadmin{Meta: sys, UserID: f.userID, Superadmin: true})
	testenv.Must(t, err, "grant again")
	f.sync(res.Sequence)
	if !can() {
		t.Fatal("not a superadmin again")
	}
}
