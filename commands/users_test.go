package commands_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

func ptr(s string) *string { return &s }

func TestUserCommands(t *testing.T) {
	_, cmds, admin := setup(t)
	ctx := context.Background()
	sys := commands.Meta{Caller: auth.System()}
	tenantAdmin := commands.Meta{Caller: admin}
	bob, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "bob", Email: "Bob@Acme.test", FirstName: "Bob", Tenants: []string{"acme"}, Password: "a long enough secret"})
	testenv.Must(t, err, "create bob")
	if got := bob.User.Personal().Email; got != "bob@acme.test" {
		t.Fatalf("email %q, want lower-cased", got)
	}
	id := bob.User.ID()
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"create needs a superadmin", func() error {
			_, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: tenantAdmin, Username: "eve", Email: "eve@acme.test"})
			return err
		}, commands.ErrForbidden},
		{"username taken, other case", func() error {
			_, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "BOB", Email: "b2@acme.test"})
			return err
		}, commands.ErrAlreadyExists},
		{"email taken, other case", func() error {
			_, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "bob2", Email: "BOB@acme.test"})
			return err
		}, commands.ErrAlreadyExists},
		{"bad email", func() error {
			_, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "carl", Email: "not an email"})
			return err
		}, commands.ErrInvalid},
		{"display name with a bidi control", func() error {
			_, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "carl", Email: "carl@acme.test", DisplayName: "a\u202eb"})
			return err
		}, commands.ErrBidiControl},
		{"short password", func() error {
			_, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "carl", Email: "carl@acme.test", Password: "short"})
			return err
		}, auth.ErrWeakPassword},
		{"unknown tenant", func() error {
			_, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "carl", Email: "carl@acme.test", Tenants: []string{"nope"}})
			return err
		}, commands.ErrNotFound},
		{"password equal to the username", func() error {
			_, err := cmds.SetPassword.Handle(ctx, commands.SetPassword{Meta: sys, UserID: id, Password: "BOB"})
			return err
		}, commands.ErrInvalid},
		{"password of another user needs a superadmin", func() error {
			_, err := cmds.SetPassword.Handle(ctx, commands.SetPassword{Meta: tenantAdmin, UserID: id, Password: "another long secret"})
			return err
		}, commands.ErrForbidden},
		{"update to a taken email", func() error {
			_, err := cmds.UpdateUser.Handle(ctx, commands.UpdateUser{Meta: sys, UserID: id, Email: ptr("root@acme.test")})
			return err
		}, commands.ErrAlreadyExists},
		{"update of nothing", func() error {
			_, err := cmds.UpdateUser.Handle(ctx, commands.UpdateUser{Meta: sys, UserID: id})
			return err
		}, commands.ErrInvalid},
		{"unknown status", func() error {
			_, err := cmds.SetUserStatus.Handle(ctx, commands.SetUserStatus{Meta: sys, UserID: id, Status: "gone"})
			return err
		}, commands.ErrInvalid},
		{"delete unknown user", func() error {
			_, err := cmds.DeleteUser.Handle(ctx, commands.DeleteUser{Meta: sys, UserID: "01nosuchuser"})
			return err
		}, commands.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}

	t.Run("own password", func(t *testing.T) {
		self := commands.Meta{Caller: auth.Principal{ID: id, Kind: auth.KindUser, Tenant: "acme"}}
		// A user changing its own password proves it knows the current one.
		for _, old := range []string{"", "not the secret at all"} {
			_, err := cmds.SetPassword.Handle(ctx, commands.SetPassword{Meta: self, UserID: id, Password: "my own new secret", OldPassword: old})
			if !errors.Is(err, commands.ErrInvalid) {
				t.Fatalf("old password %q: err = %v, want ErrInvalid", old, err)
			}
		}
		res, err := cmds.SetPassword.Handle(ctx, commands.SetPassword{Meta: self, UserID: id, Password: "my own new secret", OldPassword: "a long enough secret"})
		testenv.Must(t, err, "set own password")
		if !res.User.HasPassword() {
			t.Fatal("no password after set")
		}
	})
	t.Run("disable and enable", func(t *testing.T) {
		for _, st := range []string{events.UserStatusDisabled, events.UserStatusDisabled, events.UserStatusActive} {
			res, err := cmds.SetUserStatus.Handle(ctx, commands.SetUserStatus{Meta: sys, UserID: id, Status: st})
			testenv.Must(t, err, "status %s", st)
			if res.User.Status() != st {
				t.Fatalf("status %s, want %s", res.User.Status(), st)
			}
		}
	})
	t.Run("renamed username is free again", func(t *testing.T) {
		_, err := cmds.UpdateUser.Handle(ctx, commands.UpdateUser{Meta: sys, UserID: id, Username: ptr("robert")})
		testenv.Must(t, err, "rename")
		other, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "bob", Email: "other-bob@acme.test"})
		testenv.Must(t, err, "reuse old username")
		_, err = cmds.DeleteUser.Handle(ctx, commands.DeleteUser{Meta: sys, UserID: other.User.ID()})
		testenv.Must(t, err, "delete other bob")
	})
	t.Run("delete releases username and email", func(t *testing.T) {
		_, err := cmds.DeleteUser.Handle(ctx, commands.DeleteUser{Meta: sys, UserID: id})
		testenv.Must(t, err, "delete")
		if _, err := cmds.SetPassword.Handle(ctx, commands.SetPassword{Meta: sys, UserID: id, Password: "a long enough secret"}); !errors.Is(err, commands.ErrNotFound) {
			t.Fatalf("set password of deleted user: %v, want ErrNotFound", err)
		}
		again, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "robert", Email: "BOB@acme.test"})
		testenv.Must(t, err, "create with released username and email")
		if again.User.ID() == id {
			t.Fatal("deleted id reused")
		}
	})
	t.Run("tenant access", func(t *testing.T) {
		u, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "dora", Email: "dora@acme.test"})
		testenv.Must(t, err, "create dora")
		for _, grant := range []bool{true, true, false} {
			res, err := cmds.SetTenantAccess.Handle(ctx, commands.SetTenantAccess{Meta: sys, UserID: u.User.ID(), Tenant: "acme", Grant: grant})
			testenv.Must(t, err, "access %v", grant)
			if got := len(res.User.Tenants()); got != map[bool]int{true: 1, false: 0}[grant] {
				t.Fatalf("grant=%v: tenants %v", grant, res.User.Tenants())
			}
		}
	})
}

