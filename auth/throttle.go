package auth

import (
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// ErrInvalidThrottle means a ThrottlePolicy has a value out of range.
var ErrInvalidThrottle = errors.New("auth: invalid throttle policy")

// ThrottlePolicy says how failed authentications slow a key (a client id,
// an account, an address) down.
type ThrottlePolicy struct {
	// Free is how many failures within Window cost nothing.
	Free int
	// Window is how long failures are remembered: a key whose last
	// failure is older starts afresh.
	Window time.Duration
	// Base is the first delay once Free is used up; each further failure
	// doubles it, up to Max. Max bounds how long an attacker who keeps
	// failing can keep a legitimate holder of the key out.
	Base, Max time.Duration
	// Keys bounds the memory: at most this many keys are tracked; when
	// full, keys whose delay and window are over make room, and a new key
	// beyond that is not tracked until room is made.
	Keys int
}

func (p ThrottlePolicy) validate() error {
	switch {
	case p.Free < 0:
		return fmt.Errorf("%w: Free %d", ErrInvalidThrottle, p.Free)
	case p.Window <= 0 || p.Base <= 0 || p.Max < p.Base:
		return fmt.Errorf("%w: want Window, Base > 0 and Max >= Base", ErrInvalidThrottle)
	case p.Keys < 1:
		return fmt.Errorf("%w: Keys %d", ErrInvalidThrottle, p.Keys)
	}
	return nil
}

const throttleShards = 16

// Throttle delays keys that keep failing authentication: after Free
// failures within Window, each failure blocks the key for a delay that
// doubles up to Max. A success forgets the key. It is safe for concurrent
// use; memory is bounded by the policy's Keys.
type Throttle struct {
	policy ThrottlePolicy
	seed   maphash.Seed
	shards [throttleShards]throttleShard
}

type throttleShard struct {
	mu      sync.Mutex
	entries map[string]*throttleEntry
}

type throttleEntry struct {
	failures int
	last     time.Time
	until    time.Time
}

// NewThrottle returns a throttle with policy p.
func NewThrottle(p ThrottlePolicy) (*Throttle, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	t := &Throttle{policy: p, seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].entries = map[string]*throttleEntry{}
	}
	return t, nil
}

func (t *Throttle) shard(key string) *throttleShard {
	return &t.shards[maphash.String(t.seed, key)%throttleShards]
}

// Blocked returns how long key must still wait at now, or 0.
func (t *Throttle) Blocked(key string, now time.Time) time.Duration {
	s := t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok || !now.Before(e.until) {
		return 0
	}
	return e.until.Sub(now)
}

// Failed records a failure of key at now and returns the delay it now
// has (0 while failures are free).
func (t *Throttle) Failed(key string, now time.Time) time.Duration {
	s := t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok {
		if len(s.entries) >= t.perShard() {
			s.sweep(now, t.policy.Window)
			if len(s.entries) >= t.perShard() {
				return 0
			}
		}
		e = &throttleEntry{}
		s.entries[key] = e
	}
	if now.Sub(e.last) > t.policy.Window {
		e.failures = 0
	}
	e.failures++
	e.last = now
	over := e.failures - t.policy.Free
	if over <= 0 {
		return 0
	}
	d := t.policy.Base
	for i := 1; i < over && d < t.policy.Max; i++ {
		d *= 2
	}
	d = min(d, t.policy.Max)
	e.until = now.Add(d)
	return d
}

// Succeeded forgets key's failures.
func (t *Throttle) Succeeded(key string) {
	s := t.shard(key)
	s.mu.Lock()
	delete(s.entries, key)
	s.mu.Unlock()
}

func (t *Throttle) perShard() int { return max(1, t.policy.Keys/throttleShards) }

// sweep drops entries whose delay and window are over; the caller holds
// the lock.
func (s *throttleShard) sweep(now time.Time, window time.Duration) {
	for k, e := range s.entries {
		if !now.Before(e.until) && now.Sub(e.last) > window {
			delete(s.entries, k)
		}
	}
}
