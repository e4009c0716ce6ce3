package leader_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/leader"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, what, cond)
}

func newGroup(t *testing.T, db *sqlx.DB, st *events.Store, opts ...leader.Option) *leader.Group {
	t.Helper()
	opts = append([]leader.Option{leader.WithLockRetry(20 * time.Millisecond), leader.WithLogger(quiet)}, opts...)
	g, err := leader.New(db, st, "test", opts...)
	testenv.Must(t, err, "new group")
	return g
}

// run runs g's consumers until the returned stop is called (or the test
// ends); stop waits for Run to return.
func run(t *testing.T, g *leader.Group, cs ...leader.Consumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx, cs) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// appendEvents appends n events and returns the log's last sequence.
func appendEvents(t *testing.T, st *events.Store, n int) uint64 {
	t.Helper()
	var last uint64
	for range n {
		id := events.NewID()
		res, err := st.Append(context.Background(), events.Pending{Aggregate: events.AggregateTenant,
			Envelope: events.New(id, id, events.System, "", events.TenantCreated{Name: "t"})})
		testenv.Must(t, err, "append")
		last = res.Sequence
	}
	return last
}

// lockHolder returns the backend pid holding the advisory lock of
// kind/name, or 0.
func lockHolder(t *testing.T, db *sqlx.DB, kind, name string) int {
	t.Helper()
	key := uint64(leader.Key(kind, name))
	var pid int
	err := db.Get(&pid, `SELECT coalesce(max(pid), 0) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1`, int64(key>>32), int64(key&0xffffffff))
	testenv.Must(t, err, "read pg_locks")
	return pid
}

