package commands

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/privacy"
)

// state is an aggregate's state folded from its events. apply is the only
// place state changes, for new events and for history alike.
type state interface {
	apply(env events.Envelope, e events.Event)
	clone() state
}

type key struct{ tenant, aggregate, id string }

type cached struct {
	st  state
	seq uint64
	at  time.Time // when the state was loaded or last appended to
}

// repository loads aggregates through a bounded write-side cache holding
// each aggregate's state and last subject sequence. A stale entry is
// harmless: the conditional append fails, the entry is dropped and the
// aggregate reloaded. Safe for concurrent use.
type repository struct {
	store   *events.Store
	retries int
	// personal reads users' personal data out of the events it loads; nil
	// when the commands were built without a key store.
	personal *privacy.Store

	stripes [lockStripes]sync.Mutex

	mu    sync.Mutex
	lru   *list.List // of key, most recent first
	items map[key]*entry
	max   int
}

type entry struct {
	c   cached
	pos *list.Element
}

// lockStripes is how many mutexes serialise commands per aggregate: enough
// that unrelated aggregates rarely share one.
const lockStripes = 1024

func (r *repository) stripe(k key) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(k.tenant))
	h.Write([]byte{0})
	h.Write([]byte(k.aggregate))
	h.Write([]byte{0})
	h.Write([]byte(k.id))
	return &r.stripes[h.Sum32()%lockStripes]
}

func newRepository(store *events.Store, size, retries int, personal *privacy.Store) *repository {
	return &repository{store: store, retries: retries, personal: personal, lru: list.New(), items: map[key]*entry{}, max: size}
}

func (r *repository) get(k key, maxAge time.Duration) (cached, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.items[k]
	if !ok || (maxAge > 0 && time.Since(e.c.at) > maxAge) {
		return cached{}, false
	}
	r.lru.MoveToFront(e.pos)
	return cached{st: e.c.st.clone(), seq: e.c.seq, at: e.c.at}, true
}

func (r *repository) put(k key, c cached) {
	c.at = time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.items[k]; ok {
		if c.seq < e.c.seq {
			return
		}
		e.c = c
		r.lru.MoveToFront(e.pos)
		return
	}
	r.items[k] = &entry{c: c, pos: r.lru.PushFront(k)}
	for r.lru.Len() > r.max {
		old := r.lru.Back()
		r.lru.Remove(old)
		delete(r.items, old.Value.(key))
	}
}

// peek returns the sequence a cached aggregate was built to, if cached.
func (r *repository) peek(k key) (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.items[k]; ok {
		return e.c.seq, true
	}
	return 0, false
}

// stale tells whether the aggregate's last event in the log is newer than
// seq.
func (r *repository) stale(ctx context.Context, k key, seq uint64) (bool, error) {
	last, err := r.store.AggregateSequence(ctx, k.tenant, k.aggregate, k.id)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return last != seq, nil
}

func (r *repository) forget(k key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.items[k]; ok {
		r.lru.Remove(e.pos)
		delete(r.items, k)
	}
}

// load returns a private copy of the aggregate's state and its last
// sequence (0 when it has no events). A cached state older than maxAge
// (0: any age) is reloaded: for aggregates a decision reads without
// appending to them, the conditional append cannot catch staleness, so
// their age is what bounds it.
func (r *repository) load(ctx context.Context, k key, maxAge time.Duration, fresh func() state) (state, uint64, error) {
	if c, ok := r.get(k, maxAge); ok {
		return c.st, c.seq, nil
	}
	envs, seq, err := r.store.Load(ctx, k.tenant, k.aggregate, k.id)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	st := fresh()
	for _, env := range envs {
		e, err := events.Decode(env)
		if err != nil {
			return nil, 0, fmt.Errorf("rebuild %s/%s: %w", k.aggregate, k.id, err)
		}
		if e, err = r.reveal(ctx, env, e); err != nil {
			return nil, 0, err
		}
		st.apply(env, e)
	}
	r.put(k, cached{st: st.clone(), seq: seq})
	return st, seq, nil
}

