package effects_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyhold/keyhold/effects"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/mail"
)

// probe is a reaction to service accounts being created that records
// each call; react, when set, decides each call's outcome from the
// number of calls the event has had (1 for the first).
type probe struct {
	name  string
	react func(ctx context.Context, env events.Envelope, n int) error

	mu    sync.Mutex
	calls []call
}

type call struct {
	id  string
	seq uint64
	at  time.Time
}

func (p *probe) Name() string    { return p.name }
func (p *probe) Types() []string { return []string{events.ServiceAccountCreated{}.EventType()} }

func (p *probe) React(ctx context.Context, env events.Envelope, ev events.Event) error {
	if _, ok := ev.(events.ServiceAccountCreated); !ok {
		return fmt.Errorf("got %T, want the decoded event", ev)
	}
	p.mu.Lock()
	p.calls = append(p.calls, call{id: env.ID, seq: env.Sequence, at: time.Now()})
	n := 0
	for _, c := range p.calls {
		if c.id == env.ID {
			n++
		}
	}
	p.mu.Unlock()
	if p.react == nil {
		return nil
	}
	return p.react(ctx, env, n)
}

func (p *probe) snapshot() []call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]call(nil), p.calls...)
}

// callsOf returns the calls for one event id.
func (p *probe) callsOf(id string) []call {
	var out []call
	for _, c := range p.snapshot() {
		if c.id == id {
			out = append(out, c)
		}
	}
	return out
}

type fixture struct {
	store *events.Store
	db    *sqlx.DB
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, _ := testenv.Store(t)
	return &fixture{store: st, db: testenv.DB(t)}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// start prepares and runs a runner of reactions until stop (returned) or
// the end of the test, and waits until it leads them all.
func (f *fixture) start(t *testing.T, reactions []effects.Reaction, opts ...effects.Option) (*effects.Runner, func()) {
	t.Helper()
	opts = append([]effects.Option{effects.WithLockRetry(20 * time.Millisecond), effects.WithBackoff(20*time.Millisecond, 80*time.Millisecond),
		effects.WithShutdownGrace(20 * time.Millisecond), effects.WithLogger(quiet)}, opts...)
	r, err := effects.NewRunner(f.db, f.store, reactions, opts...)
	testenv.Must(t, err, "runner")
	testenv.Must(t, r.Prepare(context.Background()), "prepare")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return r, stop
}

// waitLeading waits until r leads reaction name.
func waitLeading(t *testing.T, r *effects.Runner, name string) {
	t.Helper()
	eventually(t, "runner leads "+name, func() bool { return r.Leading(name) })
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, what, cond)
}

// createSA appends a ServiceAccountCreated and returns its envelope.
func (f *fixture) createSA(t *testing.T) events.Envelope {
	t.Helper()
	id := events.NewID()
	env := events.New("acme", id, events.System, "", events.ServiceAccountCreated{ClientID: "khc-" + id, DisplayName: "robot", Status: "active"})
	res, err := f.store.Append(context.Background(), events.Pending{Aggregate: events.AggregateServiceAccount, Envelope: env, Expect: true})
	testenv.Must(t, err, "append")
	env.Sequence = res.Sequence
	return env
}

// other appends an event no probe wants.
func (f *fixture) other(t *testing.T) {
	t.Helper()
	env := events.New("acme", "acme", events.System, "", events.TenantCreated{Name: "acme"})
	_, err := f.store.Append(context.Background(), events.Pending{Aggregate: events.AggregateTenant, Envelope: env})
	testenv.Must(t, err, "append")
}