// TestOneLeadsAndTheOtherTakesOver runs two groups competing for one
// consumer: exactly one leads, and when its turn ends the other takes
// over.
func TestOneLeadsAndTheOtherTakesOver(t *testing.T) {
	st, _ := testenv.Store(t)
	db := testenv.DB(t)
	tests := []struct {
		name string
		// end ends the leader's turn: lead is the leader's index, stop
		// stops its group.
		end func(t *testing.T, lead int, fail []chan error, stop []func())
		// overlap is whether both leads may run at once for a moment: a
		// leader whose session was killed learns it only at its next ping.
		overlap bool
		warned  bool
	}{
		{name: "leader's process stops", end: func(t *testing.T, lead int, _ []chan error, stop []func()) { stop[lead]() }},
		{name: "lead fails", warned: true, end: func(t *testing.T, lead int, fail []chan error, _ []func()) {
			fail[lead] <- errors.New("boom")
		}},
		{name: "lock connection killed", overlap: true, warned: true, end: func(t *testing.T, _ int, _ []chan error, _ []func()) {
			pid := lockHolder(t, db, "test", t.Name())
			if pid == 0 {
				t.Fatal("no session holds the lock")
			}
			_, err := db.Exec("SELECT pg_terminate_backend($1)", pid)
			testenv.Must(t, err, "terminate")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := t.Name()
			var running, most atomic.Int32
			fail := []chan error{make(chan error, 1), make(chan error, 1)}
			logs := []*testenv.SyncBuffer{{}, {}}
			groups := make([]*leader.Group, 2)
			stops := make([]func(), 2)
			for i := range groups {
				groups[i] = newGroup(t, db, st, leader.WithLogger(slog.New(slog.NewTextHandler(logs[i], nil))))
				fail := fail[i]
				stops[i] = run(t, groups[i], leader.Consumer{Name: name, Lead: func(ctx context.Context, s *leader.Session) error {
					n := running.Add(1)
					defer running.Add(-1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					ping := time.NewTicker(10 * time.Millisecond)
					defer ping.Stop()
					for {
						select {
						case <-ctx.Done():
							return nil
						case err := <-fail:
							return err
						case <-ping.C:
							if err := s.Ping(ctx); err != nil {
								return err
							}
						}
					}
				}})
			}
			eventually(t, "one group leads", func() bool { return groups[0].Leading(name) || groups[1].Leading(name) })
			lead := 0
			if groups[1].Leading(name) {
				lead = 1
			}
			other := 1 - lead
			// The standby keeps trying the lock and must keep failing.
			time.Sleep(100 * time.Millisecond)
			if !groups[lead].Leading(name) || groups[other].Leading(name) {
				t.Fatalf("leading: %v %v, want only group %d", groups[0].Leading(name), groups[1].Leading(name), lead)
			}
			tt.end(t, lead, fail, stops)
			eventually(t, "the other group takes over", func() bool { return groups[other].Leading(name) })
			if tt.overlap {
				eventually(t, "the old leader notices", func() bool { return !groups[lead].Leading(name) })
			} else if n := most.Load(); n != 1 {
				t.Errorf("%d leads ran at once, want 1", n)
			}
			if got := strings.Contains(logs[lead].String(), "test stopped, will retry"); got != tt.warned {
				t.Errorf("warned %v, want %v; log:\n%s", got, tt.warned, logs[lead].String())
			}
		})
	}
}

// TestFeedOverflowRestartsFromThePosition fills a small feed while the
// leader is busy: the lead gets ErrBehind once it has taken what the feed
// held, and the next turn, started at once without a warning on the same
// session (the lock never left: with a minute between lock retries, a new
// session would not come in time), follows from the position without
// losing or repeating an event.
func TestFeedOverflowRestartsFromThePosition(t *testing.T) {
	st, _ := testenv.Store(t)
	db := testenv.DB(t)
	var logs testenv.SyncBuffer
	g := newGroup(t, db, st, leader.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), leader.WithLockRetry(time.Minute))
	var (
		mu       sync.Mutex
		seen     []uint64
		pos      uint64 // the consumer's stored position
		turns    int
		ended    []error
		backends []int // the lock session's backend, per turn
	)
	busy := make(chan struct{})
	const n = 40
	run(t, g, leader.Consumer{
		Name: "overflow",
		Lead: func(ctx context.Context, s *leader.Session) error {
			var backend int
			if err := s.Conn().GetContext(ctx, &backend, "SELECT pg_backend_pid()"); err != nil {
				return err
			}
			mu.Lock()
			from := pos
			turns++
			first := turns == 1
			backends = append(backends, backend)
			mu.Unlock()
			feed, err := s.Follow(ctx, from, 4)
			if err != nil {
				return err
			}
			defer feed.Stop()
			if first {
				<-busy // the log grows past the buffer meanwhile
			}
			for {
				if err := feed.Err(); err != nil {
					return err
				}
				select {
				case <-ctx.Done():
					return nil
				case env := <-feed.Events():
					mu.Lock()
					seen = append(seen, env.Sequence)
					pos = env.Sequence
					mu.Unlock()
				}
			}
		},
		Ended: func(err error) bool {
			mu.Lock()
			ended = append(ended, err)
			mu.Unlock()
			return false
		},
	})
	eventually(t, "group leads", func() bool { return g.Leading("overflow") })
	head := appendEvents(t, st, n)
	close(busy)
	eventually(t, "every event seen", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return pos == head
	})
	mu.Lock()
	defer mu.Unlock()
	if turns < 2 {
		t.Errorf("%d turns, want a restart after the overflow", turns)
	}
	for _, b := range backends {
		if b != backends[0] {
			t.Errorf("turns ran on the sessions of backends %v, want one session throughout", backends)
			break
		}
	}
	if len(ended) == 0 || !errors.Is(ended[0], leader.ErrBehind) {
		t.Errorf("turns ended with %v, want ErrBehind first", ended)
	}
	for i, seq := range seen {
		if seq != uint64(i)+1 {
			t.Fatalf("seen %v, want 1..%d in order, once each", seen, n)
		}
	}
	if uint64(len(seen)) != head {
		t.Errorf("seen %d events, want %d", len(seen), head)
	}
	if strings.Contains(logs.String(), "stopped, will retry") {
		t.Errorf("falling behind was logged as a stop:\n%s", logs.String())
	}
}

// TestLeadingReportsTheTurn checks Leading before, during and after a
// turn, and for a name the group does not run.
func TestLeadingReportsTheTurn(t *testing.T) {
	st, _ := testenv.Store(t)
	db := testenv.DB(t)
	g := newGroup(t, db, st)
	if g.Leading("probe") {
		t.Fatal("leading before Run")
	}
	end := make(chan struct{})
	inLead := make(chan bool, 10)
	stop := run(t, g, leader.Consumer{Name: "probe", Lead: func(ctx context.Context, s *leader.Session) error {
		inLead <- g.Leading("probe")
		select {
		case <-ctx.Done():
		case <-end:
		}
		return nil
	}})
	if !<-inLead {
		t.Error("not leading during the lead")
	}
	if g.Leading("other") {
		t.Error("leading a consumer the group does not run")
	}
	close(end) // the turn ends; the group takes the lock again
	if !<-inLead {
		t.Error("not leading during the second turn")
	}
	stop()
	if g.Leading("probe") {
		t.Error("leading after Run returned")
	}
}