// reveal returns e with the personal data of a UserCreated, UserUpdated
// or InvitationCreated in the clear (Personal), read with the key store,
// for the aggregate to apply; the event is never written back. Other events pass unchanged.
func (r *repository) reveal(ctx context.Context, env events.Envelope, e events.Event) (events.Event, error) {
	switch x := e.(type) {
	case events.UserCreated:
		p, err := r.personalOf(ctx, env, e, x.Personal, x.PersonalEnc)
		x.Personal, x.PersonalEnc = p, nil
		return x, err
	case events.UserUpdated:
		p, err := r.personalOf(ctx, env, e, x.Personal, x.PersonalEnc)
		x.Personal, x.PersonalEnc = p, nil
		return x, err
	case events.InvitationCreated:
		p, err := r.personalOf(ctx, env, e, x.Personal, x.PersonalEnc)
		x.Personal, x.PersonalEnc = p, nil
		return x, err
	}
	return e, nil
}

func (r *repository) personalOf(ctx context.Context, env events.Envelope, e events.Event, plain *events.Personal, sealed []byte) (*events.Personal, error) {
	if r.personal == nil {
		if sealed == nil {
			return plain, nil
		}
		return nil, fmt.Errorf("%w: %s of %s holds encrypted personal data and no key store is configured", ErrUnavailable, env.Type, env.Subject)
	}
	p, err := r.personal.Personal(ctx, env.Subject, e)
	if err != nil {
		return nil, fmt.Errorf("%w: read personal data of %s: %v", ErrUnavailable, env.Subject, err)
	}
	return &p, nil
}

// change is what a decision produces: events for one or more aggregates,
// appended atomically. The first event of each aggregate carries the
// expected sequence its decision was based on.
type change struct {
	meta    Meta
	pending []events.Pending
	states  map[key]state
}

func newChange(meta Meta) *change {
	return &change{meta: meta, states: map[key]state{}}
}

// record adds an event for aggregate k whose current state is st at seq and
// applies it to st at once, so later decisions in the same change see it.
func (c *change) record(k key, st state, seq uint64, data events.Event) {
	c.recordAs(k, st, seq, data, data)
}

// recordAs is record for an event whose stored form differs from what st
// applies: personal data is stored sealed and applied in the clear.
func (c *change) recordAs(k key, st state, seq uint64, stored, applied events.Event) {
	env := events.New(k.tenant, k.id, c.meta.Caller.Actor(), c.meta.RequestID, stored)
	p := events.Pending{Aggregate: k.aggregate, Envelope: env}
	if _, seen := c.states[k]; !seen {
		p.Expect, p.ExpectedSeq = true, seq
	}
	c.states[k] = st
	if c.meta.IdempotencyKey != "" {
		p.MsgID = msgID(c.meta, withoutSealed(env, stored), len(c.pending))
	}
	c.pending = append(c.pending, p)
	st.apply(env, applied)
}

// withoutSealed returns env as msgID should see it: sealed personal data
// takes a new nonce on every attempt, so it is left out, or a retry of a
// keyed request would not get the same message ids.
func withoutSealed(env events.Envelope, e events.Event) events.Envelope {
	switch x := e.(type) {
	case events.UserCreated:
		x.PersonalEnc = nil
		e = x
	case events.UserUpdated:
		x.PersonalEnc = nil
		e = x
	case events.InvitationCreated:
		x.PersonalEnc = nil
		e = x
	default:
		return env
	}
	env.Data = events.New(env.Tenant, env.Subject, env.Actor, "", e).Data
	return env
}

// note appends data to aggregate k unconditionally: for aggregates no
// decision reads (their events only accumulate), so there is no state to
// keep current and nothing to conflict with.
func (c *change) note(k key, data events.Event) {
	env := events.New(k.tenant, k.id, c.meta.Caller.Actor(), c.meta.RequestID, data)
	p := events.Pending{Aggregate: k.aggregate, Envelope: env}
	if c.meta.IdempotencyKey != "" {
		p.MsgID = msgID(c.meta, env, len(c.pending))
	}
	c.pending = append(c.pending, p)
}

