package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
)

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	withKey := func(t *testing.T, method, path, token, key string, body any) httpResp {
		t.Helper()
		return h.send(t, httpReq{method: method, path: path, token: token, body: body, header: map[string]string{"Idempotency-Key": key}})
	}
	replayed := func(t *testing.T, first, again httpResp) {
		t.Helper()
		if again.Status != first.Status || !bytes.Equal(again.Body, first.Body) {
			t.Fatalf("replay differs:\nfirst %s\nagain %s", first, again)
		}
		if first.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("first httpResp marked replayed")
		}
		if again.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay without Idempotent-Replayed: true")
		}
		for _, k := range []string{"Location", "Keyhold-Sequence", "Content-Type"} {
			if again.Header.Get(k) != first.Header.Get(k) {
				t.Errorf("%s %q on replay, %q first", k, again.Header.Get(k), first.Header.Get(k))
			}
		}
	}
	count := func(t *testing.T, query string) int {
		t.Helper()
		return len(h.auditAll(t, a.token, query))
	}

	var s sa
	t.Run("create twice", func(t *testing.T) {
		body := tenantSA("once", "viewer")
		first := withKey(t, http.MethodPost, saBase, a.token, "create-1", body)
		expectStatus(t, first, http.StatusCreated, "first")
		again := withKey(t, http.MethodPost, saBase, a.token, "create-1", body)
		replayed(t, first, again)
		first.decode(t, &s)
		if got := h.listSAs(t, a.token, ""); len(got) != 1 || got[0].ID != s.ID {
			t.Fatalf("list after a replayed create: %v", ids(got))
		}
		if n := count(t, "type=iam.service_account.created"); n != 1 {
			t.Fatalf("%d created events, want 1", n)
		}
	})
	t.Run("same key, other request", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, path string
			body               any
		}{
			{"other body", http.MethodPost, saBase, tenantSA("twice", "viewer")},
			{"same body with other spacing", http.MethodPost, saBase, `{"displayName":"once", "scope":"organization","scopeId":"acme","roles":["viewer"]}`},
			{"other path", http.MethodPost, saBase + "/" + s.ID + "/credentials", tenantSA("once", "viewer")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := checkProblem(t, withKey(t, tc.method, tc.path, a.token, "create-1", tc.body), http.StatusUnprocessableEntity)
				if p["field"] != "Idempotency-Key" {
					t.Errorf("field %v", p["field"])
				}
			})
		}
		if n := count(t, "type=iam.service_account.created"); n != 1 {
			t.Fatalf("%d created events, want 1", n)
		}
	})
	t.Run("keys are per caller", func(t *testing.T) {
		_, ops := h.principal(t, a.token, "ops", "tenant-admin", "viewer")
		r := withKey(t, http.MethodPost, saBase, ops, "create-1", tenantSA("once", "viewer"))
		expectStatus(t, r, http.StatusCreated, "other caller, same key")
		if r.Header.Get("Idempotent-Replayed") != "" {
			t.Fatal("another caller got a replay")
		}
	})
	t.Run("credential replay has no secret", func(t *testing.T) {
		path := saBase + "/" + s.ID + "/credentials"
		first := withKey(t, http.MethodPost, path, a.token, "cred-1", nil)
		expectStatus(t, first, http.StatusCreated, "first")
		var c1 credential
		first.decode(t, &c1)
		if c1.ClientSecret == nil || *c1.ClientSecret == "" {
			t.Fatalf("first httpResp without secret: %s", first.Body)
		}
		h.remember(*c1.ClientSecret, "client secret")
		again := withKey(t, http.MethodPost, path, a.token, "cred-1", nil)
		expectStatus(t, again, http.StatusCreated, "replay")
		if again.Header.Get("Idempotent-Replayed") != "true" || again.Header.Get("Location") != first.Header.Get("Location") {
			t.Errorf("replay headers %v", again.Header)
		}
		var raw map[string]json.RawMessage
		again.decode(t, &raw)
		if s, ok := raw["clientSecret"]; !ok || string(s) != "null" {
			t.Fatalf("replayed clientSecret %s, want null", s)
		}
		if bytes.Contains(again.Body, []byte(*c1.ClientSecret)) {
			t.Fatal("replay carries the secret")
		}
		var c2 credential
		again.decode(t, &c2)
		c1.ClientSecret = nil
		if c2 != c1 {
			t.Fatalf("replay %+v, first %+v", c2, c1)
		}
		var l credentialPage
		h.do(t, http.MethodGet, path, a.token, nil).decode(t, &l)
		if len(l.Credentials) != 1 {
			t.Fatalf("%d credentials, want 1", len(l.Credentials))
		}
		if n := count(t, "type=iam.service_account.credential_created"); n != 2 { // ops' and this one
			t.Fatalf("%d credential_created events, want 2", n)
		}
	})
	t.Run("patch and delete replay", func(t *testing.T) {
		p := saBase + "/" + s.ID
		first := withKey(t, http.MethodPatch, p, a.token, "patch-1", map[string]any{"displayName": "renamed"})
		expectStatus(t, first, http.StatusOK, "patch")
		expectStatus(t, h.do(t, http.MethodPatch, p, a.token, map[string]any{"displayName": "renamed again"}), http.StatusOK, "second patch")
		again := withKey(t, http.MethodPatch, p, a.token, "patch-1", map[string]any{"displayName": "renamed"})
		replayed(t, first, again)
		var got sa
		h.do(t, http.MethodGet, p, a.token, nil).decode(t, &got)
		if got.DisplayName != "renamed again" {
			t.Fatalf("a replay changed the account: %q", got.DisplayName)
		}
		del := withKey(t, http.MethodDelete, p, a.token, "delete-1", nil)
		expectStatus(t, del, http.StatusNoContent, "delete")
		replayed(t, del, withKey(t, http.MethodDelete, p, a.token, "delete-1", nil))
		if n := count(t, "type=iam.service_account.deleted"); n != 1 {
			t.Fatalf("%d deleted events, want 1", n)
		}
	})
}

