package query_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyhold/keyhold/query"
)

// One key holds at most half the slots: a tenant flooding the gate is
// refused at once while another tenant still gets in.
func TestGateSharesSlotsAmongKeys(t *testing.T) {
	g := query.NewGate(4, 10*time.Millisecond)
	ctx := context.Background()
	var leaves []func()
	for range 2 {
		leave, err := g.Enter(ctx, "noisy")
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, leave)
	}
	if _, err := g.Enter(ctx, "noisy"); !errors.Is(err, query.ErrBusy) {
		t.Fatalf("third slot for one key: %v", err)
	}
	quiet, err := g.Enter(ctx, "quiet")
	if err != nil {
		t.Fatalf("another key is kept out: %v", err)
	}
	quiet()
	leaves[0]()
	again, err := g.Enter(ctx, "noisy")
	if err != nil {
		t.Fatalf("a slot given back is not taken again: %v", err)
	}
	again()
	leaves[1]()
}