// TestCancelStopsEverything cancels a group while it leads one consumer
// and stands by for another (held elsewhere): Run returns, the lock is
// released, the feed is stopped and no goroutine is left.
func TestCancelStopsEverything(t *testing.T) {
	st, _ := testenv.Store(t)
	db := testenv.DB(t)
	other := newGroup(t, db, st)
	held, err := other.TryLock(context.Background(), "held")
	testenv.Must(t, err, "lock")
	if held == nil {
		t.Fatal("lock taken by nobody else but not granted")
	}
	before := runtime.NumGoroutine()
	g := newGroup(t, db, st)
	var delivered atomic.Int32
	stopped := make(chan struct{})
	lead := func(ctx context.Context, s *leader.Session) error {
		defer close(stopped)
		feed, err := s.Follow(ctx, 0, 16)
		if err != nil {
			return err
		}
		defer feed.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-feed.Events():
				delivered.Add(1)
			}
		}
	}
	stop := run(t, g, leader.Consumer{Name: "led", Lead: lead}, leader.Consumer{Name: "held", Lead: func(context.Context, *leader.Session) error {
		t.Error("led a consumer whose lock another session holds")
		return nil
	}})
	eventually(t, "group leads", func() bool { return g.Leading("led") })
	appendEvents(t, st, 1)
	eventually(t, "event delivered", func() bool { return delivered.Load() == 1 })
	stop()
	select {
	case <-stopped:
	default:
		t.Fatal("Run returned before the lead did")
	}
	if g.Leading("led") {
		t.Error("still leading after Run returned")
	}
	eventually(t, "lock released", func() bool { return lockHolder(t, db, "test", "led") == 0 })
	eventually(t, "goroutines gone", func() bool { return runtime.NumGoroutine() <= before })
	held.Close()
	if n := db.Stats().InUse; n != 0 {
		t.Errorf("%d connections in use after Run returned", n)
	}
}

func TestNewRefusesBadInput(t *testing.T) {
	st, _ := testenv.Store(t)
	db := testenv.DB(t)
	tests := []struct {
		name string
		db   *sqlx.DB
		log  events.Log
		kind string
		opts []leader.Option
	}{
		{name: "nil db", log: st, kind: "test"},
		{name: "nil log", db: db, kind: "test"},
		{name: "empty kind", db: db, log: st},
		{name: "kind with a dot", db: db, log: st, kind: "a.b"},
		{name: "nil logger", db: db, log: st, kind: "test", opts: []leader.Option{leader.WithLogger(nil)}},
		{name: "nil follow", db: db, log: st, kind: "test", opts: []leader.Option{leader.WithFollow(nil)}},
		{name: "lock retry too short", db: db, log: st, kind: "test", opts: []leader.Option{leader.WithLockRetry(time.Millisecond)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := leader.New(tt.db, tt.log, tt.kind, tt.opts...); !errors.Is(err, leader.ErrInvalidOption) {
				t.Fatalf("err = %v, want ErrInvalidOption", err)
			}
		})
	}
}

// TestKeysStayPut pins lock keys that running deployments hold.
func TestKeysStayPut(t *testing.T) {
	tests := []struct {
		kind, name string
		want       int64
	}{
		{"projector", "iam", -232170086648474724},
		{"reaction", "mail.invitation", -5965888668216609728},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.name, func(t *testing.T) {
			if got := leader.Key(tt.kind, tt.name); got != tt.want {
				t.Errorf("Key(%q, %q) = %d, want %d", tt.kind, tt.name, got, tt.want)
			}
		})
	}
}

// TestFeedStopEndsFollowing stops a feed while its context lives on, as a
// lead restarting after ErrBehind does: it leaves nothing following the
// log behind.
func TestFeedStopEndsFollowing(t *testing.T) {
	st, _ := testenv.Store(t)
	db := testenv.DB(t)
	g := newGroup(t, db, st)
	s, err := g.TryLock(context.Background(), "feed")
	testenv.Must(t, err, "lock")
	defer s.Close()
	before := runtime.NumGoroutine()
	for range 3 {
		feed, err := s.Follow(context.Background(), 0, 16)
		testenv.Must(t, err, "follow")
		feed.Stop()
	}
	eventually(t, "goroutines gone", func() bool { return runtime.NumGoroutine() <= before })
}
