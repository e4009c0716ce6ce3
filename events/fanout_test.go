package events_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

// collector gathers the sequences a subscriber receives.
type collector struct {
	mu   sync.Mutex
	seqs []uint64
}

func (c *collector) add(env events.Envelope, _ error) {
	c.mu.Lock()
	c.seqs = append(c.seqs, env.Sequence)
	c.mu.Unlock()
}

func (c *collector) waitFor(t *testing.T, n int) []uint64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := append([]uint64(nil), c.seqs...)
		c.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func appendN(t *testing.T, st *events.Store, n int) {
	t.Helper()
	for range n {
		_, err := st.Append(context.Background(), events.Pending{Aggregate: events.AggregateServiceAccount,
			Envelope: events.New("t1", events.NewID(), events.System, "", events.ServiceAccountDeleted{})})
		testenv.Must(t, err, "append")
	}
}

func TestFanoutDeliversInOrderToEarlyAndLateSubscribers(t *testing.T) {
	st, _ := testenv.Store(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	appendN(t, st, 5)
	f := st.Fanout()
	testenv.Must(t, f.Start(ctx), "fanout")

	tests := []struct {
		name string
		from uint64
		want []uint64
	}{
		{"from the start", 0, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"from the middle of the backlog", 4, []uint64{4, 5, 6, 7, 8, 9, 10}},
		{"from the future", 9, []uint64{9, 10}},
	}
	// Let the fan-out deliver the backlog first, so later subscribers must
	// read it back from the stream.
	first := &collector{}
	_, err := f.Follow(ctx, events.Filter{}, first.add)
	testenv.Must(t, err, "follow")
	if got := first.waitFor(t, 5); len(got) != 5 {
		t.Fatalf("backlog %v", got)
	}
	subs := make([]*collector, len(tests))
	for i, tt := range tests {
		subs[i] = &collector{}
		_, err := f.Follow(ctx, events.Filter{StartSeq: tt.from}, subs[i].add)
		testenv.Must(t, err, "follow")
	}
	appendN(t, st, 5)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := subs[i].waitFor(t, len(tt.want))
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for j := range got {
				if got[j] != tt.want[j] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
	if _, err := f.Follow(ctx, events.Filter{Subjects: []string{st.TenantSubjects("t1")}}, func(events.Envelope, error) {}); err == nil {
		t.Fatal("a subject filter was accepted")
	}
}

// A late subscriber whose catch-up lags behind heavy writes holds at most
// a bounded number of live events; the rest it reads back from the
// stream, and it still gets every event once, in order.
func TestFanoutBoundsWhatALateSubscriberHolds(t *testing.T) {
	defer events.SetMaxPending(3)()
	st, _ := testenv.Store(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	appendN(t, st, 20)
	f := st.Fanout()
	testenv.Must(t, f.Start(ctx), "fanout")
	first := &collector{}
	_, err := f.Follow(ctx, events.Filter{}, first.add)
	testenv.Must(t, err, "follow")
	first.waitFor(t, 20)
	slow := &collector{}
	_, err = f.Follow(ctx, events.Filter{}, func(env events.Envelope, err error) {
		if env.Sequence <= 20 {
			time.Sleep(5 * time.Millisecond) // a catch-up slower than the writes
		}
		slow.add(env, err)
	})
	testenv.Must(t, err, "follow late")
	appendN(t, st, 30)
	got := slow.waitFor(t, 50)
	if len(got) != 50 {
		t.Fatalf("got %d events: %v", len(got), got)
	}
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("event %d has sequence %d: %v", i, seq, got)
		}
	}
}

// Subscribers that all start late in the log cost no read of the events
// before: the fan-out's one consumer starts at the earliest of them, and a
// subscriber that comes later for older events reads those from the
// stream.
func TestFanoutStartsAtItsEarliestSubscriber(t *testing.T) {
	st, _ := testenv.Store(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	appendN(t, st, 10)
	f := st.Fanout()
	late, later := &collector{}, &collector{}
	_, err := f.Follow(ctx, events.Filter{StartSeq: 9}, later.add)
	testenv.Must(t, err, "follow")
	_, err = f.Follow(ctx, events.Filter{StartSeq: 7}, late.add)
	testenv.Must(t, err, "follow")
	testenv.Must(t, f.Start(ctx), "start")

	stream, err := st.JetStream().Stream(ctx, st.StreamName())
	testenv.Must(t, err, "stream")
	var starts []uint64
	for info := range stream.ListConsumers(ctx).Info() {
		starts = append(starts, info.Config.OptStartSeq)
	}
	if len(starts) != 1 || starts[0] != 7 {
		t.Fatalf("consumers start at %v, want one at 7", starts)
	}
	early := &collector{}
	_, err = f.Follow(ctx, events.Filter{StartSeq: 2}, early.add)
	testenv.Must(t, err, "follow early")
	appendN(t, st, 2)
	for _, tt := range []struct {
		name string
		c    *collector
		from uint64
	}{{"later", later, 9}, {"late", late, 7}, {"early, after start", early, 2}} {
		t.Run(tt.name, func(t *testing.T) {
			want := 12 - int(tt.from) + 1
			got := tt.c.waitFor(t, want)
			if len(got) != want || got[0] != tt.from || got[len(got)-1] != 12 {
				t.Fatalf("got %v, want %d..12", got, tt.from)
			}
			for i := 1; i < len(got); i++ {
				if got[i] != got[i-1]+1 {
					t.Fatalf("not in order: %v", got)
				}
			}
		})
	}
}
