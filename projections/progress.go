package projections

import (
	"context"
	"sync"
)

// Progress tracks how far each projection (Postgres projectors and
// in-memory read models alike) has applied the log, and lets callers wait
// for a sequence: the basis of read-your-writes. Safe for concurrent use.
type Progress struct {
	mu      sync.Mutex
	seqs    map[string]uint64
	waiters map[*waiter]struct{}
}

type waiter struct {
	seq   uint64
	names []string
	done  chan struct{}
}

// NewProgress returns an empty tracker.
func NewProgress() *Progress {
	return &Progress{seqs: map[string]uint64{}, waiters: map[*waiter]struct{}{}}
}

// Advance records that name has applied everything up to seq. Positions
// only move forward; an older seq is ignored. Only waiters whose wait is
// over are woken, so frequent advances do not stir every waiting request.
func (p *Progress) Advance(name string, seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq <= p.seqs[name] {
		return
	}
	p.seqs[name] = seq
	for w := range p.waiters {
		if p.reached(w.seq, w.names) {
			close(w.done)
			delete(p.waiters, w)
		}
	}
}

func (p *Progress) reached(seq uint64, names []string) bool {
	for _, n := range names {
		if p.seqs[n] < seq {
			return false
		}
	}
	return true
}

// Position returns how far name has applied the log.
func (p *Progress) Position(name string) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seqs[name]
}

// Wait blocks until every named projection reached seq, or ctx ends (then
// it returns ctx's error). Bound the wait with a context deadline.
func (p *Progress) Wait(ctx context.Context, seq uint64, names ...string) error {
	p.mu.Lock()
	if p.reached(seq, names) {
		p.mu.Unlock()
		return nil
	}
	w := &waiter{seq: seq, names: names, done: make(chan struct{})}
	p.waiters[w] = struct{}{}
	p.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		delete(p.waiters, w)
		p.mu.Unlock()
		return ctx.Err()
	}
}
