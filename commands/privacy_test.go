package commands

import (
	"context"
	"errors"
	"testing"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/privacy"
)

var sys = Meta{Caller: auth.System()}

// legacyUser appends a user as a binary from before encryption and
// blinding wrote it: plaintext UserCreated v2 and bare-hash reservations.
func legacyUser(t *testing.T, st *events.Store, id, username, email string) {
	t.Helper()
	u := events.InstanceTenant
	created := events.New(u, id, events.System, "", events.UserCreated{Personal: &events.Personal{Username: username, Email: email}, Status: events.UserStatusActive})
	created.Version = 2
	_, err := st.Append(context.Background(),
		events.Pending{Aggregate: events.AggregateUnique, Envelope: events.New(u, uniqueID(uniqueUsername, username), events.System, "", events.UniqueKeyClaimed{Kind: uniqueUsername, Owner: id}), Expect: true},
		events.Pending{Aggregate: events.AggregateUnique, Envelope: events.New(u, uniqueID(uniqueEmail, email), events.System, "", events.UniqueKeyClaimed{Kind: uniqueEmail, Owner: id}), Expect: true},
		events.Pending{Aggregate: events.AggregateUser, Envelope: created, Expect: true},
	)
	testenv.Must(t, err, "append legacy user")
}

// Values reserved under the bare-hash subjects of older logs still
// conflict, are released under them, and can be claimed again afterwards.
func TestLegacyReservations(t *testing.T) {
	st, _ := testenv.Store(t)
	cmds, err := New(st, WithPersonalData(privacy.NewMemory()))
	testenv.Must(t, err, "commands")
	ctx := context.Background()
	const old = "01jold0000000000000000user"
	legacyUser(t, st, old, "olduser", "old@acme.test")

	taken := func(name, username, email string) {
		t.Helper()
		_, err := cmds.CreateUser.Handle(ctx, CreateUser{Meta: sys, Username: username, Email: email})
		if !errors.Is(err, ErrAlreadyExists) {
			t.Fatalf("%s: %v, want ErrAlreadyExists", name, err)
		}
	}
	taken("legacy username", "OldUser", "new@acme.test")
	taken("legacy email", "newuser", "OLD@acme.test")

	// Renaming the legacy user frees its old username (held under the
	// bare hash) and claims the new one blinded; its email stays held.
	res, err := cmds.UpdateUser.Handle(ctx, UpdateUser{Meta: sys, UserID: old, Username: ptr("renamed")})
	testenv.Must(t, err, "rename legacy user")
	if p := res.User.Personal(); p.Username != "renamed" || p.Email != "old@acme.test" {
		t.Fatalf("after rename: %+v", p)
	}
	taken("legacy email after the rename", "someone", "old@acme.test")
	taken("new username", "renamed", "x@acme.test")
	other, err := cmds.CreateUser.Handle(ctx, CreateUser{Meta: sys, Username: "olduser", Email: "x@acme.test"})
	testenv.Must(t, err, "claim the released legacy username")

	// Deleting releases the email held under the bare hash.
	_, err = cmds.DeleteUser.Handle(ctx, DeleteUser{Meta: sys, UserID: old})
	testenv.Must(t, err, "delete legacy user")
	_, err = cmds.CreateUser.Handle(ctx, CreateUser{Meta: sys, Username: "third", Email: "old@acme.test"})
	testenv.Must(t, err, "claim the released legacy email")

	// New claims are blinded: no bare-hash subject is written for them.
	for _, v := range []struct{ kind, value string }{{uniqueUsername, "third"}, {uniqueEmail, "x@acme.test"}, {uniqueUsername, "renamed"}} {
		n, err := st.AggregateSequence(ctx, events.InstanceTenant, events.AggregateUnique, uniqueID(v.kind, v.value))
		testenv.Must(t, err, "sequence")
		if n != 0 {
			t.Fatalf("%s %q was reserved under its bare hash", v.kind, v.value)
		}
	}
	_ = other
}

func ptr(s string) *string { return &s }

