package events

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Log is what followers of the event log need: events from a sequence on,
// and the sequence of the last one. *Store and *Fanout implement it.
type Log interface {
	Follow(ctx context.Context, f Filter, fn func(env Envelope, err error)) (stop func(), err error)
	LastSequence(ctx context.Context) (uint64, error)
}

// ErrFilteredFanout is returned by Fanout.Follow for a subject filter: a
// fan-out carries the whole log.
var ErrFilteredFanout = errors.New("events: a fan-out follows the whole log; subject filters are not supported")

// Fanout follows the whole log with one consumer and hands every event to
// each of its subscribers, so the followers in one process (the directory,
// the projectors) cost JetStream one delivery and one decode per event
// instead of one each. Subscribers are called one at a time, in stream
// order; a slow subscriber holds up the others. Safe for concurrent use.
type Fanout struct {
	store *Store

	mu   sync.Mutex
	last uint64 // last sequence delivered
	subs map[*subscriber]struct{}
}

type subscriber struct {
	fn   func(Envelope, error)
	from uint64
	// While a late subscriber reads its backlog, live events wait here,
	// up to maxPending; beyond that they are dropped (overflow) and read
	// back from the stream instead, so a slow catch-up under heavy writes
	// cannot hold the whole log in memory.
	pending  []pendingEvent
	overflow bool
	live     bool
}

// maxPending bounds the live events held for one late subscriber.
var maxPending = 10_000

type pendingEvent struct {
	env Envelope
	err error
}

// Fanout returns a fan-out of the log that reads nothing until Start.
func (s *Store) Fanout() *Fanout {
	return &Fanout{store: s, subs: map[*subscriber]struct{}{}}
}

// Start follows the log until ctx ends, from the earliest event any
// subscriber so far asked for (from the first event when none did), so
// that subscribers that all start late in the log (a directory loaded
// from a snapshot, projectors at their checkpoints) cost no read of the
// events before. Subscribers that come later read what they missed from
// the stream. Call Start once.
func (f *Fanout) Start(ctx context.Context) error {
	f.mu.Lock()
	from := uint64(0)
	for s := range f.subs {
		if from == 0 || s.from < from {
			from = s.from
		}
	}
	from = max(from, 1)
	f.last = from - 1
	f.mu.Unlock()
	if _, err := f.store.Follow(ctx, Filter{StartSeq: from}, f.deliver); err != nil {
		return err
	}
	return nil
}

func (f *Fanout) deliver(env Envelope, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = env.Sequence
	for s := range f.subs {
		switch {
		case !s.live && len(s.pending) < maxPending && !s.overflow:
			s.pending = append(s.pending, pendingEvent{env, err})
		case !s.live:
			s.overflow = true
		case env.Sequence >= s.from:
			s.fn(env, err)
		}
	}
}

// LastSequence implements Log.
func (f *Fanout) LastSequence(ctx context.Context) (uint64, error) { return f.store.LastSequence(ctx) }

// Follow implements Log: it delivers events from filt.StartSeq on, then
// each new one, to fn until ctx ends or stop is called. Before Start, the
// subscriber waits for the fan-out's own reading; events the fan-out
// delivered before the call are read back from the stream first, in the
// background, so Follow returns at once as Store.Follow does.
func (f *Fanout) Follow(ctx context.Context, filt Filter, fn func(Envelope, error)) (stop func(), err error) {
	if len(filt.Subjects) > 0 || filt.StartTime != nil {
		return nil, ErrFilteredFanout
	}
	from := max(filt.StartSeq, 1)
	s := &subscriber{fn: fn, from: from}
	f.mu.Lock()
	upto := f.last
	s.live = from > upto
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	stop = func() {
		f.mu.Lock()
		delete(f.subs, s)
		f.mu.Unlock()
	}
	if !s.live {
		go f.catchUp(ctx, s, upto)
	}
	go func() {
		<-ctx.Done()
		stop()
	}()
	return stop, nil
}

// catchUp reads a late subscriber's backlog up to upto, retrying after
// errors, then hands it the events that arrived meanwhile and makes it live.
func (f *Fanout) catchUp(ctx context.Context, s *subscriber, upto uint64) {
	read := s.from - 1
	for {
		read = f.readBacklog(ctx, s, read, upto)
		if ctx.Err() != nil {
			return
		}
		f.mu.Lock()
		if !s.overflow {
			break // with f.mu held: no event is delivered meanwhile
		}
		// Live events were dropped: read them from the stream too.
		s.pending, s.overflow, upto = nil, false, f.last
		f.mu.Unlock()
	}
	defer f.mu.Unlock()
	for _, p := range s.pending {
		if p.env.Sequence > read {
			s.fn(p.env, p.err)
		}
	}
	s.pending, s.live = nil, true
}

// readBacklog hands s the stream's events after read up to upto, retrying
// after errors until ctx ends, and returns the last sequence handed.
func (f *Fanout) readBacklog(ctx context.Context, s *subscriber, read, upto uint64) uint64 {
	for read < upto {
		err := f.store.Read(ctx, Filter{StartSeq: read + 1}, func(env Envelope) error {
			if env.Sequence > upto {
				return ErrStop
			}
			var err error
			if env.Type == TypeUndecodable {
				err = ErrUndecodable
			}
			s.fn(env, err)
			read = env.Sequence
			return nil
		})
		if err == nil && read < upto {
			break // the stream holds nothing more (a gap at its end)
		}
		if err != nil {
			select {
			case <-ctx.Done():
				return read
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return read
}
