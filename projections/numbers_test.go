package projections_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/query"
)

// Every user, service account, role and group has a number: the log
// sequence of its creating event, the same after a rebuild, and never
// given again once its owner is deleted.
func TestNumbersAreCreationSequences(t *testing.T) {
	f := newFixture(t)
	r := f.start(t)
	ctx := context.Background()
	meta := commands.Meta{Caller: f.admin}
	q, err := query.New(f.db, nil)
	testenv.Must(t, err, "queries")

	type created struct {
		kind, tenant, aggregate, id string
	}
	var all []created
	for i := 0; i < 3; i++ {
		sa, err := f.cmds.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: meta, DisplayName: "sa", Scope: events.Scope{Level: events.ScopeTenant, Target: "acme"}})
		testenv.Must(t, err, "service account")
		all = append(all, created{query.NumberedServiceAccount, "acme", events.AggregateServiceAccount, sa.ServiceAccount.ID()})
	}
	role, err := f.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: meta, RoleInput: commands.RoleInput{Name: "numbered"}})
	testenv.Must(t, err, "role")
	all = append(all, created{query.NumberedRole, "acme", events.AggregateRole, role.Role.ID()})
	group, err := f.cmds.CreateGroup.Handle(ctx, commands.CreateGroup{Meta: meta, GroupInput: commands.GroupInput{Name: "numbered"}})
	testenv.Must(t, err, "group")
	all = append(all, created{query.NumberedGroup, "acme", events.AggregateGroup, group.Group.ID()})
	user, err := f.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: meta, Username: "numbered", Email: "numbered@acme.test", Tenants: []string{"acme"}})
	testenv.Must(t, err, "user")
	all = append(all, created{query.NumberedUser, events.InstanceTenant, events.AggregateUser, user.User.ID()})
	f.wait(t, user.Sequence)

	numbers := map[uint64]string{}
	check := func(t *testing.T) {
		t.Helper()
		for _, c := range all {
			envs, _, err := f.store.Load(ctx, c.tenant, c.aggregate, c.id)
			testenv.Must(t, err, "load %s", c.id)
			n := envs[0].Sequence
			got, err := q.Numbered(ctx, f.admin, c.kind, n)
			if err != nil || got != c.id {
				t.Fatalf("%s number %d = %q, %v; want %s", c.kind, n, got, err, c.id)
			}
			if other, dup := numbers[n]; dup && other != c.id {
				t.Fatalf("number %d given to %s and %s", n, other, c.id)
			}
			numbers[n] = c.id
		}
	}
	check(t)

	// Deleted: its number resolves to nothing, and no later resource gets it.
	gone := all[0]
	envs, _, err := f.store.Load(ctx, gone.tenant, gone.aggregate, gone.id)
	testenv.Must(t, err, "load")
	goneNumber := envs[0].Sequence
	_, err = f.cmds.DeleteServiceAccount.Handle(ctx, commands.DeleteServiceAccount{Meta: meta, ID: gone.id})
	testenv.Must(t, err, "delete")
	next, err := f.cmds.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: meta, DisplayName: "next", Scope: events.Scope{Level: events.ScopeTenant, Target: "acme"}})
	testenv.Must(t, err, "next")
	f.wait(t, next.Sequence)
	all = append(all[1:], created{query.NumberedServiceAccount, "acme", events.AggregateServiceAccount, next.ServiceAccount.ID()})
	if _, err := q.Numbered(ctx, f.admin, query.NumberedServiceAccount, goneNumber); !errors.Is(err, query.ErrNotFound) {
		t.Fatalf("deleted account's number: err %v, want ErrNotFound", err)
	}
	check(t)

	// The same numbers after a rebuild of the read tables.
	testenv.Must(t, r.Rebuild(ctx, nil), "rebuild")
	check(t)

	// A service account's number is no group's.
	if _, err := q.Numbered(ctx, f.admin, query.NumberedGroup, goneNumber+1); !errors.Is(err, query.ErrNotFound) {
		t.Fatalf("a service account's number as a group's: %v", err)
	}
}
