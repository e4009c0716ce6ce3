package query

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Gate bounds how many reads of one kind run at once, so that one client
// cannot take every connection to the event log, or every core, for
// itself. A Gate is safe for concurrent use.
type Gate struct {
	slots chan struct{}
	wait  time.Duration
	// perKey bounds the slots one key (a tenant) holds, so one tenant's
	// reads cannot keep every other tenant out.
	perKey int
	mu     sync.Mutex
	keys   map[string]*keySlots
}

// keySlots are one key's share of the slots, with how many callers use
// it (it is dropped when none does).
type keySlots struct {
	slots chan struct{}
	users int
}

// NewGate returns a gate letting at most n reads in at once (n >= 1), at
// most half of them (at least one) for one key; a read finding the gate,
// or its key's share, full waits up to wait for a slot.
func NewGate(n int, wait time.Duration) *Gate {
	n = max(n, 1)
	return &Gate{slots: make(chan struct{}, n), wait: wait, perKey: max(n/2, 1), keys: map[string]*keySlots{}}
}

// Enter takes a slot for key, waiting up to the gate's wait, and returns
// the function that gives it back (call it exactly once). It fails with
// ErrBusy when no slot came free in time, or with ctx's error.
func (g *Gate) Enter(ctx context.Context, key string) (leave func(), err error) {
	g.mu.Lock()
	ks := g.keys[key]
	if ks == nil {
		ks = &keySlots{slots: make(chan struct{}, g.perKey)}
		g.keys[key] = ks
	}
	ks.users++
	g.mu.Unlock()
	done := func() {
		g.mu.Lock()
		if ks.users--; ks.users == 0 {
			delete(g.keys, key)
		}
		g.mu.Unlock()
	}
	t := time.NewTimer(g.wait)
	defer t.Stop()
	if err := take(ctx, ks.slots, t.C, g.perKey); err != nil {
		done()
		return nil, err
	}
	if err := take(ctx, g.slots, t.C, cap(g.slots)); err != nil {
		<-ks.slots
		done()
		return nil, err
	}
	return func() { <-g.slots; <-ks.slots; done() }, nil
}

// take puts a token into slots, waiting until timeout fires or ctx ends.
func take(ctx context.Context, slots chan struct{}, timeout <-chan time.Time, n int) error {
	select {
	case slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case slots <- struct{}{}:
		return nil
	case <-timeout:
		return fmt.Errorf("%w: %d running", ErrBusy, n)
	case <-ctx.Done():
		return ctx.Err()
	}
}
