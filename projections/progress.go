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
	changed chan struct{}
}

// NewProgress returns an empty tracker.
func NewProgress() *Progress {
	return &Progress{seqs: map[string]uint64{}, changed: make(chan struct{})}
}

// Advance records that name has applied everything up to seq. Positions
// only move forward; an older seq is ignored.
func (p *Progress) Advance(name string, seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq <= p.seqs[name] {
		return
	}
	p.seqs[name] = seq
	close(p.changed)
	p.changed = make(chan struct{})
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
	for {
		p.mu.Lock()
		ready := true
		for _, n := range names {
			if p.seqs[n] < seq {
				ready = false
				break
			}
		}
		ch := p.changed
		p.mu.Unlock()
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}
