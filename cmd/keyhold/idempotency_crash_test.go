package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
)

// A keyed request whose events reached the log but whose process died
// before it answered leaves its idempotency row running, with its id seed.
// After a restart, once the row's lease ran out and the log has forgotten
// the message ids (the duplicate window is over), a retry of each key
// answers with what the first attempt created: the same ids, no second
// account or credential, the secret not shown again.
func TestIdempotencyAfterCrash(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	h1 := startServer(t, cfg)
	a := h1.bootstrap(t, "acme")
	ctx := context.Background()
	keyed := func(h *harness, method, path, key string, body any) httpResp {
		t.Helper()
		return h.send(t, httpReq{method: method, path: path, token: a.token, body: body, header: map[string]string{"Idempotency-Key": key}})
	}
	const n = 10
	first := make([]sa, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := keyed(h1, http.MethodPost, saBase, fmt.Sprintf("crash-%d", i), tenantSA(fmt.Sprintf("crash-%d", i)))
			expectStatus(t, r, http.StatusCreated, "first attempt")
			r.decode(t, &first[i])
		}()
	}
	wg.Wait()
	credPath := saBase + "/" + first[0].ID + "/credentials"
	c1 := keyed(h1, http.MethodPost, credPath, "crash-cred", nil)
	expectStatus(t, c1, http.StatusCreated, "first credential")
	var cred credential
	c1.decode(t, &cred)
	h1.remember(*cred.ClientSecret, "client secret")

	// What a kill -9 after the appends leaves: rows still running.
	_, err := h1.env.db.SQL().Exec(`UPDATE idempotency_keys SET completed_at = NULL, status = 0, body = NULL, headers = '{}'`)
	testenv.Must(t, err, "leave the rows running")
	h1.stop()
	h2 := startServer(t, cfg)
	for k, v := range h1.seen() {
		h2.remember(k, v)
	}

	// A short duplicate window (serve sets its own at start), so the
	// retries below come after it.
	js := h2.env.store.JetStream()
	stream, err := js.Stream(ctx, h2.env.store.StreamName())
	testenv.Must(t, err, "stream")
	sc := stream.CachedInfo().Config
	sc.Duplicates = time.Second
	_, err = js.UpdateStream(ctx, sc)
	testenv.Must(t, err, "shorten the duplicate window")

	// While the lease runs the first attempt may still be running.
	checkProblem(t, keyed(h2, http.MethodPost, saBase, "crash-0", tenantSA("crash-0")), http.StatusConflict)
	_, err = h2.env.db.SQL().Exec(`UPDATE idempotency_keys SET lease_until = now() - interval '1 second'`)
	testenv.Must(t, err, "let the leases run out")
	time.Sleep(1500 * time.Millisecond) // past the duplicate window

	for i := range n {
		r := keyed(h2, http.MethodPost, saBase, fmt.Sprintf("crash-%d", i), tenantSA(fmt.Sprintf("crash-%d", i)))
		expectStatus(t, r, http.StatusCreated, "retry after the crash")
		var got sa
		r.decode(t, &got)
		if got.ID != first[i].ID || r.Header.Get("Location") != saBase+"/"+first[i].ID || r.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("retry %d: id %s (first %s), headers %v", i, got.ID, first[i].ID, r.Header)
		}
		// The answer is recorded now: a further repeat replays it.
		again := keyed(h2, http.MethodPost, saBase, fmt.Sprintf("crash-%d", i), tenantSA(fmt.Sprintf("crash-%d", i)))
		if again.Status != http.StatusCreated || string(again.Body) != string(r.Body) {
			t.Fatalf("repeat %d: %s", i, again)
		}
	}
	if got := h2.listSAs(t, a.token, ""); len(got) != n {
		t.Fatalf("%d accounts after the retries, want %d", len(got), n)
	}
	if got := len(h2.auditAll(t, a.token, "type=iam.service_account.created")); got != n {
		t.Fatalf("%d created events, want %d", got, n)
	}

	r := keyed(h2, http.MethodPost, credPath, "crash-cred", nil)
	expectStatus(t, r, http.StatusCreated, "credential retry")
	var raw map[string]json.RawMessage
	r.decode(t, &raw)
	var again credential
	r.decode(t, &again)
	if again.ID != cred.ID || string(raw["clientSecret"]) != "null" || r.Header.Get("Location") != credPath+"/"+cred.ID {
		t.Fatalf("credential retry: %s", r)
	}
	if got := h2.do(t, http.MethodGet, credPath, a.token, nil); !json.Valid(got.Body) || countItems(t, got) != 1 {
		t.Fatalf("credentials after the retry: %s", got.Body)
	}
	h2.assertNoSecretsStored(t)
}

func countItems(t *testing.T, r httpResp) int {
	t.Helper()
	var page struct {
		Credentials []json.RawMessage `json:"credentials"`
	}
	r.decode(t, &page)
	return len(page.Credentials)
}
