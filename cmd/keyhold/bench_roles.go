package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/query"
)

// Sizes of the Kestra role search scenario (--roles roles in all).
const (
	benchRolesBatch   = 100 // events per atomic append while seeding
	benchRolesPage    = 10
	benchRolesPattern = "bench-role-%05d"
)

// kestraRolesSearch measures GET /api/v1/{tenant}/roles/search?size=10,
// a page of 10 roles from a tenant holding --roles of them, over HTTP
// against query.SearchRoles in process with the same page.
func (b *bench) kestraRolesSearch(ctx context.Context) (base, meas benchResult, rounds []float64, err error) {
	if err := b.fillRoles(ctx); err != nil {
		return base, meas, nil, err
	}
	q, admin, err := b.adminQueries()
	if err != nil {
		return base, meas, nil, err
	}
	direct := func(ctx context.Context, _, _ int) error {
		items, total, err := q.SearchRoles(ctx, admin, query.Search{Size: benchRolesPage})
		if err == nil && (len(items) != benchRolesPage || total < b.opts.roles) {
			err = fmt.Errorf("search returned %d of %d roles, want %d of at least %d", len(items), total, benchRolesPage, b.opts.roles)
		}
		return err
	}
	return b.readPair(ctx, "kestra_roles_search_query", "kestra_roles_search_http", direct,
		fmt.Sprintf("/api/v1/%s/roles/search?size=%d", b.tenant, benchRolesPage),
		fmt.Sprintf("a page of %d from %d roles", benchRolesPage, b.opts.roles))
}

// fillRoles appends --roles RoleCreated events to the bench tenant, in
// atomic batches of benchRolesBatch from --concurrency publishers (one
// append per role would take minutes), and waits for the read side. Each
// role is a new aggregate, so every event is conditional on an empty
// subject. The roles skip the name reservations the command would claim:
// their names are distinct by construction.
func (b *bench) fillRoles(ctx context.Context) error {
	store := b.env.e.store
	actor := b.actor()
	rules := []events.Rule{{Effect: events.EffectAllow, Actions: []string{"kestra.FLOW.read"}}}
	n := int64(b.opts.roles)
	batches := (n + benchRolesBatch - 1) / benchRolesBatch
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, b.opts.concurrency)
	start := time.Now()
	for range b.opts.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := next.Add(1) - 1; k < batches && ctx.Err() == nil; k = next.Add(1) - 1 {
				var batch []events.Pending
				for i := k * benchRolesBatch; i < min((k+1)*benchRolesBatch, n); i++ {
					e := events.RoleCreated{Name: fmt.Sprintf(benchRolesPattern, i), Description: "created by keyhold bench", Rules: rules}
					batch = append(batch, events.Pending{Aggregate: events.AggregateRole, Envelope: events.New(b.tenant, events.NewID(), actor, events.NewID(), e), Expect: true})
				}
				if _, err := store.Append(ctx, batch...); err != nil {
					errs <- fmt.Errorf("bench: seed roles: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	head, err := store.LastSequence(ctx)
	if err != nil {
		return err
	}
	if err := b.awaitProjections(ctx, head); err != nil {
		return err
	}
	fmt.Fprintf(b.stderr, "bench: %d roles appended and projected in %s\n", n, time.Since(start).Round(time.Millisecond))
	// Rows just added are beyond what autovacuum has looked at.
	var gen int
	db := b.env.e.db.SQL()
	if err := db.GetContext(ctx, &gen, `SELECT generation FROM projection_checkpoints WHERE name = 'iam'`); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, fmt.Sprintf(`ANALYZE iam_g%d.roles`, gen))
	return err
}
