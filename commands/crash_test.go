package commands

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

// TestUniquenessSurvivesCrashMidBatch simulates the worst moment for a
// uniqueness claim: a process publishes the claim as the first part of an
// atomic batch and dies before the commit. Nothing may be stored, and the
// value must stay free for the next claimant.
func TestUniquenessSurvivesCrashMidBatch(t *testing.T) {
	srv := testenv.NATS(t, "")
	nc := testenv.Conn(t, srv)
	opts := testenv.StreamOptions()
	st, err := events.Open(context.Background(), nc, opts...)
	testenv.Must(t, err, "open store")

	crashing, err := srv.Connect("crashing")
	testenv.Must(t, err, "connect")
	claim := events.New(events.InstanceTenant, uniqueID("username", "alice"), events.System, "", events.UniqueKeyClaimed{Kind: "username", Owner: "ghost"})
	m := nats.NewMsg(st.SubjectOf(events.InstanceTenant, events.AggregateUnique, claim.Subject))
	m.Data = []byte(`{"type":"iam.unique_key.claimed","version":1}`)
	m.Header.Set("Nats-Batch-Id", "crashbatch")
	m.Header.Set("Nats-Batch-Sequence", "1")
	m.Header.Set("Nats-Expected-Last-Subject-Sequence", "0")
	testenv.Must(t, crashing.PublishMsg(m), "publish first batch part")
	testenv.Must(t, crashing.Flush(), "flush")
	crashing.Close() // dies before the commit

	if seq, err := st.LastSequence(context.Background()); err != nil || seq != 0 {
		t.Fatalf("stream holds %d events after an uncommitted batch (err %v), want 0", seq, err)
	}
	cmds, err := New(st)
	testenv.Must(t, err, "commands")
	_, err = cmds.Bootstrap.Handle(context.Background(), Bootstrap{Meta: Meta{Caller: auth.System()}, Tenant: "acme", Username: "alice", Email: "alice@acme.test"})
	testenv.Must(t, err, "bootstrap after the crash")
}

// TestConcurrentClaimsOneWinner races bootstraps of different tenants
// for one username through separate handler sets (separate caches, as on
// separate replicas): exactly one may win.
func TestConcurrentClaimsOneWinner(t *testing.T) {
	st, _ := testenv.Store(t)
	const n = 8
	var wg sync.WaitGroup
	results := make(chan error, n)
	for i := range n {
		cmds, err := New(st)
		testenv.Must(t, err, "commands")
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant := string(rune('a'+i)) + "-corp"
			_, err := cmds.Bootstrap.Handle(context.Background(), Bootstrap{Meta: Meta{Caller: auth.System()}, Tenant: tenant, Username: "same", Email: tenant + "@x.test"})
			results <- err
		}()
	}
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case errors.Is(err, ErrAlreadyExists), errors.Is(err, ErrConcurrentChange):
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d bootstraps claimed the same username, want exactly 1", won)
	}
	var users int
	err := st.Read(context.Background(), events.Filter{}, func(e events.Envelope) error {
		if e.Type == "iam.user.created" {
			users++
		}
		return nil
	})
	testenv.Must(t, err, "read")
	if users != 1 {
		t.Fatalf("log holds %d users, want 1", users)
	}
}
