package commands_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

// Two replicas inviting one address at once: the write side's
// reservation lets exactly one invitation be pending.
func TestConcurrentInvitationsOfOneAddress(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	writers := []*commands.Commands{w.cmds, w.writer(), w.writer(), w.writer()}
	errs := make([]error, len(writers))
	var wg sync.WaitGroup
	for i, c := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.CreateInvitation.Handle(ctx, commands.CreateInvitation{Meta: operator("acme"), Email: "Ann@Acme.test"})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, commands.ErrAlreadyExists):
			t.Fatalf("err %v, want ErrAlreadyExists", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d invitations pending for one address, want 1 (%v)", won, errs)
	}
}

// Accepting records everything the invitation grants in one batch and
// skips roles and groups deleted since; a second acceptance, or an
// acceptance by another address, is refused.
func TestAcceptInvitation(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	sys := commands.Meta{Caller: auth.System()}
	op := operator("acme")
	_, err := w.cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: sys, Tenant: "acme", Username: "root", Email: "root@acme.test"})
	testenv.Must(t, err, "bootstrap")
	g, err := w.cmds.CreateGroup.Handle(ctx, commands.CreateGroup{Meta: op, GroupInput: commands.GroupInput{Name: "team"}})
	testenv.Must(t, err, "group")
	gone, err := w.cmds.CreateGroup.Handle(ctx, commands.CreateGroup{Meta: op, GroupInput: commands.GroupInput{Name: "gone"}})
	testenv.Must(t, err, "group")
	inv, err := w.cmds.CreateInvitation.Handle(ctx, commands.CreateInvitation{Meta: op, Email: "ann@acme.test",
		Roles:  []events.InvitationRole{{Role: "viewer", Namespaces: []string{"a", "b.c"}}, {Role: "auditor"}},
		Groups: []string{g.Group.ID(), gone.Group.ID()}})
	testenv.Must(t, err, "invite")
	_, err = w.cmds.DeleteGroup.Handle(ctx, commands.DeleteGroup{Meta: op, ID: gone.Group.ID()})
	testenv.Must(t, err, "delete group")
	ann, err := w.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "ann", Email: "ann@acme.test"})
	testenv.Must(t, err, "ann")
	bob, err := w.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "bob", Email: "bob@acme.test"})
	testenv.Must(t, err, "bob")
	token, err := w.cmds.InvitationToken("acme", inv.Invitation.ID())
	testenv.Must(t, err, "token")
	as := func(u commands.UserResult) commands.Meta {
		return commands.Meta{Caller: auth.Principal{ID: u.User.ID(), Kind: auth.KindUser}}
	}

	if _, err := w.cmds.AcceptInvitation.Handle(ctx, commands.AcceptInvitation{Meta: as(bob), Token: token}); !errors.Is(err, commands.ErrForbidden) {
		t.Fatalf("bob accepts ann's invitation: %v, want ErrForbidden", err)
	}
	before := bob.Sequence
	res, err := w.cmds.AcceptInvitation.Handle(ctx, commands.AcceptInvitation{Meta: as(ann), Token: token})
	testenv.Must(t, err, "accept")
	var types []string
	testenv.Must(t, w.st.Read(ctx, events.Filter{StartSeq: before + 1}, func(env events.Envelope) error {
		if env.Type != (events.UniqueKeyReleased{}).EventType() {
			types = append(types, env.Type)
		}
		return nil
	}), "read")
	want := []string{"iam.user.tenant_access_granted", "iam.binding.created", "iam.binding.created", "iam.binding.created",
		"iam.group.member_set", "iam.invitation.accepted"}
	if len(types) != len(want) {
		t.Fatalf("accepting appended %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("accepting appended %v, want %v", types, want)
		}
	}
	if res.UserID != ann.User.ID() || res.Sequence != before+uint64(len(types))+1 {
		t.Fatalf("result %+v (head before %d)", res, before)
	}
	if _, err := w.cmds.AcceptInvitation.Handle(ctx, commands.AcceptInvitation{Meta: as(ann), Token: token}); !errors.Is(err, commands.ErrNotFound) {
		t.Fatalf("second acceptance: %v, want ErrNotFound", err)
	}
}

// An invitation into a tenant deleted since grants nothing.
func TestAcceptInvitationOfDeletedTenant(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	sys := commands.Meta{Caller: auth.System()}
	_, err := w.cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: sys, Tenant: "beta", Username: "root", Email: "root@beta.test"})
	testenv.Must(t, err, "bootstrap")
	inv, err := w.cmds.CreateInvitation.Handle(ctx, commands.CreateInvitation{Meta: operator("beta"), Email: "ann@beta.test"})
	testenv.Must(t, err, "invite")
	ann, err := w.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "ann", Email: "ann@beta.test"})
	testenv.Must(t, err, "ann")
	_, err = w.cmds.DeleteTenant.Handle(ctx, commands.DeleteTenant{Meta: sys, TenantID: "beta"})
	testenv.Must(t, err, "delete tenant")
	token, err := w.cmds.InvitationToken("beta", inv.Invitation.ID())
	testenv.Must(t, err, "token")
	_, err = w.cmds.AcceptInvitation.Handle(ctx, commands.AcceptInvitation{Meta: commands.Meta{Caller: auth.Principal{ID: ann.User.ID(), Kind: auth.KindUser}}, Token: token})
	if !errors.Is(err, commands.ErrNotFound) {
		t.Fatalf("accepting into a deleted tenant: %v, want ErrNotFound", err)
	}
}