// msgID is the JetStream message id of event i of a keyed request's
// change: a retry that decides the same events gets the same ids, and the
// stream drops the repeats. The event itself is part of it, so that the
// several commands of one request (a Kestra group created with members)
// do not share ids and drop each other's events.
func msgID(m Meta, env events.Envelope, i int) string {
	h := sha256.New()
	for _, s := range []string{m.Caller.Tenant, m.Caller.ID, m.IdempotencyKey, env.Tenant, env.Subject, env.Type} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(env.Data)
	return fmt.Sprintf("%s-%d", hex.EncodeToString(h.Sum(nil)[:16]), i)
}

// commit appends a change; on success the cache learns the new states.
func (r *repository) commit(ctx context.Context, c *change) (uint64, error) {
	if len(c.pending) == 0 {
		return 0, nil
	}
	res, err := r.store.Append(ctx, c.pending...)
	if errors.Is(err, events.ErrDuplicate) {
		res, err = events.Appended{Duplicate: true}, nil
	}
	if err != nil {
		for k := range c.states {
			r.forget(k)
		}
		return 0, err
	}
	if res.Duplicate {
		for k := range c.states {
			r.forget(k)
		}
		return res.Sequence, ErrDuplicate
	}
	// An atomic batch is stored contiguously, so each aggregate's last
	// sequence follows from the batch's last one.
	first := res.Sequence - uint64(len(c.pending)) + 1
	last := map[key]uint64{}
	for i, p := range c.pending {
		last[key{p.Envelope.Tenant, p.Aggregate, p.Envelope.Subject}] = first + uint64(i)
	}
	for k, st := range c.states {
		r.put(k, cached{st: st.clone(), seq: last[k]})
	}
	return res.Sequence, nil
}

// execute runs decide and commits its change, retrying a bounded number of
// times with freshly loaded state when the log reports a concurrent change
// or is briefly not ready. decide must be free of side effects other than
// recording events: it may run more than once.
//
// Commands on the same aggregate (lock) run one at a time in this process,
// so they never race each other into conflicts; the conditional append
// still guards against other processes. A zero lock key takes no lock.
func (r *repository) execute(ctx context.Context, meta Meta, lock key, decide func(c *change) error) (uint64, error) {
	if lock != (key{}) {
		mu := r.stripe(lock)
		mu.Lock()
		defer mu.Unlock()
	}
	var lastErr error
	for attempt := 0; attempt <= r.retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(time.Duration(attempt*attempt) * time.Millisecond):
			}
		}
		cachedSeq, fromCache := r.peek(lock)
		c := newChange(meta)
		err := decide(c)
		if fromCache && (err != nil || len(c.pending) == 0) && !errors.Is(err, ErrUnavailable) {
			// A decision that appends nothing (a refusal, nothing to change)
			// is checked by no conditional append: make sure the cached
			// aggregate was current, as another process may have changed it.
			stale, serr := r.stale(ctx, lock, cachedSeq)
			if serr != nil {
				return 0, serr
			}
			if stale {
				r.forget(lock)
				lastErr = events.ErrConflict
				continue
			}
		}
		if err != nil {
			return 0, err
		}
		seq, err := r.commit(ctx, c)
		switch {
		case err == nil, errors.Is(err, ErrDuplicate):
			return seq, err
		case errors.Is(err, events.ErrConflict), errors.Is(err, events.ErrNotReady):
			lastErr = err
			continue
		default:
			return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	if errors.Is(lastErr, events.ErrNotReady) {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, lastErr)
	}
	return 0, fmt.Errorf("%w: gave up after %d attempts: %v", ErrConcurrentChange, r.retries+1, lastErr)
}
