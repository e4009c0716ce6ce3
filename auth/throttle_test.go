package auth_test

import (
	"errors"
	"testing"
	"time"

	"github.com/keyhold/keyhold/auth"
)

func TestThrottle(t *testing.T) {
	p := auth.ThrottlePolicy{Free: 2, Window: time.Minute, Base: time.Second, Max: 4 * time.Second, Keys: 1000}
	t0 := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name string
		// failures at these offsets from t0, then Blocked asked at at.
		fails []time.Duration
		at    time.Duration
		want  time.Duration
	}{
		{"no failure", nil, 0, 0},
		{"free failures", []time.Duration{0, 0}, 0, 0},
		{"first past free", []time.Duration{0, 0, 0}, 0, time.Second},
		{"doubles", []time.Duration{0, 0, 0, 0}, 0, 2 * time.Second},
		{"capped at max", []time.Duration{0, 0, 0, 0, 0, 0, 0, 0}, 0, 4 * time.Second},
		{"delay runs out", []time.Duration{0, 0, 0}, time.Second, 0},
		{"half way", []time.Duration{0, 0, 0, 0}, time.Second, time.Second},
		{"window forgets", []time.Duration{0, 0, 2 * time.Minute}, 2 * time.Minute, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th, err := auth.NewThrottle(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range tt.fails {
				th.Failed("k", t0.Add(f))
			}
			if got := th.Blocked("k", t0.Add(tt.at)); got != tt.want {
				t.Fatalf("Blocked = %s, want %s", got, tt.want)
			}
			if got := th.Blocked("other", t0.Add(tt.at)); got != 0 {
				t.Fatalf("another key is blocked for %s", got)
			}
		})
	}
	t.Run("success forgets", func(t *testing.T) {
		th, _ := auth.NewThrottle(p)
		for range 5 {
			th.Failed("k", t0)
		}
		th.Succeeded("k")
		if got := th.Blocked("k", t0); got != 0 {
			t.Fatalf("Blocked after success = %s", got)
		}
	})
	t.Run("bounded keys", func(t *testing.T) {
		small := p
		small.Keys = 16 // one a shard
		th, _ := auth.NewThrottle(small)
		blocked := 0
		for i := range 1000 {
			k := string(rune('a'+i%26)) + time.Duration(i).String()
			for range 3 {
				th.Failed(k, t0)
			}
			if th.Blocked(k, t0) > 0 {
				blocked++
			}
		}
		if blocked > 16 || blocked == 0 {
			t.Fatalf("%d keys tracked, want between 1 and 16", blocked)
		}
	})
	t.Run("invalid policies", func(t *testing.T) {
		for _, bad := range []auth.ThrottlePolicy{
			{Free: -1, Window: time.Minute, Base: time.Second, Max: time.Second, Keys: 1},
			{Window: 0, Base: time.Second, Max: time.Second, Keys: 1},
			{Window: time.Minute, Base: 2 * time.Second, Max: time.Second, Keys: 1},
			{Window: time.Minute, Base: time.Second, Max: time.Second, Keys: 0},
		} {
			if _, err := auth.NewThrottle(bad); !errors.Is(err, auth.ErrInvalidThrottle) {
				t.Fatalf("NewThrottle(%+v) = %v, want ErrInvalidThrottle", bad, err)
			}
		}
	})
}
