// Package leader runs named consumers of the event log, each in one
// process at a time: the process that holds the consumer's Postgres
// advisory lock leads it, on the connection holding the lock, fed live
// from the position the consumer stored; the others stand by and take
// over when the lock comes free. What a consumer does with the events,
// and where it keeps its position, is its own: projections and effects
// are the two consumers' kinds.
package leader

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/keyhold/keyhold/events"
)

var (
	// ErrInvalidOption is returned by New for a bad kind or option.
	ErrInvalidOption = errors.New("leader: invalid option")

	// ErrBehind is returned by Feed.Err when the leader fell more than the
	// feed's buffer behind the live log. A Lead returning it is run again
	// at once on the same session (the lock kept), starting from its
	// stored position.
	ErrBehind = errors.New("leader: fell behind the live feed")
)

// Group runs consumers of one kind (for example "projector"). It is safe
// for concurrent use.
type Group struct {
	db        *sqlx.DB
	follow    events.Log
	kind      string
	log       *slog.Logger
	lockRetry time.Duration

	mu      sync.Mutex
	leading map[string]bool
}

// Option configures a Group. It returns what is wrong with its value, and
// New wraps that in ErrInvalidOption; a package that offers an Option
// under its own option type wraps it in its own sentinel instead.
type Option func(*Group) error

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(g *Group) error {
		if l == nil {
			return errors.New("nil logger")
		}
		g.log = l
		return nil
	}
}

// WithFollow makes leaders follow the log through l (for example a
// fan-out shared with other followers in the process) instead of the log
// given to New.
func WithFollow(l events.Log) Option {
	return func(g *Group) error {
		if l == nil {
			return errors.New("nil log")
		}
		g.follow = l
		return nil
	}
}

// WithLockRetry sets how often a standby tries to take a consumer over
// (default 1s).
func WithLockRetry(d time.Duration) Option {
	return func(g *Group) error {
		if d < 10*time.Millisecond || d > time.Minute {
			return fmt.Errorf("lock retry %s", d)
		}
		g.lockRetry = d
		return nil
	}
}

// New returns a group of consumers of kind, which names their locks
// ("keyhold.<kind>.<name>") and their log lines, taking locks on db and
// following log. kind is 1 to 32 lowercase letters.
func New(db *sqlx.DB, log events.Log, kind string, opts ...Option) (*Group, error) {
	if db == nil || log == nil {
		return nil, fmt.Errorf("%w: nil dependency", ErrInvalidOption)
	}
	if !validKind(kind) {
		return nil, fmt.Errorf("%w: kind %q", ErrInvalidOption, kind)
	}
	g := &Group{db: db, follow: log, kind: kind, log: slog.Default(), lockRetry: time.Second, leading: map[string]bool{}}
	for _, o := range opts {
		if err := o(g); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidOption, err)
		}
	}
	return g, nil
}

func validKind(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// Logger returns the group's logger.
func (g *Group) Logger() *slog.Logger { return g.log }

// Key returns the advisory lock key of the lock named kind and name. Keys
// must never change: running deployments hold them.
func Key(kind, name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("keyhold." + kind + "." + name))
	return int64(h.Sum64())
}

// Consumer is one named consumer of the log.
type Consumer struct {
	// Name names the consumer within its group's kind.
	Name string
	// Lead runs the consumer while this process holds its lock, until ctx
	// ends (then it returns nil) or it fails. It must not keep s after it
	// returns: the session is closed then, which releases the lock.
	Lead func(ctx context.Context, s *Session) error
	// Ended, when set, is told how each turn ended: nil when the lock was
	// held elsewhere or ctx ended, ErrBehind before Lead runs again at once
	// on the same session, or the error that ended it. It returns whether it reported
	// err itself; if not, the group warns that the consumer stopped.
	Ended func(err error) (reported bool)
}

// Run runs each consumer whenever this process holds its lock, and stands
// by for it otherwise, until ctx ends; it returns when every lead has
// returned and every lock connection is closed.
func (g *Group) Run(ctx context.Context, consumers []Consumer) {
	var wg sync.WaitGroup
	for _, c := range consumers {
		wg.Add(1)
		go func() { defer wg.Done(); g.compete(ctx, c) }()
	}
	wg.Wait()
}

// Leading reports whether this process currently leads consumer name.
func (g *Group) Leading(name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.leading[name]
}

func (g *Group) setLeading(name string, v bool) {
	g.mu.Lock()
	g.leading[name] = v
	g.mu.Unlock()
}

