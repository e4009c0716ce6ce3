package events_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

// consumers returns how many consumers the store's stream has.
func consumers(t *testing.T, st *events.Store) int {
	t.Helper()
	s, err := st.JetStream().Stream(context.Background(), st.StreamName())
	testenv.Must(t, err, "stream")
	info, err := s.Info(context.Background())
	testenv.Must(t, err, "stream info")
	return info.State.Consumers
}

func TestScan(t *testing.T) {
	st, _ := testenv.Store(t)
	ctx := context.Background()
	// sa1 and its revocations interleave with another account's events;
	// sa1's history is longer than one batch.
	var sa1 []uint64
	for i := range 150 {
		agg, id := events.AggregateServiceAccount, "sa1"
		switch i % 3 {
		case 1:
			agg = events.AggregateTokenRevocations
		case 2:
			id = "sa2"
		}
		a, err := st.Append(ctx, pending(st, "t1", agg, id, false, 0, events.ServiceAccountUpdated{DisplayName: ptr(fmt.Sprint(i))}))
		testenv.Must(t, err, "append %d", i)
		if id == "sa1" {
			sa1 = append(sa1, a.Sequence)
		}
	}
	_, err := st.Append(ctx, pending(st, "t2", events.AggregateServiceAccount, "sa3", false, 0, events.ServiceAccountDeleted{}))
	testenv.Must(t, err, "append t2")

	subjects, err := st.Subjects(ctx, st.Prefix()+".t1.*.sa1")
	testenv.Must(t, err, "subjects")
	slices.Sort(subjects)
	want := []string{st.SubjectOf("t1", events.AggregateServiceAccount, "sa1"), st.SubjectOf("t1", events.AggregateTokenRevocations, "sa1")}
	if !slices.Equal(subjects, want) {
		t.Fatalf("subjects of sa1 = %v, want %v", subjects, want)
	}
	none, err := st.Subjects(ctx, st.Prefix()+".t1.*.nobody")
	testenv.Must(t, err, "subjects of nobody")
	if len(none) != 0 {
		t.Fatalf("subjects of nobody = %v", none)
	}

	seqs := func(t *testing.T, f events.Filter, stopAfter int) []uint64 {
		t.Helper()
		var got []uint64
		testenv.Must(t, st.Scan(ctx, f, func(e events.Envelope) error {
			if e.Type == events.TypeUndecodable || e.Sequence == 0 {
				t.Fatalf("bad envelope %+v", e)
			}
			got = append(got, e.Sequence)
			if len(got) == stopAfter {
				return events.ErrStop
			}
			return nil
		}), "scan")
		return got
	}
	tests := []struct {
		name      string
		f         events.Filter
		stopAfter int
		want      []uint64
	}{
		{"an aggregate's subjects merged in stream order", events.Filter{Subjects: subjects}, 0, sa1},
		{"from a sequence", events.Filter{Subjects: subjects, StartSeq: sa1[50]}, 0, sa1[50:]},
		{"stopped early", events.Filter{Subjects: subjects}, 7, sa1[:7]},
		{"a wildcard", events.Filter{Subjects: []string{st.Prefix() + ".t2.>"}}, 0, []uint64{151}},
		{"everything", events.Filter{}, 0, seqRange(1, 151)},
		{"a subject without events", events.Filter{Subjects: []string{st.SubjectOf("t1", "user", "nobody")}}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := seqs(t, tt.f, tt.stopAfter); !slices.Equal(got, tt.want) {
				t.Fatalf("sequences %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("from a time", func(t *testing.T) {
		future := time.Now().Add(time.Hour)
		if got := seqs(t, events.Filter{Subjects: subjects, StartTime: &future}, 0); len(got) != 0 {
			t.Fatalf("events after the last one's time: %v", got)
		}
		past := time.Now().Add(-time.Hour)
		if got := seqs(t, events.Filter{Subjects: subjects, StartTime: &past}, 0); !slices.Equal(got, sa1) {
			t.Fatalf("since an hour ago: %v, want %v", got, sa1)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		err := st.Scan(cctx, events.Filter{}, func(events.Envelope) error { cancel(); return nil })
		if !errors.Is(err, context.Canceled) {
			// Scan may have had the whole batch already; it then ends
			// at the next fill, which must see the cancellation.
			t.Fatalf("cancelled scan: %v", err)
		}
	})
	if n := consumers(t, st); n != 0 {
		t.Fatalf("%d consumers after scans, want none", n)
	}
}

func TestReadAndFollowDeleteTheirConsumers(t *testing.T) {
	st, _ := testenv.Store(t)
	ctx := context.Background()
	for i := range 20 {
		_, err := st.Append(ctx, pending(st, "t1", events.AggregateServiceAccount, fmt.Sprint("sa", i), false, 0, events.ServiceAccountDeleted{}))
		testenv.Must(t, err, "append")
	}
	reads := []struct {
		name string
		read func() error
	}{
		{"to the end", func() error { return st.Read(ctx, events.Filter{}, func(events.Envelope) error { return nil }) }},
		{"nothing pending", func() error {
			return st.Read(ctx, events.Filter{StartSeq: 100}, func(events.Envelope) error { return nil })
		}},
		{"stopped", func() error {
			return st.Read(ctx, events.Filter{}, func(events.Envelope) error { return events.ErrStop })
		}},
		{"failed", func() error {
			if err := st.Read(ctx, events.Filter{}, func(events.Envelope) error { return errors.New("boom") }); err == nil {
				return errors.New("no error")
			}
			return nil
		}},
		{"cancelled", func() error {
			// The read may end with the cancellation or, having the rest
			// buffered already, at the end: either way without a consumer.
			cctx, cancel := context.WithCancel(ctx)
			_ = st.Read(cctx, events.Filter{}, func(events.Envelope) error { cancel(); return nil })
			return nil
		}},
	}
	for _, r := range reads {
		t.Run(r.name, func(t *testing.T) {
			testenv.Must(t, r.read(), "read")
			if n := consumers(t, st); n != 0 {
				t.Fatalf("%d consumers left after the read", n)
			}
		})
	}
	t.Run("follow", func(t *testing.T) {
		got := make(chan uint64, 100)
		stop, err := st.Follow(ctx, events.Filter{}, func(e events.Envelope, _ error) { got <- e.Sequence })
		testenv.Must(t, err, "follow")
		<-got
		if n := consumers(t, st); n != 1 {
			t.Fatalf("%d consumers while following, want 1", n)
		}
		stop()
		if n := consumers(t, st); n != 0 {
			t.Fatalf("%d consumers after stop", n)
		}
	})
	t.Run("follow ended by its context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		_, err := st.Follow(cctx, events.Filter{}, func(events.Envelope, error) {})
		testenv.Must(t, err, "follow")
		cancel()
		deadline := time.Now().Add(5 * time.Second)
		for consumers(t, st) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d consumers 5s after the context ended", consumers(t, st))
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
