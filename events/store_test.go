package events_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

func pending(st *events.Store, tenant, agg, id string, expect bool, seq uint64, e events.Event) events.Pending {
	return events.Pending{
		Aggregate:   agg,
		Envelope:    events.New(tenant, id, events.System, "", e),
		Expect:      expect,
		ExpectedSeq: seq,
	}
}

func TestAppendConditional(t *testing.T) {
	st, _ := testenv.Store(t)
	ctx := context.Background()
	created := events.ServiceAccountCreated{ClientID: "c1", DisplayName: "a", Status: "active"}

	a, err := st.Append(ctx, pending(st, "t1", events.AggregateServiceAccount, "sa1", true, 0, created))
	testenv.Must(t, err, "first append")

	tests := []struct {
		name    string
		seq     uint64
		wantErr error
	}{
		{"stale expectation conflicts", 0, events.ErrConflict},
		{"future expectation conflicts", a.Sequence + 5, events.ErrConflict},
		{"current expectation appends", a.Sequence, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := st.Append(ctx, pending(st, "t1", events.AggregateServiceAccount, "sa1", true, tt.seq, events.ServiceAccountDeleted{}))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	envs, last, err := st.Load(ctx, "t1", events.AggregateServiceAccount, "sa1")
	testenv.Must(t, err, "load")
	if len(envs) != 2 || envs[0].Type != "iam.service_account.created" || envs[1].Type != "iam.service_account.deleted" {
		t.Fatalf("loaded %+v", envs)
	}
	if last != envs[1].Sequence {
		t.Fatalf("last = %d, want %d", last, envs[1].Sequence)
	}
	if envs[0].Aggregate != events.AggregateServiceAccount || envs[0].Tenant != "t1" || envs[0].Subject != "sa1" {
		t.Fatalf("envelope fields not restored: %+v", envs[0])
	}
}

func TestAppendBatchIsAtomic(t *testing.T) {
	st, _ := testenv.Store(t)
	ctx := context.Background()
	claim := events.UniqueKeyClaimed{Kind: "username", Owner: "u1"}
	_, err := st.Append(ctx, pending(st, "_", events.AggregateUnique, "k1", true, 0, claim))
	testenv.Must(t, err, "claim")

	// The second claim of k1 fails, so the user event in the same batch must not be stored.
	_, err = st.Append(ctx,
		pending(st, "_", events.AggregateUnique, "k1", true, 0, events.UniqueKeyClaimed{Kind: "username", Owner: "u2"}),
		pending(st, "_", events.AggregateUser, "u2", true, 0, events.UserCreated{Personal: &events.Personal{Username: "x"}}),
	)
	if !errors.Is(err, events.ErrConflict) {
		t.Fatalf("err = %v, want conflict", err)
	}
	envs, _, err := st.Load(ctx, "_", events.AggregateUser, "u2")
	testenv.Must(t, err, "load")
	if len(envs) != 0 {
		t.Fatalf("user event stored despite failed batch: %+v", envs)
	}

	res, err := st.Append(ctx,
		pending(st, "_", events.AggregateUnique, "k2", true, 0, events.UniqueKeyClaimed{Kind: "username", Owner: "u3"}),
		pending(st, "_", events.AggregateUser, "u3", true, 0, events.UserCreated{Personal: &events.Personal{Username: "y"}}),
	)
	testenv.Must(t, err, "batch")
	envs, last, err := st.Load(ctx, "_", events.AggregateUser, "u3")
	testenv.Must(t, err, "load")
	if len(envs) != 1 || last != res.Sequence {
		t.Fatalf("batch: got %d events, last %d, want 1 at %d", len(envs), last, res.Sequence)
	}
}

func TestAppendIdempotentMsgID(t *testing.T) {
	st, _ := testenv.Store(t)
	ctx := context.Background()
	p := pending(st, "t1", events.AggregateServiceAccount, "sa1", false, 0, events.ServiceAccountDeleted{})
	p.MsgID = "key-1"
	first, err := st.Append(ctx, p)
	testenv.Must(t, err, "first")
	second, err := st.Append(ctx, p)
	testenv.Must(t, err, "second")
	if !second.Duplicate || second.Sequence != first.Sequence {
		t.Fatalf("second = %+v, want duplicate of %d", second, first.Sequence)
	}
}

func TestReadFilters(t *testing.T) {
	st, _ := testenv.Store(t)
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		_, err := st.Append(ctx, pending(st, "t1", events.AggregateServiceAccount, id, true, 0, events.ServiceAccountCreated{ClientID: id}))
		testenv.Must(t, err, "append %s", id)
	}
	_, err := st.Append(ctx, pending(st, "t2", events.AggregateServiceAccount, "d", true, 0, events.ServiceAccountCreated{ClientID: "d"}))
	testenv.Must(t, err, "append d")

	tests := []struct {
		name string
		f    events.Filter
		want []string
	}{
		{"all", events.Filter{}, []string{"a", "b", "c", "d"}},
		{"tenant", events.Filter{Subjects: []string{st.TenantSubjects("t1")}}, []string{"a", "b", "c"}},
		{"aggregate", events.Filter{Subjects: []string{st.AggregateSubjects("b")}}, []string{"b"}},
		{"from sequence", events.Filter{StartSeq: 3}, []string{"c", "d"}},
		{"nothing", events.Filter{Subjects: []string{st.TenantSubjects("none")}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := st.Read(ctx, tt.f, func(e events.Envelope) error {
				got = append(got, e.Subject)
				return nil
			})
			testenv.Must(t, err, "read")
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestNewIDIncreasesWithinAMillisecond(t *testing.T) {
	prev := events.NewID()
	for i := range 10000 {
		id := events.NewID()
		if id <= prev {
			t.Fatalf("id %d: %s after %s, want strictly increasing", i, id, prev)
		}
		prev = id
	}
}

// TestReadDeliversUndecodable stores a message that is no event between
// two that are: Read and Follow deliver it as a TypeUndecodable envelope
// at its sequence and go on, and Decode refuses it with ErrUndecodable.
func TestReadDeliversUndecodable(t *testing.T) {
	st, _ := testenv.Store(t)
	ctx := context.Background()
	_, err := st.Append(ctx, pending(st, "t1", events.AggregateServiceAccount, "a", true, 0, events.ServiceAccountCreated{ClientID: "a"}))
	testenv.Must(t, err, "append a")
	ack, err := st.JetStream().Publish(ctx, st.SubjectOf("t1", events.AggregateServiceAccount, "junk"), []byte("{not json"))
	testenv.Must(t, err, "publish junk")
	_, err = st.Append(ctx, pending(st, "t1", events.AggregateServiceAccount, "b", true, 0, events.ServiceAccountCreated{ClientID: "b"}))
	testenv.Must(t, err, "append b")

	check := func(t *testing.T, got []events.Envelope) {
		t.Helper()
		if len(got) != 3 || got[0].Subject != "a" || got[2].Subject != "b" {
			t.Fatalf("read %+v, want a, the junk, b", got)
		}
		junk := got[1]
		if junk.Type != events.TypeUndecodable || junk.Sequence != ack.Sequence || junk.Subject != "junk" || junk.Tenant != "t1" {
			t.Fatalf("junk read as %+v", junk)
		}
		if _, err := events.Decode(junk); !errors.Is(err, events.ErrUndecodable) {
			t.Fatalf("Decode(junk): %v, want ErrUndecodable", err)
		}
	}
	t.Run("read", func(t *testing.T) {
		var got []events.Envelope
		testenv.Must(t, st.Read(ctx, events.Filter{}, func(e events.Envelope) error {
			got = append(got, e)
			return nil
		}), "read")
		check(t, got)
	})
	t.Run("follow", func(t *testing.T) {
		ch := make(chan events.Envelope, 3)
		var decodeErrs atomic.Int32
		stop, err := st.Follow(ctx, events.Filter{}, func(e events.Envelope, err error) {
			if err != nil {
				decodeErrs.Add(1)
			}
			ch <- e
		})
		testenv.Must(t, err, "follow")
		defer stop()
		var got []events.Envelope
		for range 3 {
			select {
			case e := <-ch:
				got = append(got, e)
			case <-time.After(5 * time.Second):
				t.Fatalf("follow delivered %d events", len(got))
			}
		}
		check(t, got)
		if decodeErrs.Load() != 1 {
			t.Fatalf("%d decode errors reported, want 1", decodeErrs.Load())
		}
	})
}