// compete takes c's lock when it can and leads c while holding it.
func (g *Group) compete(ctx context.Context, c Consumer) {
	for ctx.Err() == nil {
		s, err := g.TryLock(ctx, c.Name)
		if s != nil {
			g.setLeading(c.Name, true)
			// A lead that fell behind starts again at once on the same
			// session: the lock never leaves this process, so no standby
			// takes the consumer over in between and no retry waits for
			// Postgres to release the old session's lock.
			for err = c.Lead(ctx, s); errors.Is(err, ErrBehind) && ctx.Err() == nil; err = c.Lead(ctx, s) {
				if c.Ended != nil {
					c.Ended(err)
				}
			}
			g.setLeading(c.Name, false)
			s.Close()
		}
		if ctx.Err() != nil {
			err = nil
		}
		reported := c.Ended != nil && c.Ended(err)
		if err != nil && !reported {
			g.log.Warn(g.kind+" stopped, will retry", g.kind, c.Name, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(g.lockRetry):
		}
	}
}

// Session is the Postgres session holding a consumer's lock: the lock
// lasts as long as the session. A leader may lose it unnoticed (a killed
// backend is seen only at the next statement or ping), so what a leader
// writes must be fenced by its own records, not by the lock.
type Session struct {
	g    *Group
	name string
	conn *sqlx.Conn
}

// TryLock takes consumer name's lock on a connection of its own, or
// returns a nil session when another session holds it. Close the session
// to release the lock.
func (g *Group) TryLock(ctx context.Context, name string) (*Session, error) {
	conn, err := g.db.Connx(ctx)
	if err != nil {
		return nil, err
	}
	var got bool
	if err := conn.GetContext(ctx, &got, "SELECT pg_try_advisory_lock($1)", Key(g.kind, name)); err != nil || !got {
		conn.Close()
		return nil, err
	}
	return &Session{g: g, name: name, conn: conn}, nil
}

// Conn returns the connection holding the lock.
func (s *Session) Conn() *sqlx.Conn { return s.conn }

// Ping checks that the connection, and with it the lock, is still there.
func (s *Session) Ping(ctx context.Context) error {
	if err := s.conn.PingContext(ctx); err != nil {
		return fmt.Errorf("lost %s lock connection: %w", s.g.kind, err)
	}
	return nil
}

// Close ends the session instead of returning its connection to the
// pool: ending it releases the lock even if a transaction was left open,
// and keeps session settings (search_path, synchronous_commit) from
// leaking into other queries.
func (s *Session) Close() { Discard(s.conn) }

// Discard closes conn instead of returning it to the pool, ending its
// session.
func Discard(conn *sqlx.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

// Feed is a leader's live feed of the log. The callback the log calls
// never blocks, because a log shared with other followers (the fan-out)
// must not wait on one leader's database: events go to a buffer, and
// once it is full the rest are dropped and Err reports ErrBehind.
type Feed struct {
	ch       chan events.Envelope
	overflow atomic.Bool
	stop     func()
	cancel   context.CancelFunc
}

// Follow starts feeding the log's events after seq, buffering up to size
// of them. Events that fail to decode arrive typed
// events.TypeUndecodable. Stop the feed when done.
func (s *Session) Follow(ctx context.Context, seq uint64, size int) (*Feed, error) {
	ctx, cancel := context.WithCancel(ctx)
	f := &Feed{ch: make(chan events.Envelope, size), cancel: cancel}
	stop, err := s.g.follow.Follow(ctx, events.Filter{StartSeq: seq + 1}, func(env events.Envelope, err error) {
		if err != nil {
			env.Type = events.TypeUndecodable
		}
		if f.overflow.Load() {
			return
		}
		select {
		case f.ch <- env:
		default:
			f.overflow.Store(true)
		}
	})
	if err != nil {
		cancel()
		return nil, err
	}
	f.stop = stop
	return f, nil
}

// Events delivers the log's events in order.
func (f *Feed) Events() <-chan events.Envelope { return f.ch }

// Err returns ErrBehind once the buffer overflowed and every event it
// held was taken: the leader must start again from its stored position.
// Until then it returns nil, and events still buffered are in order and
// without gaps.
func (f *Feed) Err() error {
	if f.overflow.Load() && len(f.ch) == 0 {
		return ErrBehind
	}
	return nil
}

// Stop ends the feed.
func (f *Feed) Stop() {
	f.stop()
	f.cancel()
}