func status(t *testing.T, r *effects.Runner, name string) effects.Status {
	t.Helper()
	st, err := r.Status(context.Background())
	testenv.Must(t, err, "status")
	for _, s := range st {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for %s in %+v", name, st)
	return effects.Status{}
}

// TestReactionRunsOncePerEventAcrossRestarts: each wanted event is
// performed once, in log order, other events are passed over, and a
// restarted runner goes on without repeating any, even from a position
// that went back.
func TestReactionRunsOncePerEventAcrossRestarts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := &probe{name: "probe"}
	r, stop := f.start(t, []effects.Reaction{p})
	waitLeading(t, r, "probe")
	a := f.createSA(t)
	f.other(t)
	b := f.createSA(t)
	eventually(t, "two calls", func() bool { return len(p.snapshot()) == 2 })
	stop()

	// Rewound (a leader that lost its lock and read on from where it
	// was), the runner still performs no event twice: attempts are
	// recorded per event.
	_, err := f.db.Exec("UPDATE effect_positions SET seq = 0 WHERE reaction = 'probe'")
	testenv.Must(t, err, "rewind")
	f.other(t)
	c := f.createSA(t) // committed while no runner runs
	r2, _ := f.start(t, []effects.Reaction{p})
	d := f.createSA(t)
	eventually(t, "four calls", func() bool { return len(p.snapshot()) == 4 })
	// Give a duplicate time to show up.
	time.Sleep(100 * time.Millisecond)
	got := p.snapshot()
	want := []events.Envelope{a, b, c, d}
	if len(got) != len(want) {
		t.Fatalf("%d calls, want %d: %+v", len(got), len(want), got)
	}
	for i, env := range want {
		if got[i].id != env.ID || got[i].seq != env.Sequence {
			t.Errorf("call %d: event %s at %d, want %s at %d", i, got[i].id, got[i].seq, env.ID, env.Sequence)
		}
	}
	eventually(t, "status shows four done", func() bool {
		s := status(t, r2, "probe")
		return s.Done == 4 && s.Position == d.Sequence && s.Lag == 0
	})
}

// TestNewReactionStartsAtTheLogsEnd: a reaction added to a log that
// already holds events it wants acts only on later ones.
func TestNewReactionStartsAtTheLogsEnd(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.createSA(t)
	f.createSA(t)
	p := &probe{name: "late"}
	r, _ := f.start(t, []effects.Reaction{p})
	waitLeading(t, r, "late")
	fresh := f.createSA(t)
	eventually(t, "a call", func() bool { return len(p.snapshot()) == 1 })
	time.Sleep(100 * time.Millisecond)
	if got := p.snapshot(); len(got) != 1 || got[0].id != fresh.ID {
		t.Fatalf("calls %+v, want only the event after the first start (%s)", got, fresh.ID)
	}
}

// TestAttemptCutShortIsUnknownNotRepeated: a runner that stops while an
// attempt is under way (as a crash would) leaves it recorded; the next
// leader reports its outcome unknown and does not perform it again.
func TestAttemptCutShortIsUnknownNotRepeated(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	entered := make(chan struct{}, 1)
	blocking := &probe{name: "mailer", react: func(ctx context.Context, _ events.Envelope, _ int) error {
		entered <- struct{}{}
		<-ctx.Done() // never returns on its own, like a hung send
		return ctx.Err()
	}}
	r, stop := f.start(t, []effects.Reaction{blocking})
	waitLeading(t, r, "mailer")
	cut := f.createSA(t)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("reaction not called")
	}
	stop()

	p := &probe{name: "mailer"}
	r2, _ := f.start(t, []effects.Reaction{p})
	waitLeading(t, r2, "mailer")
	next := f.createSA(t)
	eventually(t, "the next event", func() bool { return len(p.callsOf(next.ID)) == 1 })
	if c := p.callsOf(cut.ID); len(c) != 0 {
		t.Fatalf("the cut-short event was performed again: %+v", c)
	}
	s := status(t, r2, "mailer")
	if s.Unknown != 1 || s.Done != 1 || s.LastError == nil || !strings.Contains(*s.LastError, "outcome unknown") {
		t.Fatalf("status %+v, want one unknown and one done with the reason", s)
	}
	msg, err := r2.Degraded(context.Background())
	testenv.Must(t, err, "degraded")
	if !strings.Contains(msg, "mailer: 1 of unknown outcome") {
		t.Fatalf("Degraded = %q, want it to name the unknown outcome", msg)
	}
}

