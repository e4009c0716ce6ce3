package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/query"
)

// streamConsumers returns how many consumers the server's stream has.
func (h *harness) streamConsumers(t *testing.T) int {
	t.Helper()
	s, err := h.env.store.JetStream().Stream(context.Background(), h.env.store.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Consumers
}

// TestAuditUnderLoad hammers the audit API with every kind of filter, some
// clients hanging up mid-read, and checks that the trail still answers
// over HTTP and through the query layer, and that no reader left a
// JetStream consumer behind.
func TestAuditUnderLoad(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	s1 := h.createSA(t, a.token, tenantSA("s1"))
	expectStatus(t, h.do(t, http.MethodPatch, saBase+"/"+s1.ID, a.token, map[string]any{"displayName": "s1b"}), http.StatusOK, "patch s1")
	for _, n := range []string{"s2", "s3", "s4"} {
		h.createCredential(t, a.token, h.createSA(t, a.token, tenantSA(n)).ID, nil)
	}
	wantS1 := h.auditAll(t, a.token, "aggregate="+s1.ID)
	if len(wantS1) != 2 {
		t.Fatalf("s1's history before the load: %d events", len(wantS1))
	}
	baseline := h.streamConsumers(t)

	queries := []string{
		"aggregate=" + s1.ID,
		"",
		"type=iam.service_account.created",
		"actor=" + a.userID,
		"since=1h&limit=3",
		"aggregate=" + s1.ID + "&until=1h",
	}
	const clients, perClient = 12, 40
	var ok, busy, cancelled atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan string, clients*perClient)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perClient {
				ctx, cancel := context.WithCancel(context.Background())
				if c%3 == 0 {
					// Hang up at once, or a moment into the read.
					time.AfterFunc(time.Duration(i%4)*200*time.Microsecond, cancel)
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.ts.URL+auditPath+"?"+queries[(c+i)%len(queries)], nil)
				req.Header.Set("Authorization", "Bearer "+a.token)
				res, err := h.client.Do(req)
				if err != nil {
					cancel()
					if ctx.Err() != nil {
						cancelled.Add(1)
						continue
					}
					errs <- err.Error()
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				cancel()
				switch {
				case res.StatusCode == http.StatusOK:
					ok.Add(1)
				case res.StatusCode == http.StatusServiceUnavailable && res.Header.Get("Retry-After") != "":
					busy.Add(1)
				default:
					errs <- res.Status
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("audit read under load: %s", e)
	}
	t.Logf("%d answered, %d told to retry, %d hung up", ok.Load(), busy.Load(), cancelled.Load())
	if ok.Load() < clients*perClient/2 {
		t.Fatalf("only %d of %d reads answered", ok.Load(), clients*perClient)
	}

	if n := h.streamConsumers(t); n != baseline {
		t.Fatalf("%d consumers on the stream after the load, %d before", n, baseline)
	}
	if got := h.auditAll(t, a.token, "aggregate="+s1.ID); !slices.EqualFunc(got, wantS1, func(x, y events.Envelope) bool { return x.ID == y.ID }) {
		t.Fatalf("s1's history over HTTP after the load: %d events, want %d", len(got), len(wantS1))
	}
	evs, _, err := query.NewAudit(h.env.store, nil, nil).Events(context.Background(), auth.System(), query.AuditFilter{Tenant: "acme", Type: "iam.service_account.created", Limit: -1})
	if err != nil {
		t.Fatalf("audit through the query layer after the load: %v", err)
	}
	if len(evs) != 4 {
		t.Fatalf("%d service accounts created in the trail, want 4", len(evs))
	}
}

// TestAuditBusy checks the bound on concurrent audit reads: beyond it a
// read gets 503 with Retry-After, and once a slot is free it is answered.
func TestAuditBusy(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	path := auditPath + "?" + url.Values{"type": {"iam.tenant.created"}}.Encode()
	var leaves []func()
	for i := range auditReads {
		leave, err := h.srv.auditGate.Enter(context.Background(), fmt.Sprintf("tenant-%d", i))
		if err != nil {
			t.Fatalf("take a slot: %v", err)
		}
		leaves = append(leaves, leave)
	}
	r := h.do(t, http.MethodGet, path, a.token, nil)
	p := checkProblem(t, r, http.StatusServiceUnavailable)
	if ra := r.Header.Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After %q, want 1; body %v", ra, p)
	}
	leaves[0]()
	r = h.do(t, http.MethodGet, path, a.token, nil)
	expectStatus(t, r, http.StatusOK, "audit with a slot free")
	var page pageJSON[events.Envelope]
	r.decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].Type != "iam.tenant.created" {
		t.Fatalf("audit with a slot free: %s", r.Body)
	}
	for _, leave := range leaves[1:] {
		leave()
	}
}