func TestErasePersonalData(t *testing.T) {
	st, _ := testenv.Store(t)
	cmds, err := New(st, WithPersonalData(privacy.NewMemory()))
	testenv.Must(t, err, "commands")
	ctx := context.Background()
	ann, err := cmds.CreateUser.Handle(ctx, CreateUser{Meta: sys, Username: "ann", Email: "ann@acme.test", FirstName: "Ann"})
	testenv.Must(t, err, "create ann")
	id := ann.User.ID()
	notSuper := Meta{Caller: auth.Principal{ID: "01jops00000000000000000000", Kind: auth.KindUser, Tenant: "acme"}}

	for _, tc := range []struct {
		name string
		cmd  ErasePersonalData
		want error
	}{
		{"superadmins only", ErasePersonalData{Meta: notSuper, PrincipalID: id}, ErrForbidden},
		{"narrowed token", ErasePersonalData{Meta: Meta{Caller: auth.Principal{ID: "x", Kind: auth.KindUser, Bindings: auth.System().Bindings, Roles: []string{}}}, PrincipalID: id}, ErrForbidden},
		{"bad id", ErasePersonalData{Meta: sys, PrincipalID: "a b"}, ErrInvalid},
		{"unknown user", ErasePersonalData{Meta: sys, PrincipalID: "01jnobody00000000000000000"}, ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := cmds.ErasePersonalData.Handle(ctx, tc.cmd); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	res, err := cmds.ErasePersonalData.Handle(ctx, ErasePersonalData{Meta: sys, PrincipalID: id})
	testenv.Must(t, err, "erase")
	if res.Sequence == 0 {
		t.Fatal("the erase recorded nothing")
	}
	again, err := cmds.ErasePersonalData.Handle(ctx, ErasePersonalData{Meta: sys, PrincipalID: id})
	testenv.Must(t, err, "erase again")
	if again.Sequence != 0 {
		t.Fatalf("erasing again recorded at %d", again.Sequence)
	}

	// A fresh writer (another replica, or after a restart) rebuilds the
	// user from the log without the destroyed key.
	for name, c := range map[string]*Commands{"writer": cmds, "fresh writer": mustNew(t, st, cmds.ErasePersonalData.personal)} {
		u, _, err := c.ErasePersonalData.existingUser(ctx, id)
		testenv.Must(t, err, "%s: load", name)
		if !u.Erased() || u.Personal() != events.ErasedPersonal() {
			t.Fatalf("%s: user %+v", name, u.Personal())
		}
	}
	if _, err := cmds.UpdateUser.Handle(ctx, UpdateUser{Meta: sys, UserID: id, FirstName: ptr("Anna")}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("update of an erased user: %v, want ErrInvalid", err)
	}
	// Username and email are free again.
	_, err = cmds.CreateUser.Handle(ctx, CreateUser{Meta: sys, Username: "ann", Email: "ann@acme.test"})
	testenv.Must(t, err, "register the erased values again")
	// The erased user can still be deleted; that releases nothing of the
	// new owner's.
	_, err = cmds.DeleteUser.Handle(ctx, DeleteUser{Meta: sys, UserID: id})
	testenv.Must(t, err, "delete the erased user")
	if _, err := cmds.CreateUser.Handle(ctx, CreateUser{Meta: sys, Username: "ann", Email: "other@acme.test"}); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("the erased user's delete released the new owner's username: %v", err)
	}

	// A deleted user can be erased too.
	bob, err := cmds.CreateUser.Handle(ctx, CreateUser{Meta: sys, Username: "bob", Email: "bob@acme.test"})
	testenv.Must(t, err, "create bob")
	_, err = cmds.DeleteUser.Handle(ctx, DeleteUser{Meta: sys, UserID: bob.User.ID()})
	testenv.Must(t, err, "delete bob")
	_, err = cmds.ErasePersonalData.Handle(ctx, ErasePersonalData{Meta: sys, PrincipalID: bob.User.ID()})
	testenv.Must(t, err, "erase a deleted user")
}

func TestNoKeyStoreRefusesUsers(t *testing.T) {
	st, _ := testenv.Store(t)
	cmds, err := New(st)
	testenv.Must(t, err, "commands")
	_, err = cmds.CreateUser.Handle(context.Background(), CreateUser{Meta: sys, Username: "ann", Email: "ann@acme.test"})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("create without a key store: %v, want ErrUnavailable", err)
	}
}

func mustNew(t *testing.T, st *events.Store, p *privacy.Store) *Commands {
	t.Helper()
	c, err := New(st, WithPersonalData(p))
	testenv.Must(t, err, "commands")
	return c
}

// Erasing releases every login the user claimed, a username that looks
// like an email (claimed as an email too) included.
func TestEraseReleasesEveryLogin(t *testing.T) {
	st, _ := testenv.Store(t)
	cmds := mustNew(t, st, privacy.NewMemory())
	ctx := context.Background()
	res, err := cmds.CreateUser.Handle(ctx, CreateUser{Meta: sys, Username: "carol@x.test", Email: "carol@y.test"})
	testenv.Must(t, err, "create")
	if _, err := cmds.CreateUser.Handle(ctx, CreateUser{Meta: sys, Username: "other", Email: "carol@x.test"}); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("the username as another's email: %v, want ErrAlreadyExists", err)
	}
	_, err = cmds.ErasePersonalData.Handle(ctx, ErasePersonalData{Meta: sys, PrincipalID: res.User.ID()})
	testenv.Must(t, err, "erase")
	_, err = cmds.CreateUser.Handle(ctx, CreateUser{Meta: sys, Username: "other", Email: "carol@x.test"})
	testenv.Must(t, err, "the erased username as an email")
}

// Two attempts of a keyed request that decide the same user get the same
// message ids, although each seals the personal data with a new nonce.
func TestSealedEventsKeepMessageIDs(t *testing.T) {
	ctx := context.Background()
	personal := privacy.NewMemory()
	b := base{personal: personal}
	k := key{events.InstanceTenant, events.AggregateUser, "01jann00000000000000000000"}
	p := events.Personal{Username: "ann", Email: "ann@acme.test"}
	var ids, datas []string
	for range 2 {
		c := newChange(Meta{Caller: auth.System(), IdempotencyKey: "k1"})
		testenv.Must(t, b.recordCreated(ctx, c, k, newUser(k.id).(*User), 0, p, false, ""), "record")
		ids = append(ids, c.pending[0].MsgID)
		datas = append(datas, string(c.pending[0].Envelope.Data))
	}
	if ids[0] == "" || ids[0] != ids[1] {
		t.Fatalf("message ids %q", ids)
	}
	if datas[0] == datas[1] {
		t.Fatal("both attempts sealed alike: the test would pass without the rule")
	}
}