// TestRetriesBackOffAndDoNotHoldUpLaterEvents: a retryable failure is
// retried after growing delays until it succeeds, while a later event is
// performed meanwhile.
func TestRetriesBackOffAndDoNotHoldUpLaterEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var flaky string
	var mu sync.Mutex
	p := &probe{name: "flaky", react: func(_ context.Context, env events.Envelope, n int) error {
		mu.Lock()
		defer mu.Unlock()
		if env.ID == flaky && n < 3 {
			return errors.New("421 try again later")
		}
		return nil
	}}
	reg := prometheus.NewRegistry()
	r, _ := f.start(t, []effects.Reaction{p}, effects.WithBackoff(100*time.Millisecond, 150*time.Millisecond), effects.WithRegistry(reg))
	waitLeading(t, r, "flaky")
	mu.Lock()
	first := f.createSA(t)
	flaky = first.ID
	mu.Unlock()
	second := f.createSA(t)
	eventually(t, "three tries of the first", func() bool { return len(p.callsOf(first.ID)) == 3 })
	tries := p.callsOf(first.ID)
	later := p.callsOf(second.ID)
	if len(later) != 1 || !later[0].at.Before(tries[1].at) {
		t.Fatalf("the later event (%+v) waited for the retry (%+v)", later, tries)
	}
	// 100 ms less a tenth of jitter, then 150 ms (the longest) less a tenth.
	for i, least := range []time.Duration{90 * time.Millisecond, 135 * time.Millisecond} {
		if gap := tries[i+1].at.Sub(tries[i].at); gap < least {
			t.Errorf("retry %d came after %s, want at least %s", i+1, gap, least)
		}
	}
	eventually(t, "both done", func() bool { s := status(t, r, "flaky"); return s.Done == 2 && s.Retrying == 0 })
	if got := counter(t, reg, "keyhold_effects_retried_total"); got != 2 {
		t.Errorf("retried_total = %v, want 2", got)
	}
	if got := counter(t, reg, "keyhold_effects_sent_total"); got != 2 {
		t.Errorf("sent_total = %v, want 2", got)
	}
}

// TestFailuresAreRecorded: a permanent failure is recorded at once with
// its text; a retryable one after the attempts allowed.
func TestFailuresAreRecorded(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		err       error
		wantCalls int
		wantText  string
	}{
		{"permanent", fmt.Errorf("550 no such mailbox: %w", mail.ErrPermanent), 1, "550 no such mailbox: mail: permanent failure"},
		{"retries spent", errors.New("connection refused"), 3, "gave up after 3 attempts: connection refused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			p := &probe{name: "failing", react: func(context.Context, events.Envelope, int) error { return tt.err }}
			reg := prometheus.NewRegistry()
			r, _ := f.start(t, []effects.Reaction{p}, effects.WithMaxAttempts(3), effects.WithRegistry(reg))
			waitLeading(t, r, "failing")
			env := f.createSA(t)
			eventually(t, "recorded as failed", func() bool { return status(t, r, "failing").Failed == 1 })
			time.Sleep(150 * time.Millisecond) // past the longest back-off: no retry may follow
			if n := len(p.callsOf(env.ID)); n != tt.wantCalls {
				t.Fatalf("%d calls, want %d", n, tt.wantCalls)
			}
			s := status(t, r, "failing")
			if s.LastError == nil || !strings.Contains(*s.LastError, tt.wantText) || s.Retrying != 0 {
				t.Fatalf("status %+v, want the error %q recorded", s, tt.wantText)
			}
			if got := counter(t, reg, "keyhold_effects_failed_total"); got != 1 {
				t.Errorf("failed_total = %v, want 1", got)
			}
			msg, err := r.Degraded(context.Background())
			testenv.Must(t, err, "degraded")
			if !strings.Contains(msg, "failing: 1 event(s) failed") {
				t.Fatalf("Degraded = %q", msg)
			}
		})
	}
}