func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	s := h.createSA(t, a.token, tenantSA("racy"))
	const n = 10

	run := func(t *testing.T, f func(i int) httpReq) []httpResp {
		t.Helper()
		out := make([]httpResp, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				out[i], errs[i] = h.try(f(i))
			}()
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		return out
	}

	t.Run("patches", func(t *testing.T) {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("name-%d", i)
		}
		res := run(t, func(i int) httpReq {
			return httpReq{method: http.MethodPatch, path: saBase + "/" + s.ID, token: a.token, body: map[string]any{"displayName": names[i]}}
		})
		ok := 0
		for i, r := range res {
			switch r.Status {
			case http.StatusOK:
				ok++
				var got sa
				r.decode(t, &got)
				if got.DisplayName != names[i] {
					t.Errorf("patch %d answered %q", i, got.DisplayName)
				}
			case http.StatusConflict:
				checkProblem(t, r, http.StatusConflict)
			default:
				t.Errorf("patch %d: %s", i, r)
			}
		}
		if ok == 0 {
			t.Fatal("no patch succeeded")
		}
		updates := h.auditAll(t, a.token, "type=iam.service_account.updated&aggregate="+s.ID)
		if len(updates) != ok {
			t.Fatalf("%d update events for %d successful patches", len(updates), ok)
		}
		var last struct {
			DisplayName string `json:"display_name"`
		}
		if err := json.Unmarshal(updates[len(updates)-1].Data, &last); err != nil {
			t.Fatal(err)
		}
		var got sa
		h.do(t, http.MethodGet, saBase+"/"+s.ID, a.token, nil).decode(t, &got)
		if !slices.Contains(names, got.DisplayName) || got.DisplayName != last.DisplayName {
			t.Fatalf("final displayName %q; last event says %q", got.DisplayName, last.DisplayName)
		}
		t.Logf("%d of %d concurrent patches succeeded", ok, n)
	})

	t.Run("credentials", func(t *testing.T) {
		path := saBase + "/" + s.ID + "/credentials"
		res := run(t, func(int) httpReq { return httpReq{method: http.MethodPost, path: path, token: a.token} })
		created, conflicts := 0, 0
		for i, r := range res {
			switch r.Status {
			case http.StatusCreated:
				created++
				var c credential
				r.decode(t, &c)
				h.remember(*c.ClientSecret, "client secret")
			case http.StatusConflict:
				conflicts++
				checkProblem(t, r, http.StatusConflict)
			default:
				t.Errorf("credential %d: %s", i, r)
			}
		}
		if created != 5 || conflicts != n-5 {
			t.Fatalf("%d created and %d refused, want 5 and %d", created, conflicts, n-5)
		}
		var l credentialPage
		h.do(t, http.MethodGet, path, a.token, nil).decode(t, &l)
		if len(l.Credentials) != 5 {
			t.Fatalf("%d credentials listed", len(l.Credentials))
		}
		if got := len(h.auditAll(t, a.token, "type=iam.service_account.credential_created")); got != 5 {
			t.Fatalf("%d credential_created events", got)
		}
	})
}

// A write that repeats Idempotency-Key is refused, as for the other
// headers whose readers could disagree on which one counts.
func TestRepeatedIdempotencyKeyIs400(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	body, _ := json.Marshal(tenantSA("twice"))
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+saBase, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("Idempotency-Key", "one")
	req.Header.Add("Idempotency-Key", "two")
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", res.StatusCode)
	}
	if got := h.listSAs(t, a.token, ""); len(got) != 0 {
		t.Fatalf("a refused write created %d accounts", len(got))
	}
}
