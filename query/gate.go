package query

import (
	"context"
	"fmt"
	"time"
)

// Gate bounds how many reads of one kind run at once, so that one client
// cannot take every connection to the event log, or every core, for
// itself. A Gate is safe for concurrent use.
type Gate struct {
	slots chan struct{}
	wait  time.Duration
}

// NewGate returns a gate letting at most n reads in at once (n >= 1); a
// read finding it full waits up to wait for a slot.
func NewGate(n int, wait time.Duration) *Gate {
	return &Gate{slots: make(chan struct{}, max(n, 1)), wait: wait}
}

// Enter takes a slot, waiting up to the gate's wait, and returns the
// function that gives it back (call it exactly once). It fails with
// ErrBusy when no slot came free in time, or with ctx's error.
func (g *Gate) Enter(ctx context.Context) (leave func(), err error) {
	leave = func() { <-g.slots }
	select {
	case g.slots <- struct{}{}:
		return leave, nil
	default:
	}
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return leave, nil
	case <-t.C:
		return nil, fmt.Errorf("%w: %d running", ErrBusy, cap(g.slots))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