// TestRetriesPendingBeyondThresholdDegrade: waiting retries are reported
// only beyond the threshold.
func TestRetriesPendingBeyondThresholdDegrade(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := &probe{name: "slow", react: func(context.Context, events.Envelope, int) error { return errors.New("busy") }}
	r, _ := f.start(t, []effects.Reaction{p}, effects.WithBackoff(time.Hour, time.Hour), effects.WithRetryThreshold(1))
	waitLeading(t, r, "slow")
	f.createSA(t)
	eventually(t, "one retrying", func() bool { return status(t, r, "slow").Retrying == 1 })
	if msg, err := r.Degraded(context.Background()); err != nil || msg != "" {
		t.Fatalf("Degraded = %q, %v with one retry pending, want nothing", msg, err)
	}
	f.createSA(t)
	eventually(t, "two retrying", func() bool { return status(t, r, "slow").Retrying == 2 })
	if msg, _ := r.Degraded(context.Background()); !strings.Contains(msg, "slow: 2 waiting for a retry") {
		t.Fatalf("Degraded = %q, want the retries named", msg)
	}
}

// TestReplicasRunAReactionInOneProcess: of two runners on one database
// and log, one leads; every event is performed once, also when the leader
// stops and the other takes over.
func TestReplicasRunAReactionInOneProcess(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pa, pb := &probe{name: "shared"}, &probe{name: "shared"}
	ra, stopA := f.start(t, []effects.Reaction{pa})
	waitLeading(t, ra, "shared")
	rb, _ := f.start(t, []effects.Reaction{pb})
	var sent []events.Envelope
	for range 5 {
		sent = append(sent, f.createSA(t))
	}
	eventually(t, "five calls", func() bool { return len(pa.snapshot())+len(pb.snapshot()) == 5 })
	if ra.Leading("shared") == rb.Leading("shared") {
		t.Fatalf("leading a=%v b=%v, want exactly one", ra.Leading("shared"), rb.Leading("shared"))
	}
	if len(pb.snapshot()) != 0 {
		t.Fatalf("the standby performed %d events", len(pb.snapshot()))
	}
	stopA()
	waitLeading(t, rb, "shared")
	for range 3 {
		sent = append(sent, f.createSA(t))
	}
	eventually(t, "eight calls", func() bool { return len(pa.snapshot())+len(pb.snapshot()) == 8 })
	time.Sleep(100 * time.Millisecond)
	seen := map[string]int{}
	for _, c := range append(pa.snapshot(), pb.snapshot()...) {
		seen[c.id]++
	}
	for _, env := range sent {
		if seen[env.ID] != 1 {
			t.Errorf("event %d performed %d times", env.Sequence, seen[env.ID])
		}
	}
}

func TestNewRunnerRefusesBadReactions(t *testing.T) {
	t.Parallel()
	// NewRunner checks its arguments without using the database or the log.
	f := &fixture{store: &events.Store{}, db: &sqlx.DB{}}
	for _, tt := range []struct {
		name      string
		reactions []effects.Reaction
		opts      []effects.Option
	}{
		{"bad name", []effects.Reaction{&probe{name: "Bad Name"}}, nil},
		{"empty name", []effects.Reaction{&probe{name: ""}}, nil},
		{"duplicate", []effects.Reaction{&probe{name: "a"}, &probe{name: "a"}}, nil},
		{"no attempts", []effects.Reaction{&probe{name: "a"}}, []effects.Option{effects.WithMaxAttempts(0)}},
		{"back-off upside down", []effects.Reaction{&probe{name: "a"}}, []effects.Option{effects.WithBackoff(time.Minute, time.Second)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := effects.NewRunner(f.db, f.store, tt.reactions, tt.opts...); !errors.Is(err, effects.ErrInvalidOption) {
				t.Fatalf("err = %v, want ErrInvalidOption", err)
			}
		})
	}
}

// counter is the value of the counter name in reg, summed over its labels.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	testenv.Must(t, err, "gather")
	for _, mf := range mfs {
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	return 0
}
