package main

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

func TestAuditTrail(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	o := h.bootstrap(t, "other")
	h.createSA(t, o.token, orgSA("other", "elsewhere"))

	r := h.do(t, http.MethodPost, saBase, a.token, tenantSA("s1", "viewer"))
	expectStatus(t, r, http.StatusCreated, "create s1")
	s1RequestID := r.Header.Get("X-Request-Id")
	var s1 sa
	r.decode(t, &s1)
	expectStatus(t, h.do(t, http.MethodPatch, saBase+"/"+s1.ID, a.token, map[string]any{"displayName": "s1b"}), http.StatusOK, "patch s1")
	s2 := h.createSA(t, a.token, tenantSA("s2"))
	h.createCredential(t, a.token, s2.ID, nil)
	expectStatus(t, h.do(t, http.MethodDelete, saBase+"/"+s1.ID, a.token, nil), http.StatusNoContent, "delete s1")
	ops, opsToken := h.principal(t, a.token, "ops", "tenant-admin", "viewer")
	s3 := h.createSA(t, opsToken, tenantSA("s3"))
	_, auditor := h.principal(t, a.token, "auditor", "auditor")
	_, viewer := h.principal(t, a.token, "viewer", "viewer")

	full := h.auditAll(t, a.token, "")
	typesOf := func(evs []events.Envelope) []string {
		out := make([]string, len(evs))
		for i, e := range evs {
			out[i] = e.Type
		}
		return out
	}
	t.Run("whole trail", func(t *testing.T) {
		if len(full) == 0 || full[0].Type != "iam.tenant.created" {
			t.Fatalf("trail starts with %v", typesOf(full[:min(1, len(full))]))
		}
		for i, e := range full {
			if e.Tenant != "acme" {
				t.Errorf("event %d of tenant %q", e.Sequence, e.Tenant)
			}
			if e.Aggregate == events.AggregateUnique {
				t.Errorf("uniqueness bookkeeping in the trail: %+v", e)
			}
			if e.ID == "" || e.Version < 1 || e.Time.IsZero() || e.Sequence == 0 || len(e.Data) == 0 {
				t.Errorf("incomplete envelope %+v", e)
			}
			if i > 0 && (e.Sequence <= full[i-1].Sequence || e.Time.Before(full[i-1].Time)) {
				t.Errorf("event %d (seq %d) is not after event %d (seq %d)", i, e.Sequence, i-1, full[i-1].Sequence)
			}
		}
		var forS1 []events.Envelope
		for _, e := range full {
			if e.Subject == s1.ID {
				forS1 = append(forS1, e)
			}
		}
		if got := typesOf(forS1); !slices.Equal(got, []string{"iam.service_account.created", "iam.service_account.updated", "iam.service_account.deleted"}) {
			t.Fatalf("s1's events %v", got)
		}
		if e := forS1[0]; e.Actor.ID != a.userID || e.Actor.Kind != "user" || e.RequestID != s1RequestID || e.Aggregate != "service_account" {
			t.Errorf("s1 created by %+v, request %q (httpResp had %q), aggregate %q", e.Actor, e.RequestID, s1RequestID, e.Aggregate)
		}
	})
	t.Run("limit 2 walk", func(t *testing.T) {
		var walked []events.Envelope
		cursor, pages := "", 0
		for {
			q := "?limit=2"
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			r := h.do(t, http.MethodGet, auditPath+q, a.token, nil)
			expectStatus(t, r, http.StatusOK, "audit page")
			var p pageJSON[events.Envelope]
			r.decode(t, &p)
			if len(p.Items) > 2 || len(p.Items) == 0 {
				t.Fatalf("page of %d events", len(p.Items))
			}
			pages++
			walked = append(walked, p.Items...)
			if p.NextCursor == nil {
				break
			}
			cursor = *p.NextCursor
			if pages > len(full) {
				t.Fatal("pagination does not end")
			}
		}
		if len(walked) != len(full) || pages != (len(full)+1)/2 {
			t.Fatalf("walked %d events in %d pages; the trail has %d", len(walked), pages, len(full))
		}
		for i := range full {
			if walked[i].ID != full[i].ID {
				t.Fatalf("event %d differs: %s vs %s", i, walked[i].ID, full[i].ID)
			}
		}
	})
	filter := func(pred func(events.Envelope) bool) []string {
		var out []string
		for _, e := range full {
			if pred(e) {
				out = append(out, e.ID)
			}
		}
		return out
	}
	idsOf := func(evs []events.Envelope) []string {
		out := make([]string, len(evs))
		for i, e := range evs {
			out[i] = e.ID
		}
		return out
	}
	var s2Created events.Envelope
	for _, e := range full {
		if e.Subject == s2.ID && e.Type == "iam.service_account.created" {
			s2Created = e
		}
	}
	at := s2Created.Time.Format(time.RFC3339Nano)
	for _, tc := range []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"type", url.Values{"type": {"iam.service_account.created"}}, filter(func(e events.Envelope) bool { return e.Type == "iam.service_account.created" })},
		{"aggregate", url.Values{"aggregate": {s1.ID}}, filter(func(e events.Envelope) bool { return e.Subject == s1.ID })},
		{"actor admin", url.Values{"actor": {a.userID}}, filter(func(e events.Envelope) bool { return e.Actor.ID == a.userID })},
		{"actor service account", url.Values{"actor": {ops.ID}}, filter(func(e events.Envelope) bool { return e.Actor.ID == ops.ID })},
		{"since", url.Values{"since": {at}}, filter(func(e events.Envelope) bool { return e.Sequence >= s2Created.Sequence })},
		{"until", url.Values{"until": {at}}, filter(func(e events.Envelope) bool { return e.Sequence <= s2Created.Sequence })},
		{"since and until", url.Values{"since": {at}, "until": {at}}, []string{s2Created.ID}},
		{"type and actor", url.Values{"type": {"iam.service_account.created"}, "actor": {ops.ID}}, filter(func(e events.Envelope) bool { return e.Subject == s3.ID })},
		{"since in the future", url.Values{"since": {time.Now().Add(time.Hour).Format(time.RFC3339)}}, nil},
		{"until before the tenant", url.Values{"until": {full[0].Time.Add(-time.Second).Format(time.RFC3339)}}, nil},
	} {
		t.Run("filter "+tc.name, func(t *testing.T) {
			got := idsOf(h.auditAll(t, a.token, tc.query.Encode()))
			if len(tc.want) == 0 && len(got) == 0 {
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %d events %v\nwant %d %v", len(got), got, len(tc.want), tc.want)
			}
			// The same with one event per page.
			q := tc.query
			q.Set("limit", "1")
			if got := idsOf(h.auditAll(t, a.token, q.Encode())); !slices.Equal(got, tc.want) {
				t.Fatalf("with limit 1: got %v, want %v", got, tc.want)
			}
		})
	}
	if n := len(filter(func(e events.Envelope) bool { return e.Actor.ID == ops.ID })); n != 1 {
		t.Errorf("ops caused %d events, want 1", n)
	}

	t.Run("who may read", func(t *testing.T) {
		got := h.auditAll(t, auditor, "")
		if len(got) < len(full) || got[len(full)-1].ID != full[len(full)-1].ID {
			t.Fatalf("auditor sees %d events, admin saw %d", len(got), len(full))
		}
		checkProblem(t, h.do(t, http.MethodGet, auditPath, viewer, nil), http.StatusForbidden)
		checkProblem(t, h.do(t, http.MethodGet, auditPath, opsToken+"x", nil), http.StatusUnauthorized)
		checkProblem(t, h.do(t, http.MethodGet, auditPath, "", nil), http.StatusUnauthorized)
		// Nothing crosses tenants: asking for another tenant's trail, or
		// the instance's, is refused, superadmins included; naming the
		// caller's own tenant is the default filter.
		for _, tc := range []struct{ token, tenant string }{{auditor, "other"}, {opsToken, "other"}, {opsToken, "_"}, {a.token, "other"}} {
			p := checkProblem(t, h.do(t, http.MethodGet, auditPath+"?tenant="+tc.tenant, tc.token, nil), http.StatusForbidden)
			if p["field"] != "tenant" {
				t.Errorf("tenant=%s: problem field %v", tc.tenant, p["field"])
			}
		}
		if got := h.auditAll(t, auditor, "tenant=acme"); len(got) != len(h.auditAll(t, auditor, "")) {
			t.Fatalf("tenant=acme gives %d events, the default %d", len(got), len(h.auditAll(t, auditor, "")))
		}
		// The tenant, its managed roles and its one account.
		got = h.auditAll(t, o.token, "")
		if len(got) != 2+len(authz.ManagedRoles("other")) {
			t.Fatalf("other tenant's trail: %v", typesOf(got))
		}
		for _, e := range got {
			if e.Tenant != "other" {
				t.Fatalf("other tenant's trail holds %s of tenant %s", e.Type, e.Tenant)
			}
		}
	})
	t.Run("bad parameters", func(t *testing.T) {
		for _, q := range []string{"foo=1", "limit=0", "limit=1001", "limit=x", "cursor=abc", "cursor=0", "since=yesterday", "until=2026-13-01T00:00:00Z",
			"aggregate=../x", "limit=1&limit=2", "since=-1h",
			"since=" + url.QueryEscape(time.Now().Format(time.RFC3339)) + "&until=" + url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339))} {
			checkProblem(t, h.do(t, http.MethodGet, auditPath+"?"+q, a.token, nil), http.StatusBadRequest)
		}
		for q, field := range map[string]string{"foo=1": "foo", "limit=0": "limit", "since=yesterday": "since", "until=2026-13-01T00:00:00Z": "until"} {
			if p := checkProblem(t, h.do(t, http.MethodGet, auditPath+"?"+q, a.token, nil), http.StatusBadRequest); p["field"] != field {
				t.Errorf("%s: problem field %v, want %q", q, p["field"], field)
			}
		}
	})
	t.Run("durations as the CLI takes them", func(t *testing.T) {
		recent := h.auditAll(t, a.token, "since=1h")
		if len(recent) != len(full) {
			t.Fatalf("since=1h gives %d events, want all %d of the last minutes", len(recent), len(full))
		}
		if got := h.auditAll(t, a.token, "until=1h"); len(got) != 0 {
			t.Fatalf("until=1h gives %d events, want none", len(got))
		}
	})
}