func TestAPITokenLifetime(t *testing.T) {
	_, cmds, admin := setup(t)
	ctx := context.Background()
	sys := commands.Meta{Caller: auth.System()}
	for _, tc := range []struct {
		name     string
		lifetime time.Duration
		tokName  string
		want     time.Duration
		err      error
	}{
		{"default", 0, "ci", commands.DefaultAPITokenLifetime, nil},
		{"one day", 24 * time.Hour, "laptop", 24 * time.Hour, nil},
		{"the maximum", commands.MaxAPITokenLifetime, "", commands.MaxAPITokenLifetime, nil},
		{"beyond the maximum", commands.MaxAPITokenLifetime + time.Hour, "", 0, commands.ErrInvalid},
		{"negative", -time.Hour, "", 0, commands.ErrInvalid},
		{"name with a newline", 0, "a\nb", 0, commands.ErrControlCharacter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			res, err := cmds.IssueAPIToken.Handle(ctx, commands.IssueAPIToken{Meta: sys, UserID: admin.ID, Name: tc.tokName, Lifetime: tc.lifetime})
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if d := res.ExpiresAt.Sub(before); d < tc.want-2*time.Second || d > tc.want+2*time.Second {
				t.Fatalf("expires in %s, want %s", d, tc.want)
			}
		})
	}
}

// A username that looks like an email address cannot be another user's
// email, nor the other way round: a login is matched as either.
func TestUsernamesAndEmailsDoNotCollide(t *testing.T) {
	_, cmds, _ := setup(t)
	ctx := context.Background()
	sys := commands.Meta{Caller: auth.System()}
	_, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "carol", Email: "carol@x.example"})
	testenv.Must(t, err, "carol")
	if _, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "Carol@X.example", Email: "zed@x.example"}); !errors.Is(err, commands.ErrAlreadyExists) {
		t.Fatalf("a username that is carol's email: %v", err)
	}
	zed, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "zed@x.example", Email: "zed@x.example"})
	testenv.Must(t, err, "a username equal to its own email")
	if _, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "yan", Email: "zed@x.example"}); !errors.Is(err, commands.ErrAlreadyExists) {
		t.Fatalf("an email that is zed's username: %v", err)
	}
	// Renaming frees the old value in both namespaces.
	name := "zed"
	_, err = cmds.UpdateUser.Handle(ctx, commands.UpdateUser{Meta: sys, UserID: zed.User.ID(), Username: &name})
	testenv.Must(t, err, "rename zed")
	email := "zed2@x.example"
	_, err = cmds.UpdateUser.Handle(ctx, commands.UpdateUser{Meta: sys, UserID: zed.User.ID(), Email: &email})
	testenv.Must(t, err, "new email for zed")
	if _, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "yan", Email: "zed@x.example"}); err != nil {
		t.Fatalf("zed's old login is not free again: %v", err)
	}
}
