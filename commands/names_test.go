package commands_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

// A chosen name is held by one account at a time: of concurrent creates
// on two replicas one wins; after the winner's deletion on one replica,
// the other replica (whose cache saw the name taken) lets it be taken
// again and resolves it to the new owner.
func TestServiceAccountNamesAreUnique(t *testing.T) {
	_, a, b, meta := twoWriters(t)
	ctx := context.Background()
	create := func(c *commands.Commands, name string) (commands.ServiceAccountResult, error) {
		return c.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: meta, Name: name, DisplayName: name, Scope: events.Scope{Level: events.ScopeTenant}})
	}

	const n = 8
	var wg sync.WaitGroup
	results := make([]error, n)
	ids := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := a
			if i%2 == 1 {
				c = b
			}
			res, err := create(c, "runner")
			results[i] = err
			if err == nil {
				ids[i] = res.ServiceAccount.ID()
			}
		}()
	}
	wg.Wait()
	var winner string
	for i, err := range results {
		switch {
		case err == nil && winner == "":
			winner = ids[i]
		case err == nil:
			t.Fatalf("two accounts named runner: %s and %s", winner, ids[i])
		case !errors.Is(err, commands.ErrAlreadyExists):
			t.Fatalf("create %d: %v, want ErrAlreadyExists", i, err)
		}
	}
	if winner == "" {
		t.Fatal("no create won")
	}

	// Both replicas know the name as taken now.
	for _, c := range []*commands.Commands{a, b} {
		if _, err := create(c, "runner"); !errors.Is(err, commands.ErrAlreadyExists) {
			t.Fatalf("create while taken: %v", err)
		}
	}
	_, err := a.DeleteServiceAccount.Handle(ctx, commands.DeleteServiceAccount{Meta: meta, ID: "runner"})
	testenv.Must(t, err, "delete by name on a")
	again, err := create(b, "runner")
	testenv.Must(t, err, "take the name again on b")
	if again.ServiceAccount.ID() == winner || again.ServiceAccount.Name() != "runner" {
		t.Fatalf("recreated %s named %q", again.ServiceAccount.ID(), again.ServiceAccount.Name())
	}
	// Writes by name reach the new owner, on either replica.
	for _, c := range []*commands.Commands{a, b} {
		cred, err := c.CreateCredential.Handle(ctx, commands.CreateCredential{Meta: meta, ServiceAccountID: "runner"})
		testenv.Must(t, err, "credential by name")
		if cred.ServiceAccount.ID() != again.ServiceAccount.ID() {
			t.Fatalf("credential went to %s, want %s", cred.ServiceAccount.ID(), again.ServiceAccount.ID())
		}
	}
	name := "x"
	if _, err := a.UpdateServiceAccount.Handle(ctx, commands.UpdateServiceAccount{Meta: meta, ID: "nobody", DisplayName: &name}); !errors.Is(err, commands.ErrNotFound) {
		t.Fatalf("update of an unknown name: %v", err)
	}
	if _, err := create(a, "Bad_Name"); !errors.Is(err, commands.ErrInvalid) {
		t.Fatalf("create with a bad name: %v, want ErrInvalid", err)
	}
}

// A keyed delete by name whose first attempt reached the log succeeds
// again when retried, though the name is free by then; any other request
// for the name is not found.
func TestSeededDeleteByNameSucceedsAgain(t *testing.T) {
	ctx := context.Background()
	_, a, b, meta := twoWriters(t)
	_, err := a.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: meta, Name: "gone", DisplayName: "gone", Scope: events.Scope{Level: events.ScopeTenant}})
	testenv.Must(t, err, "create")
	keyed, other := meta, meta
	keyed.IDSeed, other.IDSeed = events.NewID(), events.NewID()
	first, err := a.DeleteServiceAccount.Handle(ctx, commands.DeleteServiceAccount{Meta: keyed, ID: "gone"})
	testenv.Must(t, err, "delete by name")
	again, err := b.DeleteServiceAccount.Handle(ctx, commands.DeleteServiceAccount{Meta: keyed, ID: "gone"})
	// The retry answers the account's deletion, which the first attempt's
	// batch (deletion, then the name's release) holds.
	if err != nil || again == 0 || again > first {
		t.Fatalf("retried delete by name on another replica: seq %d (first %d), %v", again, first, err)
	}
	for _, m := range []commands.Meta{other, meta} {
		if _, err := a.DeleteServiceAccount.Handle(ctx, commands.DeleteServiceAccount{Meta: m, ID: "gone"}); !errors.Is(err, commands.ErrNotFound) {
			t.Fatalf("another request deleting the name: %v", err)
		}
	}
}
