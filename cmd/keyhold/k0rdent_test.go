package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/auth"
)

// saFields are the draft's ServiceAccount properties, every one present.
var saFields = []string{"activeCredentialCount", "clientId", "createdAt", "createdBy", "description", "displayName", "id", "roles",
	"scope", "scopeId", "selfLink", "status", "uid", "updatedAt"}

// uidPattern is a UUID in its canonical notation.
var uidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func parseTime(t *testing.T, field, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("%s %q is not RFC 3339: %v", field, s, err)
	}
	return ts
}

func ids(items []sa) []string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = s.ID
	}
	return out
}

func sequenceOf(t *testing.T, r httpResp) uint64 {
	t.Helper()
	v := r.Header.Get("Keyhold-Sequence")
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		t.Fatalf("Keyhold-Sequence %q on a write (%s)", v, r)
	}
	if rb := r.Header.Get("Keyhold-Read-Behind"); rb != "" {
		t.Errorf("Keyhold-Read-Behind %q: the read side did not catch up", rb)
	}
	return n
}

func TestServiceAccountLifecycle(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")

	before := time.Now().Add(-time.Second)
	r := h.do(t, http.MethodPost, saBase, a.token, map[string]any{
		"displayName": "CI deployer", "description": "deploys the app",
		"scope": "project", "scopeId": "team.app",
		"roles": []string{"viewer", "tenant-admin", "viewer"},
	})
	expectStatus(t, r, http.StatusCreated, "create")
	sequenceOf(t, r)
	m := r.object(t)
	if got := keysOf(m); !slices.Equal(got, saFields) {
		t.Fatalf("fields %v, want exactly %v", got, saFields)
	}
	if strings.Contains(string(r.Body), "ecret") || strings.Contains(string(r.Body), "credential") {
		t.Errorf("create httpResp mentions credentials: %s", r.Body)
	}
	var created sa
	r.decode(t, &created)
	if loc := r.Header.Get("Location"); loc != saBase+"/"+created.ID {
		t.Errorf("Location %q, want %q", loc, saBase+"/"+created.ID)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	want := sa{SelfLink: saBase + "/" + created.ID, UID: created.UID, ID: created.ID, ClientID: "khc-" + created.ID,
		DisplayName: "CI deployer", Description: "deploys the app", Scope: "project", ScopeID: "team.app",
		Roles: []string{"tenant-admin", "viewer"}, Status: "active", CreatedBy: a.userID,
		CreatedAt: created.CreatedAt, UpdatedAt: created.CreatedAt}
	if !reflect.DeepEqual(created, want) {
		t.Fatalf("created\n got %+v\nwant %+v", created, want)
	}
	if len(created.ID) != 26 {
		t.Errorf("id %q is not 26 characters", created.ID)
	}
	if !uidPattern.MatchString(created.UID) {
		t.Errorf("uid %q is not a UUID", created.UID)
	}
	if ct := parseTime(t, "createdAt", created.CreatedAt); ct.Before(before) || ct.After(time.Now().Add(time.Second)) {
		t.Errorf("createdAt %s is not about now", ct)
	}

	get := func(t *testing.T) sa {
		t.Helper()
		r := h.do(t, http.MethodGet, saBase+"/"+created.ID, a.token, nil)
		expectStatus(t, r, http.StatusOK, "get")
		if got := keysOf(r.object(t)); !slices.Equal(got, saFields) {
			t.Fatalf("get fields %v", got)
		}
		var s sa
		r.decode(t, &s)
		return s
	}
	if got := get(t); !reflect.DeepEqual(got, created) {
		t.Fatalf("get\n got %+v\nwant %+v", got, created)
	}
	if got := h.listSAs(t, a.token, ""); len(got) != 1 || !reflect.DeepEqual(got[0], created) {
		t.Fatalf("list %+v, want [%+v]", got, created)
	}

	// Each PATCH changes only the fields it names.
	cur := created
	for _, tc := range []struct {
		name  string
		body  map[string]any
		apply func(*sa)
	}{
		{"displayName", map[string]any{"displayName": "Deployer"}, func(s *sa) { s.DisplayName = "Deployer" }},
		{"description", map[string]any{"description": "ships it"}, func(s *sa) { s.Description = "ships it" }},
		{"clear description", map[string]any{"description": ""}, func(s *sa) { s.Description = "" }},
		{"roles", map[string]any{"roles": []string{"auditor", "viewer"}}, func(s *sa) { s.Roles = []string{"auditor", "viewer"} }},
		{"no roles", map[string]any{"roles": []string{}}, func(s *sa) { s.Roles = []string{} }},
		{"status", map[string]any{"status": "disabled"}, func(s *sa) { s.Status = "disabled" }},
		{"everything", map[string]any{"displayName": "D2", "description": "d2", "roles": []string{"viewer"}, "status": "active"}, func(s *sa) {
			s.DisplayName, s.Description, s.Roles, s.Status = "D2", "d2", []string{"viewer"}, "active"
		}},
	} {
		t.Run("patch "+tc.name, func(t *testing.T) {
			r := h.do(t, http.MethodPatch, saBase+"/"+created.ID, a.token, tc.body)
			expectStatus(t, r, http.StatusOK, "patch")
			sequenceOf(t, r)
			var got sa
			r.decode(t, &got)
			want := cur
			tc.apply(&want)
			if parseTime(t, "updatedAt", got.UpdatedAt).Before(parseTime(t, "updatedAt", cur.UpdatedAt)) {
				t.Errorf("updatedAt went back: %s -> %s", cur.UpdatedAt, got.UpdatedAt)
			}
			want.UpdatedAt = got.UpdatedAt
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("patch httpResp\n got %+v\nwant %+v", got, want)
			}
			if g := get(t); !reflect.DeepEqual(g, want) {
				t.Fatalf("get after patch\n got %+v\nwant %+v", g, want)
			}
			cur = want
		})
	}
	t.Run("patch without change", func(t *testing.T) {
		r := h.do(t, http.MethodPatch, saBase+"/"+created.ID, a.token, map[string]any{"displayName": cur.DisplayName})
		expectStatus(t, r, http.StatusOK, "no-op patch")
		var got sa
		r.decode(t, &got)
		if !reflect.DeepEqual(got, cur) {
			t.Fatalf("no-op patch changed the account:\n got %+v\nwant %+v", got, cur)
		}
	})

	t.Run("delete", func(t *testing.T) {
		// Make it an administrator with a credential and a live token, so
		// the effect of the deletion on them is visible.
		expectStatus(t, h.do(t, http.MethodPatch, saBase+"/"+created.ID, a.token, map[string]any{"roles": []string{"tenant-admin"}}), http.StatusOK, "patch")
		ns := h.do(t, http.MethodPost, saBase, a.token, tenantSA("other"))
		expectStatus(t, ns, http.StatusCreated, "create other")
		c := h.createCredential(t, a.token, created.ID, nil)
		tok := h.accessToken(t, created.ClientID, *c.ClientSecret)
		// A namespace-scoped tenant-admin is authenticated but no tenant
		// administrator: 403 now, 401 once the account is gone.
		checkProblem(t, h.do(t, http.MethodGet, saBase, tok, nil), http.StatusForbidden)

		r := h.do(t, http.MethodDelete, saBase+"/"+created.ID, a.token, nil)
		expectStatus(t, r, http.StatusNoContent, "delete")
		sequenceOf(t, r)
		if len(r.Body) != 0 {
			t.Errorf("204 with a body: %q", r.Body)
		}
		checkProblem(t, h.do(t, http.MethodGet, saBase+"/"+created.ID, a.token, nil), http.StatusNotFound)
		checkProblem(t, h.do(t, http.MethodPatch, saBase+"/"+created.ID, a.token, map[string]any{"displayName": "x"}), http.StatusNotFound)
		checkProblem(t, h.do(t, http.MethodDelete, saBase+"/"+created.ID, a.token, nil), http.StatusNotFound)
		checkProblem(t, h.do(t, http.MethodGet, saBase+"/"+created.ID+"/credentials", a.token, nil), http.StatusNotFound)
		checkProblem(t, h.do(t, http.MethodGet, saBase+"/"+created.ID+"/credentials/"+c.ID, a.token, nil), http.StatusNotFound)
		checkProblem(t, h.do(t, http.MethodPost, saBase+"/"+created.ID+"/credentials", a.token, nil), http.StatusNotFound)
		for _, s := range h.listSAs(t, a.token, "") {
			if s.ID == created.ID {
				t.Fatal("deleted account still listed")
			}
		}
		// Its credentials and tokens stop working at once.
		g := h.grant(t, created.ClientID, *c.ClientSecret)
		if g.Status != http.StatusUnauthorized || !strings.Contains(string(g.Body), `"invalid_client"`) {
			t.Fatalf("token grant after delete: %s", g)
		}
		checkProblem(t, h.do(t, http.MethodGet, saBase, tok, nil), http.StatusUnauthorized)
		var n int
		if err := h.env.db.SQL().Get(&n, "SELECT count(*) FROM credentials WHERE service_account_id = $1", created.ID); err != nil || n != 0 {
			t.Fatalf("credentials rows of the deleted account: %d (%v)", n, err)
		}
	})
}

func TestServiceAccountList(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	mk := func(name, scope, scopeID, status string) sa {
		s := h.createSA(t, a.token, map[string]any{"displayName": name, "scope": scope, "scopeId": scopeID})
		if status == "disabled" {
			r := h.do(t, http.MethodPatch, saBase+"/"+s.ID, a.token, map[string]any{"status": status})
			expectStatus(t, r, http.StatusOK, "disable")
			r.decode(t, &s)
		}
		return s
	}
	all := []sa{
		mk("a", "organization", "acme", ""),
		mk("b", "folder", "team.app", "active"),
		mk("c", "folder", "team.app", "disabled"),
		mk("d", "project", "team.other", ""),
		mk("e", "organization", "acme", "disabled"),
		mk("f", "project", "team.app.sub", ""),
		mk("g", "project", "team.app", ""),
	}
	byName := map[string]string{}
	for _, s := range all {
		byName[s.DisplayName] = s.ID
	}
	full := h.listSAs(t, a.token, "?pageSize=500")
	if len(full) != len(all) {
		t.Fatalf("list has %d items, want %d", len(full), len(all))
	}
	if !slices.IsSorted(ids(full)) {
		t.Errorf("list is not in id order: %v", ids(full))
	}
	if !reflect.DeepEqual(full, all) {
		t.Errorf("list\n got %+v\nwant %+v", full, all)
	}

	walk := func(t *testing.T, query string, limit int) ([]string, int) {
		t.Helper()
		var got []string
		cursor, pages := "", 0
		for {
			q := fmt.Sprintf("?pageSize=%d%s", limit, query)
			if cursor != "" {
				q += "&pageToken=" + cursor
			}
			r := h.do(t, http.MethodGet, saBase+q, a.token, nil)
			expectStatus(t, r, http.StatusOK, "list "+q)
			var p saPage
			r.decode(t, &p)
			if len(p.ServiceAccounts) > limit {
				t.Fatalf("page of %d items with pageSize %d", len(p.ServiceAccounts), limit)
			}
			pages++
			got = append(got, ids(p.ServiceAccounts)...)
			if p.NextPageToken == nil {
				if strings.Contains(string(r.Body), "nextPageToken") {
					t.Fatalf("last page names a nextPageToken: %s", r.Body)
				}
				return got, pages
			}
			cursor = *p.NextPageToken
			if pages > 20 {
				t.Fatal("pagination does not end")
			}
		}
	}
	for _, limit := range []int{1, 2, 4, 7, 50} {
		t.Run(fmt.Sprintf("walk limit %d", limit), func(t *testing.T) {
			got, pages := walk(t, "", limit)
			if !slices.Equal(got, ids(full)) {
				t.Fatalf("walk %v, want %v", got, ids(full))
			}
			if want := (len(full) + limit - 1) / limit; pages != want {
				t.Errorf("%d pages, want %d", pages, want)
			}
		})
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"&scope=organization", []string{"a", "e"}},
		{"&scope=folder", []string{"b", "c"}},
		{"&scope=project", []string{"d", "f", "g"}},
		{"&scopeId=team.app", []string{"b", "c", "g"}},
		{"&scopeId=acme", []string{"a", "e"}},
		{"&status=disabled", []string{"c", "e"}},
		{"&status=active", []string{"a", "b", "d", "f", "g"}},
		{"&scope=folder&scopeId=team.app&status=active", []string{"b"}},
		{"&scope=project&scopeId=team.app", []string{"g"}},
		{"&scope=organization&scopeId=team.app", nil},
		{"&scopeId=nowhere", nil},
	} {
		t.Run("filter "+tc.query, func(t *testing.T) {
			var want []string
			for _, n := range tc.want {
				want = append(want, byName[n])
			}
			slices.Sort(want)
			got, _ := walk(t, tc.query, 1)
			if !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}

	t.Run("tenants are isolated", func(t *testing.T) {
		o := h.bootstrap(t, "other")
		if got := h.listSAs(t, o.token, ""); len(got) != 0 {
			t.Fatalf("other tenant lists %d accounts of acme", len(got))
		}
		checkProblem(t, h.do(t, http.MethodGet, saBase+"/"+all[0].ID, o.token, nil), http.StatusNotFound)
		checkProblem(t, h.do(t, http.MethodPatch, saBase+"/"+all[0].ID, o.token, map[string]any{"displayName": "x"}), http.StatusNotFound)
		checkProblem(t, h.do(t, http.MethodDelete, saBase+"/"+all[0].ID, o.token, nil), http.StatusNotFound)
		checkProblem(t, h.do(t, http.MethodPost, saBase+"/"+all[0].ID+"/credentials", o.token, nil), http.StatusNotFound)
		// A user may not pick a tenant it was never granted.
		r := h.send(t, httpReq{method: http.MethodGet, path: saBase, token: o.token, header: map[string]string{"Keyhold-Tenant": "acme"}})
		checkProblem(t, r, http.StatusUnauthorized)
		if len(h.listSAs(t, a.token, "")) != len(all) {
			t.Fatal("acme's accounts changed")
		}
	})
}

func TestCredentials(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	s := h.createSA(t, a.token, tenantSA("worker", "tenant-admin"))
	credPath := saBase + "/" + s.ID + "/credentials"
	// The draft's ServiceAccountCredential, without lastUsedAt and
	// lastUsedIp: Keyhold does not record a credential's use.
	credFields := []string{"createdAt", "createdBy", "expiresAt", "id", "selfLink", "serviceAccountId", "status", "uid"}
	newFields := append(slices.Clone(credFields), "clientSecret")
	slices.Sort(newFields)

	var creds []credential
	for _, tc := range []struct {
		name string
		body any
		want time.Duration // lifetime asked for; 0 for the default
	}{
		{"no body", nil, 0},
		{"empty object", map[string]any{}, 0},
		{"30 days", 30 * 24 * time.Hour, 30 * 24 * time.Hour},
		{"just under the maximum", 365*24*time.Hour - time.Hour, 365*24*time.Hour - time.Hour},
	} {
		t.Run("create "+tc.name, func(t *testing.T) {
			body := tc.body
			var asked time.Time
			if d, ok := body.(time.Duration); ok {
				asked = time.Now().Add(d).UTC().Truncate(time.Second)
				body = map[string]any{"expiresAt": asked.Format(time.RFC3339)}
			}
			now := time.Now()
			r := h.do(t, http.MethodPost, credPath, a.token, body)
			expectStatus(t, r, http.StatusCreated, "create credential")
			sequenceOf(t, r)
			if got := keysOf(r.object(t)); !slices.Equal(got, newFields) {
				t.Fatalf("fields %v, want %v", got, newFields)
			}
			var c credential
			r.decode(t, &c)
			h.remember(*c.ClientSecret, "client secret")
			if loc := r.Header.Get("Location"); loc != credPath+"/"+c.ID {
				t.Errorf("Location %q", loc)
			}
			if !strings.HasPrefix(*c.ClientSecret, "khcs_") || auth.CheckFormat(auth.PrefixClientSecret, *c.ClientSecret) != nil {
				t.Errorf("clientSecret %q is not a checksummed khcs_ secret", *c.ClientSecret)
			}
			if c.ServiceAccountID != s.ID || c.Status != "active" || c.CreatedBy != a.userID ||
				c.SelfLink != credPath+"/"+c.ID || !uidPattern.MatchString(c.UID) {
				t.Errorf("credential %+v", c)
			}
			exp := parseTime(t, "expiresAt", c.ExpiresAt)
			if tc.want == 0 {
				if d := exp.Sub(now.Add(90 * 24 * time.Hour)); d < -2*time.Second || d > 2*time.Second {
					t.Errorf("default expiresAt %s is %s off now+90d", exp, d)
				}
			} else if !exp.Equal(asked) {
				t.Errorf("expiresAt %s, asked for %s", exp, asked)
			}
			creds = append(creds, c)
		})
	}
	if t.Failed() {
		t.FailNow()
	}

	noSecrets := func(t *testing.T, r httpResp) {
		t.Helper()
		if strings.Contains(string(r.Body), "clientSecret") || strings.Contains(string(r.Body), "khcs_") {
			t.Fatalf("secret material in %s", r.Body)
		}
		for secret := range h.seen() {
			if strings.Contains(string(r.Body), secret) {
				t.Fatalf("a secret in %s", r.Body)
			}
		}
	}
	t.Run("list and get never show the secret", func(t *testing.T) {
		r := h.do(t, http.MethodGet, credPath, a.token, nil)
		expectStatus(t, r, http.StatusOK, "list credentials")
		noSecrets(t, r)
		var p struct {
			Credentials   []map[string]any `json:"credentials"`
			NextPageToken *string          `json:"nextPageToken"`
		}
		r.decode(t, &p)
		if len(p.Credentials) != len(creds) || p.NextPageToken != nil {
			t.Fatalf("list: %s", r.Body)
		}
		for i, it := range p.Credentials {
			if got := keysOf(it); !slices.Equal(got, credFields) {
				t.Errorf("list item fields %v, want %v", got, credFields)
			}
			if it["id"] != creds[i].ID || it["expiresAt"] != creds[i].ExpiresAt || it["createdAt"] != creds[i].CreatedAt ||
				it["createdBy"] != a.userID || it["uid"] != creds[i].UID || it["selfLink"] != creds[i].SelfLink {
				t.Errorf("item %d = %v, created %+v", i, it, creds[i])
			}
		}
		for _, c := range creds {
			r := h.do(t, http.MethodGet, credPath+"/"+c.ID, a.token, nil)
			expectStatus(t, r, http.StatusOK, "get credential")
			noSecrets(t, r)
			if got := keysOf(r.object(t)); !slices.Equal(got, credFields) {
				t.Errorf("get fields %v", got)
			}
		}
		// Pagination.
		r = h.do(t, http.MethodGet, credPath+"?pageSize=3", a.token, nil)
		expectStatus(t, r, http.StatusOK, "page 1")
		var p1 credentialPage
		r.decode(t, &p1)
		if len(p1.Credentials) != 3 || p1.NextPageToken == nil {
			t.Fatalf("page 1: %s", r.Body)
		}
		r = h.do(t, http.MethodGet, credPath+"?pageSize=3&pageToken="+*p1.NextPageToken, a.token, nil)
		expectStatus(t, r, http.StatusOK, "page 2")
		var p2 credentialPage
		r.decode(t, &p2)
		if len(p2.Credentials) != len(creds)-3 || p2.NextPageToken != nil || p2.Credentials[0].ID != creds[3].ID {
			t.Fatalf("page 2: %s", r.Body)
		}
		// Every credential is active, and the account counts them.
		for status, want := range map[string]int{"active": len(creds), "expired": 0} {
			var p credentialPage
			h.do(t, http.MethodGet, credPath+"?status="+status, a.token, nil).decode(t, &p)
			if len(p.Credentials) != want {
				t.Errorf("status=%s lists %d credentials, want %d", status, len(p.Credentials), want)
			}
		}
		var got sa
		h.do(t, http.MethodGet, saBase+"/"+s.ID, a.token, nil).decode(t, &got)
		if got.ActiveCredentialCount != len(creds) {
			t.Errorf("activeCredentialCount %d, want %d", got.ActiveCredentialCount, len(creds))
		}
		// A PATCH answers from the write side; it counts them too.
		r = h.do(t, http.MethodPatch, saBase+"/"+s.ID, a.token, map[string]any{"description": "counted"})
		expectStatus(t, r, http.StatusOK, "patch")
		r.decode(t, &got)
		if got.ActiveCredentialCount != len(creds) {
			t.Errorf("PATCH activeCredentialCount %d, want %d", got.ActiveCredentialCount, len(creds))
		}
	})

	t.Run("bad expiresAt", func(t *testing.T) {
		// A malformed date is 400; a date the tenant's policy refuses, 422.
		for _, tc := range []struct {
			name, body string
			status     int
		}{
			{"beyond the 365 day maximum", fmt.Sprintf(`{"expiresAt":%q}`, time.Now().Add(366*24*time.Hour).UTC().Format(time.RFC3339)), http.StatusUnprocessableEntity},
			{"one hour past the maximum", fmt.Sprintf(`{"expiresAt":%q}`, time.Now().Add(365*24*time.Hour+time.Hour).UTC().Format(time.RFC3339)), http.StatusUnprocessableEntity},
			{"in the past", fmt.Sprintf(`{"expiresAt":%q}`, time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)), http.StatusUnprocessableEntity},
			{"now", fmt.Sprintf(`{"expiresAt":%q}`, time.Now().UTC().Format(time.RFC3339)), http.StatusUnprocessableEntity},
			{"not a date", `{"expiresAt":"tomorrow"}`, http.StatusBadRequest},
			{"date without time", `{"expiresAt":"2030-01-01"}`, http.StatusBadRequest},
			{"not a string", `{"expiresAt":1893456000}`, http.StatusBadRequest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := checkProblem(t, h.do(t, http.MethodPost, credPath, a.token, tc.body), tc.status)
				if p["field"] != "expiresAt" && !strings.Contains(fmt.Sprint(p["detail"]), "expiresAt") {
					t.Errorf("problem does not name expiresAt: %v", p)
				}
			})
		}
	})

	t.Run("at most 5 active", func(t *testing.T) {
		c := h.createCredential(t, a.token, s.ID, nil)
		creds = append(creds, c)
		p := checkProblem(t, h.do(t, http.MethodPost, credPath, a.token, nil), http.StatusConflict)
		if !strings.Contains(fmt.Sprint(p["detail"]), "5") {
			t.Errorf("409 detail does not mention the limit: %v", p["detail"])
		}
		var l credentialPage
		h.do(t, http.MethodGet, credPath, a.token, nil).decode(t, &l)
		if len(l.Credentials) != 5 {
			t.Fatalf("%d credentials after the refused sixth", len(l.Credentials))
		}
	})

	t.Run("delete", func(t *testing.T) {
		victim, keep := creds[0], creds[1]
		tok := h.accessToken(t, s.ClientID, *victim.ClientSecret)
		expectStatus(t, h.do(t, http.MethodGet, saBase, tok, nil), http.StatusOK, "token works before")
		r := h.do(t, http.MethodDelete, credPath+"/"+victim.ID, a.token, nil)
		expectStatus(t, r, http.StatusNoContent, "delete credential")
		sequenceOf(t, r)
		g := h.grant(t, s.ClientID, *victim.ClientSecret)
		if g.Status != http.StatusUnauthorized || !strings.Contains(string(g.Body), `"error":"invalid_client"`) {
			t.Fatalf("grant with a deleted credential: %s", g)
		}
		checkProblem(t, h.do(t, http.MethodGet, saBase, tok, nil), http.StatusUnauthorized)
		checkProblem(t, h.do(t, http.MethodGet, credPath+"/"+victim.ID, a.token, nil), http.StatusNotFound)
		checkProblem(t, h.do(t, http.MethodDelete, credPath+"/"+victim.ID, a.token, nil), http.StatusNotFound)
		// The others keep working, and there is room for a new one.
		expectStatus(t, h.grant(t, s.ClientID, *keep.ClientSecret), http.StatusOK, "grant with a kept credential")
		h.createCredential(t, a.token, s.ID, nil)
	})

	t.Run("unknown ids", func(t *testing.T) {
		other := h.createSA(t, a.token, tenantSA("other"))
		ghost := strings.Repeat("0", 26)
		for _, tc := range []struct{ method, path string }{
			{http.MethodGet, saBase + "/" + ghost + "/credentials"},
			{http.MethodPost, saBase + "/" + ghost + "/credentials"},
			{http.MethodGet, saBase + "/" + ghost + "/credentials/" + creds[1].ID},
			{http.MethodDelete, saBase + "/" + ghost + "/credentials/" + creds[1].ID},
			{http.MethodGet, credPath + "/" + ghost},
			{http.MethodDelete, credPath + "/" + ghost},
			// A credential addressed through another service account.
			{http.MethodGet, saBase + "/" + other.ID + "/credentials/" + creds[1].ID},
			{http.MethodDelete, saBase + "/" + other.ID + "/credentials/" + creds[1].ID},
		} {
			checkProblem(t, h.do(t, tc.method, tc.path, a.token, nil), http.StatusNotFound)
		}
		expectStatus(t, h.do(t, http.MethodGet, credPath+"/"+creds[1].ID, a.token, nil), http.StatusOK, "credential survived")
	})
}

func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	var last uint64
	next := func(t *testing.T, r httpResp) {
		t.Helper()
		seq := sequenceOf(t, r)
		if seq <= last {
			t.Errorf("Keyhold-Sequence %d after %d", seq, last)
		}
		last = seq
	}
	for i := range 8 {
		name := fmt.Sprintf("sa-%d", i)
		r := h.do(t, http.MethodPost, saBase, a.token, tenantSA(name, "viewer"))
		expectStatus(t, r, http.StatusCreated, "create")
		next(t, r)
		var s sa
		r.decode(t, &s)
		if got := h.listSAs(t, a.token, "?pageSize=200"); len(got) != i+1 || !slices.Contains(ids(got), s.ID) {
			t.Fatalf("list right after create %s: %v", s.ID, ids(got))
		}
		r = h.do(t, http.MethodPatch, saBase+"/"+s.ID, a.token, map[string]any{"displayName": name + "-renamed"})
		expectStatus(t, r, http.StatusOK, "patch")
		next(t, r)
		var g sa
		h.do(t, http.MethodGet, saBase+"/"+s.ID, a.token, nil).decode(t, &g)
		if g.DisplayName != name+"-renamed" {
			t.Fatalf("get right after patch: %q", g.DisplayName)
		}
		r = h.do(t, http.MethodPost, saBase+"/"+s.ID+"/credentials", a.token, nil)
		expectStatus(t, r, http.StatusCreated, "credential")
		next(t, r)
		var c credential
		r.decode(t, &c)
		h.remember(*c.ClientSecret, "client secret")
		expectStatus(t, h.do(t, http.MethodGet, saBase+"/"+s.ID+"/credentials/"+c.ID, a.token, nil), http.StatusOK, "get credential right after create")
		// The directory is up to date too: the secret works at once.
		expectStatus(t, h.grant(t, s.ClientID, *c.ClientSecret), http.StatusOK, "grant right after create")
		r = h.do(t, http.MethodDelete, saBase+"/"+s.ID+"/credentials/"+c.ID, a.token, nil)
		expectStatus(t, r, http.StatusNoContent, "delete credential")
		next(t, r)
		var l credentialPage
		h.do(t, http.MethodGet, saBase+"/"+s.ID+"/credentials", a.token, nil).decode(t, &l)
		if len(l.Credentials) != 0 {
			t.Fatalf("credential listed right after delete")
		}
	}
	r := h.do(t, http.MethodPatch, settingsPath, a.token, map[string]any{"credentialDefaultLifetimeDays": 10})
	expectStatus(t, r, http.StatusOK, "settings")
	next(t, r)
	var st map[string]any
	h.do(t, http.MethodGet, settingsPath, a.token, nil).decode(t, &st)
	if st["credentialDefaultLifetimeDays"] != float64(10) {
		t.Fatalf("settings right after patch: %v", st)
	}
}

func TestNonAdminsSeeNothing(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	target := h.createSA(t, a.token, tenantSA("target", "viewer"))
	tc := h.createCredential(t, a.token, target.ID, nil)
	_, viewer := h.principal(t, a.token, "viewer", "viewer")
	// A tenant-admin of a namespace only is no tenant administrator.
	nsAdmin := h.createSA(t, a.token, map[string]any{"displayName": "ns-admin", "scope": "folder", "scopeId": "team", "roles": []string{"tenant-admin"}})
	nc := h.createCredential(t, a.token, nsAdmin.ID, nil)
	nsToken := h.accessToken(t, nsAdmin.ClientID, *nc.ClientSecret)

	before := h.listSAs(t, a.token, "?pageSize=200")
	events := len(h.auditAll(t, a.token, ""))
	ghost := strings.Repeat("z", 26)
	type call struct {
		name, method, path string
		body               any
		want               int
	}
	cases := []call{
		{"list", http.MethodGet, saBase, nil, http.StatusForbidden},
		{"create", http.MethodPost, saBase, tenantSA("mine", "viewer"), http.StatusForbidden},
		{"create without roles", http.MethodPost, saBase, tenantSA("mine"), http.StatusForbidden},
		{"get settings", http.MethodGet, settingsPath, nil, http.StatusNotFound},
		{"patch settings", http.MethodPatch, settingsPath, map[string]any{"scopeLevels": []string{"tenant"}}, http.StatusNotFound},
	}
	for _, id := range []string{target.ID, ghost} {
		which := "existing"
		if id == ghost {
			which = "unknown"
		}
		one, creds := saBase+"/"+id, saBase+"/"+id+"/credentials"
		cases = append(cases,
			call{"get " + which, http.MethodGet, one, nil, http.StatusNotFound},
			call{"patch " + which, http.MethodPatch, one, map[string]any{"displayName": "pwned"}, http.StatusNotFound},
			call{"patch roles " + which, http.MethodPatch, one, map[string]any{"roles": []string{"tenant-admin"}}, http.StatusNotFound},
			call{"delete " + which, http.MethodDelete, one, nil, http.StatusNotFound},
			call{"list credentials " + which, http.MethodGet, creds, nil, http.StatusNotFound},
			call{"create credential " + which, http.MethodPost, creds, nil, http.StatusNotFound},
			call{"get credential " + which, http.MethodGet, creds + "/" + tc.ID, nil, http.StatusNotFound},
			call{"delete credential " + which, http.MethodDelete, creds + "/" + tc.ID, nil, http.StatusNotFound},
		)
	}
	for _, who := range []struct{ name, token string }{{"viewer", viewer}, {"namespace admin", nsToken}} {
		for _, c := range cases {
			t.Run(who.name+" "+c.name, func(t *testing.T) {
				r := h.do(t, c.method, c.path, who.token, c.body)
				p := checkProblem(t, r, c.want)
				if c.want == http.StatusNotFound && strings.Contains(fmt.Sprint(p["detail"]), "administrator") {
					t.Errorf("404 detail hints at permissions: %v", p["detail"])
				}
			})
		}
	}
	t.Run("unauthenticated", func(t *testing.T) {
		for _, hdr := range []string{"", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not-a-token", "Bearer khpat_" + strings.Repeat("A", 49), "Bearer " + *tc.ClientSecret} {
			for _, p := range []string{saBase, saBase + "/" + target.ID, saBase + "/" + target.ID + "/credentials", settingsPath, auditPath} {
				r := h.send(t, httpReq{method: http.MethodGet, path: p, header: map[string]string{"Authorization": hdr}})
				checkProblem(t, r, http.StatusUnauthorized)
				// A refused Basic attempt is asked for Basic, anything else for Bearer first.
				want := "Bearer"
				if strings.HasPrefix(hdr, "Basic") {
					want = "Basic"
				}
				if w := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(w, want) {
					t.Errorf("%q on %s: WWW-Authenticate %q", hdr, p, w)
				}
			}
			r := h.send(t, httpReq{method: http.MethodPost, path: saBase, body: tenantSA("anon"), header: map[string]string{"Authorization": hdr}})
			checkProblem(t, r, http.StatusUnauthorized)
		}
	})
	if after := h.listSAs(t, a.token, "?pageSize=200"); !reflect.DeepEqual(after, before) {
		t.Errorf("non-admins changed service accounts:\n%+v\n%+v", before, after)
	}
	if n := len(h.auditAll(t, a.token, "")); n != events {
		t.Errorf("non-admins added %d events", n-events)
	}
	expectStatus(t, h.grant(t, target.ClientID, *tc.ClientSecret), http.StatusOK, "target's credential still works")
}

func TestScopeDown(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	// ops administers the tenant and holds viewer, but not flows, whose
	// rules tenant-admin does not hold.
	flows := h.role(t, "acme", "flows", "vault.secrets.*")
	ops, opsToken := h.principal(t, a.token, "ops", "tenant-admin", "viewer")
	audited := h.createSA(t, a.token, tenantSA("audited", flows, "viewer"))
	created := func() int { return len(h.auditAll(t, a.token, "type=iam.service_account.created")) }
	n := created()

	refused := func(t *testing.T, r httpResp, role string) {
		t.Helper()
		p := checkProblem(t, r, http.StatusUnprocessableEntity)
		if !strings.Contains(fmt.Sprint(p["detail"]), `"`+role+`"`) {
			t.Errorf("422 does not name role %q: %v", role, p["detail"])
		}
		if p["field"] != "roles" {
			t.Errorf("field %v, want roles", p["field"])
		}
	}
	var mine sa
	t.Run("create with held roles", func(t *testing.T) {
		mine = h.createSA(t, opsToken, tenantSA("mine", "viewer"))
		h.createSA(t, opsToken, tenantSA("deputy", "tenant-admin", "viewer"))
		h.createSA(t, opsToken, map[string]any{"displayName": "ns", "scope": "folder", "scopeId": "team.app", "roles": []string{"viewer"}})
		n += 3
	})
	t.Run("create with a role not held", func(t *testing.T) {
		refused(t, h.do(t, http.MethodPost, saBase, opsToken, tenantSA("x", flows)), flows)
		refused(t, h.do(t, http.MethodPost, saBase, opsToken, tenantSA("x", "viewer", flows)), flows)
		refused(t, h.do(t, http.MethodPost, saBase, opsToken, map[string]any{"displayName": "x", "scope": "folder", "scopeId": "team", "roles": []string{flows}}), flows)
	})
	t.Run("patch adding a role not held", func(t *testing.T) {
		refused(t, h.do(t, http.MethodPatch, saBase+"/"+mine.ID, opsToken, map[string]any{"roles": []string{"viewer", flows}}), flows)
		refused(t, h.do(t, http.MethodPatch, saBase+"/"+mine.ID, opsToken, map[string]any{"displayName": "renamed", "roles": []string{flows}}), flows)
		var got sa
		h.do(t, http.MethodGet, saBase+"/"+mine.ID, a.token, nil).decode(t, &got)
		if !slices.Equal(got.Roles, []string{"viewer"}) || got.DisplayName != "mine" {
			t.Fatalf("refused patch changed the account: %+v", got)
		}
	})
	t.Run("patch keeping or removing a role not held", func(t *testing.T) {
		// Renaming an account that holds flows adds no role: allowed.
		r := h.do(t, http.MethodPatch, saBase+"/"+audited.ID, opsToken, map[string]any{"displayName": "audited-2", "roles": []string{flows, "viewer"}})
		expectStatus(t, r, http.StatusOK, "patch keeping flows")
		r = h.do(t, http.MethodPatch, saBase+"/"+audited.ID, opsToken, map[string]any{"roles": []string{"viewer"}})
		expectStatus(t, r, http.StatusOK, "patch removing flows")
		var got sa
		r.decode(t, &got)
		if !slices.Equal(got.Roles, []string{"viewer"}) {
			t.Fatalf("roles %v", got.Roles)
		}
		// Putting it back is adding it: refused.
		refused(t, h.do(t, http.MethodPatch, saBase+"/"+audited.ID, opsToken, map[string]any{"roles": []string{"viewer", flows}}), flows)
		// The administrator holding every role may.
		expectStatus(t, h.do(t, http.MethodPatch, saBase+"/"+audited.ID, a.token, map[string]any{"roles": []string{flows, "viewer"}}), http.StatusOK, "admin adds flows")
	})
	t.Run("token narrowed by scope", func(t *testing.T) {
		expectStatus(t, h.do(t, http.MethodPatch, saBase+"/"+ops.ID, a.token, map[string]any{"roles": []string{flows, "tenant-admin", "viewer"}}), http.StatusOK, "grant ops flows")
		c := h.createCredential(t, a.token, ops.ID, nil)
		narrow := h.accessToken(t, ops.ClientID, *c.ClientSecret, "tenant-admin")
		refused(t, h.do(t, http.MethodPost, saBase, narrow, tenantSA("x", flows)), flows)
		h.createSA(t, narrow, tenantSA("plain"))
		n++
	})
	if got := created(); got != n {
		t.Errorf("%d service accounts created, want %d: a refused request wrote", got, n)
	}
}

// TestActingForNeedsEveryRole: a credential carries its account's roles, so
// creating one needs every role the account holds, as assigning them does.
func TestActingForNeedsEveryRole(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	flows := h.role(t, "acme", "flows", "vault.secrets.*")
	ops, opsToken := h.principal(t, a.token, "ops", "tenant-admin")
	audited := h.createSA(t, a.token, tenantSA("audited", "auditor", flows))
	nsAudited := h.createSA(t, a.token, map[string]any{"displayName": "ns", "scope": "folder", "scopeId": "team.app", "roles": []string{flows, "viewer"}})
	credentials := func() int { return len(h.auditAll(t, a.token, "type=iam.service_account.credential_created")) }
	n := credentials()

	refused := func(t *testing.T, token string, target sa, role string) {
		t.Helper()
		p := checkProblem(t, h.do(t, http.MethodPost, saBase+"/"+target.ID+"/credentials", token, nil), http.StatusForbidden)
		if d := fmt.Sprint(p["detail"]); !strings.Contains(d, `"`+role+`"`) || !strings.Contains(d, target.ID) {
			t.Errorf("403 does not name the account and role %q: %v", role, d)
		}
	}
	t.Run("tenant-admin only", func(t *testing.T) {
		refused(t, opsToken, audited, flows)
		refused(t, opsToken, nsAudited, flows)
		var page credentialPage
		r := h.do(t, http.MethodGet, saBase+"/"+audited.ID+"/credentials", a.token, nil)
		expectStatus(t, r, http.StatusOK, "list credentials")
		r.decode(t, &page)
		if len(page.Credentials) != 0 {
			t.Fatalf("refused request created a credential: %s", r.Body)
		}
		// Accounts holding only roles ops holds are its to act for.
		h.createCredential(t, opsToken, h.createSA(t, a.token, tenantSA("plain")).ID, nil)
		h.createCredential(t, opsToken, h.createSA(t, a.token, tenantSA("deputy", "tenant-admin")).ID, nil)
		n += 2
	})
	t.Run("holding the roles", func(t *testing.T) {
		expectStatus(t, h.do(t, http.MethodPatch, saBase+"/"+ops.ID, a.token, map[string]any{"roles": []string{"auditor", flows, "tenant-admin", "viewer"}}), http.StatusOK, "grant ops the roles")
		c := h.createCredential(t, a.token, ops.ID, nil)
		full := h.accessToken(t, ops.ClientID, *c.ClientSecret)
		cred := h.createCredential(t, full, audited.ID, nil)
		h.createCredential(t, full, nsAudited.ID, nil)
		n += 3
		tok := h.accessToken(t, audited.ClientID, *cred.ClientSecret)
		expectStatus(t, h.do(t, http.MethodGet, auditPath, tok, nil), http.StatusOK, "audited's token reads the audit trail")

		// A token narrowed to tenant-admin does not carry flows either,
		// not even for the account's own credentials.
		narrow := h.accessToken(t, ops.ClientID, *c.ClientSecret, "tenant-admin")
		refused(t, narrow, audited, flows)
		refused(t, narrow, ops, flows)
	})
	if got := credentials(); got != n {
		t.Errorf("%d credentials created, want %d: a refused request wrote", got, n)
	}
}

func TestTenantPolicy(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	settings := func(t *testing.T) map[string]any {
		t.Helper()
		r := h.do(t, http.MethodGet, settingsPath, a.token, nil)
		expectStatus(t, r, http.StatusOK, "settings")
		return r.object(t)
	}
	want := map[string]any{"credentialDefaultLifetimeDays": float64(90), "credentialMaxLifetimeDays": float64(365), "scopeLevels": []any{"namespace", "tenant"}}
	got := settings(t)
	if l, ok := got["scopeLevels"].([]any); ok {
		slices.SortFunc(l, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("default settings %v, want %v", got, want)
	}
	ns := map[string]any{"displayName": "ns", "scope": "folder", "scopeId": "team.app"}

	t.Run("scope levels", func(t *testing.T) {
		r := h.do(t, http.MethodPatch, settingsPath, a.token, map[string]any{"scopeLevels": []string{"tenant"}})
		expectStatus(t, r, http.StatusOK, "restrict scope levels")
		sequenceOf(t, r)
		if got := r.object(t); !reflect.DeepEqual(got["scopeLevels"], []any{"tenant"}) || got["credentialMaxLifetimeDays"] != float64(365) {
			t.Fatalf("patch httpResp %v", got)
		}
		p := checkProblem(t, h.do(t, http.MethodPost, saBase, a.token, ns), http.StatusUnprocessableEntity)
		if p["field"] != "scope" || !strings.Contains(fmt.Sprint(p["detail"]), "policy") {
			t.Errorf("problem %v", p)
		}
		h.createSA(t, a.token, tenantSA("tenant-level"))
		expectStatus(t, h.do(t, http.MethodPatch, settingsPath, a.token, map[string]any{"scopeLevels": []string{"namespace", "tenant", "tenant"}}), http.StatusOK, "allow both")
		h.createSA(t, a.token, ns)
	})

	t.Run("credential lifetimes", func(t *testing.T) {
		s := h.createSA(t, a.token, tenantSA("creds"))
		r := h.do(t, http.MethodPatch, settingsPath, a.token, map[string]any{"credentialMaxLifetimeDays": 30, "credentialDefaultLifetimeDays": 7})
		expectStatus(t, r, http.StatusOK, "lower lifetimes")
		if got := r.object(t); got["credentialMaxLifetimeDays"] != float64(30) || got["credentialDefaultLifetimeDays"] != float64(7) {
			t.Fatalf("patch httpResp %v", got)
		}
		path := saBase + "/" + s.ID + "/credentials"
		at := func(d time.Duration) string {
			return fmt.Sprintf(`{"expiresAt":%q}`, time.Now().Add(d).UTC().Format(time.RFC3339))
		}
		p := checkProblem(t, h.do(t, http.MethodPost, path, a.token, at(31*24*time.Hour)), http.StatusUnprocessableEntity)
		if !strings.Contains(fmt.Sprint(p["detail"]), "30 days") {
			t.Errorf("detail does not give the maximum: %v", p["detail"])
		}
		checkProblem(t, h.do(t, http.MethodPost, path, a.token, at(200*24*time.Hour)), http.StatusUnprocessableEntity)
		h.createCredential(t, a.token, s.ID, at(29*24*time.Hour))
		now := time.Now()
		c := h.createCredential(t, a.token, s.ID, nil)
		if d := parseTime(t, "expiresAt", c.ExpiresAt).Sub(now.Add(7 * 24 * time.Hour)); d < -2*time.Second || d > 2*time.Second {
			t.Errorf("default expiry %s is %s off now+7d", c.ExpiresAt, d)
		}
	})

	t.Run("bad settings change nothing", func(t *testing.T) {
		before := settings(t)
		for _, tc := range []struct{ body, field, detail string }{
			{`{"credentialDefaultLifetimeDays":40}`, "credentialDefaultLifetimeDays", "30 days"},
			{`{"credentialMaxLifetimeDays":5}`, "credentialDefaultLifetimeDays", "5 days"},
			{`{"credentialMaxLifetimeDays":0}`, "credentialMaxLifetimeDays", "between 1 and 3650 days"},
			{`{"credentialMaxLifetimeDays":4000}`, "credentialMaxLifetimeDays", "between 1 and 3650 days"},
			// Days that would overflow when counted in seconds.
			{`{"credentialDefaultLifetimeDays":213503982334602,"credentialMaxLifetimeDays":213503982334602}`, "credentialDefaultLifetimeDays", "between 1 and 3650 days"},
			{`{"credentialMaxLifetimeDays":"30"}`, "", ""},
			{`{"scopeLevels":[]}`, "scopeLevels", ""},
			{`{"scopeLevels":["global"]}`, "scopeLevels", ""},
			{`{"scopeLevels":"tenant"}`, "", ""},
			{`{"maxCredentials":3}`, "", ""},
			{`{`, "", ""},
		} {
			p := checkProblem(t, h.do(t, http.MethodPatch, settingsPath, a.token, tc.body), http.StatusBadRequest)
			if tc.field != "" && p["field"] != tc.field {
				t.Errorf("%s: field %v, want %q", tc.body, p["field"], tc.field)
			}
			if d, _ := p["detail"].(string); !strings.Contains(d, tc.detail) {
				t.Errorf("%s: detail %q, want it to mention %q", tc.body, d, tc.detail)
			}
		}
		if after := settings(t); !reflect.DeepEqual(after, before) {
			t.Fatalf("settings changed: %v -> %v", before, after)
		}
	})
}

func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	s := h.createSA(t, a.token, tenantSA("existing", "viewer"))
	c := h.createCredential(t, a.token, s.ID, nil)
	snapshot := func(t *testing.T) string {
		t.Helper()
		var b strings.Builder
		for _, p := range []string{saBase + "?pageSize=200", saBase + "/" + s.ID + "/credentials", settingsPath} {
			r := h.do(t, http.MethodGet, p, a.token, nil)
			expectStatus(t, r, http.StatusOK, p)
			b.Write(r.Body)
		}
		return b.String()
	}
	before := snapshot(t)
	events := len(h.auditAll(t, a.token, ""))

	valid := `{"displayName":"new","scope":"organization","scopeId":"acme","roles":["viewer"]}`
	big := `{"displayName":"big","scope":"organization","scopeId":"acme","description":"` + strings.Repeat("x", 70<<10) + `"}`
	roles33 := `["` + strings.TrimSuffix(strings.Repeat(`viewer","`, 33), `","`) + `"]`
	id27 := s.ID + "0"
	upper := strings.ToUpper(s.ID)
	cred := saBase + "/" + s.ID + "/credentials"
	type tc struct {
		name, method, path, body string
		header                   map[string]string
		field                    string // expected problem field, if any
		detail                   string // expected in the problem detail, if any
		status                   int    // expected status; 0 means 400
	}
	cases := []tc{
		// Bodies of POST /service-accounts.
		{name: "invalid JSON", method: "POST", path: saBase, body: `{"displayName":`},
		{name: "not JSON", method: "POST", path: saBase, body: `displayName=x`},
		{name: "empty body", method: "POST", path: saBase, body: ``},
		{name: "array", method: "POST", path: saBase, body: `[` + valid + `]`},
		{name: "two objects", method: "POST", path: saBase, body: valid + valid},
		{name: "trailing garbage", method: "POST", path: saBase, body: valid + `x`},
		{name: "unknown field clientId", method: "POST", path: saBase, body: `{"displayName":"x","scope":"organization","scopeId":"acme","clientId":"khc-mine"}`, detail: `unknown field "clientId"`},
		{name: "id upper case", method: "POST", path: saBase, body: `{"id":"Sa-mine","displayName":"x","scope":"organization","scopeId":"acme"}`, field: "id", detail: "lowercase"},
		{name: "id empty", method: "POST", path: saBase, body: `{"id":"","displayName":"x","scope":"organization","scopeId":"acme"}`, field: "id"},
		{name: "id ends with a dash", method: "POST", path: saBase, body: `{"id":"sa-","displayName":"x","scope":"organization","scopeId":"acme"}`, field: "id"},
		{name: "id starts with a digit", method: "POST", path: saBase, body: `{"id":"1sa","displayName":"x","scope":"organization","scopeId":"acme"}`, field: "id"},
		{name: "id of 64", method: "POST", path: saBase, body: `{"id":"` + strings.Repeat("a", 64) + `","displayName":"x","scope":"organization","scopeId":"acme"}`, field: "id", detail: "63"},
		{name: "id with underscore", method: "POST", path: saBase, body: `{"id":"sa_mine","displayName":"x","scope":"organization","scopeId":"acme"}`, field: "id"},
		{name: "id a number", method: "POST", path: saBase, body: `{"id":5,"displayName":"x","scope":"organization","scopeId":"acme"}`, detail: `"id" must be a string`},
		{name: "status on create", method: "POST", path: saBase, body: `{"displayName":"x","scope":"organization","scopeId":"acme","status":"disabled"}`, detail: `unknown field "status"`},
		{name: "unknown field clientSecret", method: "POST", path: saBase, body: `{"displayName":"x","scope":"organization","scopeId":"acme","clientSecret":"khcs_x"}`},
		{name: "scope an object", method: "POST", path: saBase, body: `{"displayName":"x","scope":{"level":"tenant"},"scopeId":"acme"}`, field: "scope"},
		{name: "roles not an array", method: "POST", path: saBase, body: `{"displayName":"x","scope":"organization","scopeId":"acme","roles":"x"}`, detail: `"roles" must be an array`},
		{name: "roles of numbers", method: "POST", path: saBase, body: `{"displayName":"x","scope":"organization","scopeId":"acme","roles":[1]}`},
		{name: "displayName a number", method: "POST", path: saBase, body: `{"displayName":5,"scope":"organization","scopeId":"acme"}`, detail: `"displayName" must be a string`},
		{name: "Keyhold's level name", method: "POST", path: saBase, body: `{"displayName":"x","scope":"tenant","scopeId":"acme"}`, field: "scope"},
		{name: "displayName of 256", method: "POST", path: saBase, body: `{"displayName":"` + strings.Repeat("é", 256) + `","scope":"organization","scopeId":"acme"}`, field: "displayName", detail: "255"},
		{name: "description of 1025", method: "POST", path: saBase, body: `{"displayName":"x","description":"` + strings.Repeat("d", 1025) + `","scope":"organization","scopeId":"acme"}`, field: "description", detail: "1024"},
		{name: "oversized body", method: "POST", path: saBase, body: big, detail: "larger than 65536 bytes", status: http.StatusRequestEntityTooLarge},
		{name: "unknown role", method: "POST", path: saBase, body: `{"displayName":"x","scope":"organization","scopeId":"acme","roles":["root"]}`, field: "roles", detail: `"root"`, status: http.StatusUnprocessableEntity},
		{name: "superadmin is no tenant role", method: "POST", path: saBase, body: `{"displayName":"x","scope":"organization","scopeId":"acme","roles":["superadmin"]}`, field: "roles", status: http.StatusUnprocessableEntity},
		{name: "33 roles", method: "POST", path: saBase, body: `{"displayName":"x","scope":"organization","scopeId":"acme","roles":` + roles33 + `}`, field: "roles"},
		{name: "missing scope", method: "POST", path: saBase, body: `{"displayName":"x","roles":["viewer"]}`, field: "scope"},
		{name: "null body", method: "POST", path: saBase, body: `null`, detail: "JSON object"},
		{name: "missing scopeId", method: "POST", path: saBase, body: `{"displayName":"x","scope":"organization"}`, field: "scopeId"},
		{name: "empty scopeId", method: "POST", path: saBase, body: `{"displayName":"x","scope":"folder","scopeId":""}`, field: "scopeId"},
		{name: "unknown scope", method: "POST", path: saBase, body: `{"displayName":"x","scope":"instance","scopeId":"acme"}`, field: "scope"},
		{name: "project path too long", method: "POST", path: saBase, body: `{"displayName":"x","scope":"project","scopeId":"` + strings.Repeat("a", 254) + `"}`, field: "scopeId"},
		{name: "bad folder path", method: "POST", path: saBase, body: `{"displayName":"x","scope":"folder","scopeId":"Team App"}`, field: "scopeId"},
		{name: "another organization", method: "POST", path: saBase, body: `{"displayName":"x","scope":"organization","scopeId":"other"}`, field: "scopeId"},
		{name: "missing displayName", method: "POST", path: saBase, body: `{"scope":"organization","scopeId":"acme"}`, field: "displayName"},
		{name: "blank displayName", method: "POST", path: saBase, body: `{"displayName":"  ","scope":"organization","scopeId":"acme"}`, field: "displayName"},
		{name: "control character", method: "POST", path: saBase, body: `{"displayName":"a\u0000b","scope":"organization","scopeId":"acme"}`, field: "displayName"},
		{name: "text/plain", method: "POST", path: saBase, body: valid, header: map[string]string{"Content-Type": "text/plain"}, field: "Content-Type", detail: "Content-Type"},
		{name: "form content type", method: "POST", path: saBase, body: valid, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
		{name: "malformed content type", method: "POST", path: saBase, body: valid, header: map[string]string{"Content-Type": "application/"}},
		{name: "idempotency key too long", method: "POST", path: saBase, body: valid, header: map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}, field: "Idempotency-Key"},
		{name: "idempotency key not ASCII", method: "POST", path: saBase, body: valid, header: map[string]string{"Idempotency-Key": "clé"}, field: "Idempotency-Key"},
		// PATCH bodies.
		{name: "patch nothing", method: "PATCH", path: saBase + "/" + s.ID, body: `{}`, detail: "nothing to update"},
		{name: "patch null field", method: "PATCH", path: saBase + "/" + s.ID, body: `{"displayName":null}`},
		{name: "patch scope", method: "PATCH", path: saBase + "/" + s.ID, body: `{"scope":"folder","scopeId":"x"}`, detail: `unknown field "scope"`},
		{name: "patch clientId", method: "PATCH", path: saBase + "/" + s.ID, body: `{"clientId":"khc-other"}`},
		{name: "patch id", method: "PATCH", path: saBase + "/" + s.ID, body: `{"id":"x","displayName":"x"}`},
		{name: "patch roles string", method: "PATCH", path: saBase + "/" + s.ID, body: `{"roles":"tenant-admin"}`, field: "roles"},
		{name: "displayName twice", method: "POST", path: saBase, body: `{"displayName":"a","scope":"organization","scopeId":"acme","displayName":"b"}`, field: "displayName"},
		{name: "field names in another case", method: "POST", path: saBase, body: `{"displayname":"x","Scope":"organization","scopeId":"acme","ROLES":["viewer"]}`, field: "displayname"},
		{name: "invalid UTF-8", method: "POST", path: saBase, body: "{\"displayName\":\"a\xff\",\"scope\":\"organization\",\"scopeId\":\"acme\"}", detail: "UTF-8"},
		{name: "patch unknown role", method: "PATCH", path: saBase + "/" + s.ID, body: `{"displayName":"ok","roles":["god"]}`, field: "roles", status: http.StatusUnprocessableEntity},
		{name: "patch status", method: "PATCH", path: saBase + "/" + s.ID, body: `{"status":"deleted"}`, field: "status"},
		{name: "patch blank name", method: "PATCH", path: saBase + "/" + s.ID, body: `{"displayName":""}`, field: "displayName"},
		{name: "patch invalid JSON", method: "PATCH", path: saBase + "/" + s.ID, body: `{"displayName":"x"`},
		{name: "patch text/plain", method: "PATCH", path: saBase + "/" + s.ID, body: `{"displayName":"x"}`, header: map[string]string{"Content-Type": "text/plain"}},
		{name: "patch oversized", method: "PATCH", path: saBase + "/" + s.ID, body: `{"description":"` + strings.Repeat("x", 65<<10) + `"}`, detail: "larger than", status: http.StatusRequestEntityTooLarge},
		// Query parameters on writes, and query strings Go reads in part.
		{name: "dryRun on create", method: "POST", path: saBase + "?dryRun=true", body: valid, field: "dryRun"},
		{name: "query on patch", method: "PATCH", path: saBase + "/" + s.ID + "?force=1", body: `{"displayName":"renamed"}`, field: "force"},
		{name: "query on delete", method: "DELETE", path: saBase + "/" + s.ID + "?cascade=true", field: "cascade"},
		{name: "query on credential create", method: "POST", path: cred + "?dryRun=true", field: "dryRun"},
		{name: "query on credential delete", method: "DELETE", path: cred + "/" + c.ID + "?x=1", field: "x"},
		{name: "query on settings patch", method: "PATCH", path: settingsPath + "?dryRun=1", body: `{"credentialDefaultLifetimeDays":10}`, field: "dryRun"},
		{name: "query on settings get", method: "GET", path: settingsPath + "?x=1", field: "x"},
		{name: "semicolon in a list query", method: "GET", path: saBase + "?pageSize=1;status=disabled", detail: "not ;"},
		{name: "semicolon on a write", method: "POST", path: saBase + "?a;b", body: valid, detail: "not ;"},
		{name: "semicolon in audit", method: "GET", path: auditPath + "?limit=1;type=x", detail: "not ;"},
		{name: "malformed escape", method: "GET", path: saBase + "?pageSize=%zz", field: "pageSize"},
		// Strings the decoder would rewrite, and text classes.
		{name: "lone surrogate", method: "POST", path: saBase, body: `{"displayName":"a\ud800","scope":"organization","scopeId":"acme"}`, field: "displayName", detail: "lone UTF-16 surrogate"},
		{name: "lone surrogate in patch", method: "PATCH", path: saBase + "/" + s.ID, body: `{"description":"\udc00"}`, field: "description", detail: "surrogate"},
		{name: "tab in displayName", method: "POST", path: saBase, body: `{"displayName":"a\tb","scope":"organization","scopeId":"acme"}`, field: "displayName", detail: "control characters"},
		{name: "newline in displayName", method: "POST", path: saBase, body: `{"displayName":"a\nb","scope":"organization","scopeId":"acme"}`, field: "displayName", detail: "single line"},
		{name: "DEL in description", method: "POST", path: saBase, body: `{"displayName":"x","description":"a\u007f","scope":"organization","scopeId":"acme"}`, field: "description", detail: "DEL"},
		{name: "bidi override", method: "POST", path: saBase, body: `{"displayName":"abc\u202egpj","scope":"organization","scopeId":"acme"}`, field: "displayName", detail: "bidirectional"},
		{name: "bidi isolate in description", method: "PATCH", path: saBase + "/" + s.ID, body: `{"description":"a\u2066b"}`, field: "description", detail: "bidirectional"},
		{name: "byte order mark", method: "POST", path: saBase, body: `{"displayName":"\ufeffx","scope":"organization","scopeId":"acme"}`, field: "displayName", detail: "byte order mark"},
		{name: "noncharacter", method: "POST", path: saBase, body: `{"displayName":"x\uffff","scope":"organization","scopeId":"acme"}`, field: "displayName", detail: "noncharacter"},
		{name: "only invisible", method: "POST", path: saBase, body: `{"displayName":"\u200b\u3164","scope":"organization","scopeId":"acme"}`, field: "displayName", detail: "visible character"},
		{name: "only spaces in description", method: "PATCH", path: saBase + "/" + s.ID, body: `{"description":"   "}`, field: "description", detail: "visible character"},
		// Integers out of range.
		{name: "lifetime overflows", method: "PATCH", path: settingsPath, body: `{"credentialMaxLifetimeDays":99999999999999999999}`, field: "credentialMaxLifetimeDays", detail: "out of range"},
		// Credential bodies.
		{name: "credential unknown field", method: "POST", path: cred, body: `{"expiresAt":null,"clientSecret":"mine"}`},
		{name: "credential invalid JSON", method: "POST", path: cred, body: `{`},
		{name: "credential text/plain", method: "POST", path: cred, body: `{}`, header: map[string]string{"Content-Type": "text/plain"}},
		// Ids in paths.
		{name: "get id x-", method: "GET", path: saBase + "/x-", field: "id"},
		{name: "get id 27 chars", method: "GET", path: saBase + "/" + id27, field: "id"},
		{name: "get id upper case", method: "GET", path: saBase + "/" + upper, field: "id"},
		{name: "get id with dash", method: "GET", path: saBase + "/" + strings.Repeat("-", 26), field: "id"},
		{name: "get id with dot", method: "GET", path: saBase + "/" + strings.Repeat(".", 26), field: "id"},
		{name: "patch id x-", method: "PATCH", path: saBase + "/x-", body: `{"displayName":"x"}`, field: "id"},
		{name: "patch id 27", method: "PATCH", path: saBase + "/" + id27, body: `{"displayName":"x"}`, field: "id"},
		{name: "delete id x-", method: "DELETE", path: saBase + "/x-", field: "id"},
		{name: "delete id 27", method: "DELETE", path: saBase + "/" + id27, field: "id"},
		{name: "delete id upper", method: "DELETE", path: saBase + "/" + upper, field: "id"},
		{name: "list credentials of x-", method: "GET", path: saBase + "/x-/credentials", field: "serviceAccountId"},
		{name: "create credential for 27", method: "POST", path: saBase + "/" + id27 + "/credentials", field: "serviceAccountId"},
		{name: "get credential x", method: "GET", path: cred + "/x", field: "id"},
		{name: "get credential 27", method: "GET", path: cred + "/" + c.ID + "0", field: "id"},
		{name: "delete credential x", method: "DELETE", path: cred + "/x", field: "id"},
		{name: "delete credential upper", method: "DELETE", path: cred + "/" + strings.ToUpper(c.ID), field: "id"},
		{name: "delete credential of x-", method: "DELETE", path: saBase + "/x-/credentials/" + c.ID, field: "serviceAccountId"},
		// Query strings.
		{name: "unknown query parameter", method: "GET", path: saBase + "?foo=1", field: "foo"},
		{name: "snake case filter", method: "GET", path: saBase + "?scope_id=acme", field: "scope_id"},
		{name: "Keyhold's old paging", method: "GET", path: saBase + "?limit=5", field: "limit"},
		{name: "Keyhold's old cursor", method: "GET", path: saBase + "?cursor=abc", field: "cursor"},
		{name: "repeated parameter", method: "GET", path: saBase + "?pageSize=1&pageSize=2", field: "pageSize"},
		{name: "pageSize 0", method: "GET", path: saBase + "?pageSize=0", field: "pageSize"},
		{name: "pageSize -1", method: "GET", path: saBase + "?pageSize=-1", field: "pageSize"},
		{name: "pageSize 501", method: "GET", path: saBase + "?pageSize=501", field: "pageSize", detail: "500"},
		{name: "pageSize abc", method: "GET", path: saBase + "?pageSize=abc", field: "pageSize"},
		{name: "pageSize 1.5", method: "GET", path: saBase + "?pageSize=1.5", field: "pageSize"},
		{name: "empty pageSize", method: "GET", path: saBase + "?pageSize=", field: "pageSize"},
		{name: "bad pageToken", method: "GET", path: saBase + "?pageToken=!!!", field: "pageToken", detail: "pageToken"},
		{name: "bad audit cursor", method: "GET", path: auditPath + "?cursor=x", field: "cursor"},
		{name: "bad audit aggregate", method: "GET", path: auditPath + "?aggregate=a.b", field: "aggregate"},
		{name: "pageToken not base64url", method: "GET", path: saBase + "?pageToken=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte("??>>"))), field: "pageToken"},
		{name: "pageToken of a bad id", method: "GET", path: saBase + "?pageToken=" + base64.RawURLEncoding.EncodeToString([]byte("../etc")), field: "pageToken"},
		{name: "unknown scope", method: "GET", path: saBase + "?scope=tenant", field: "scope"},
		{name: "unknown status filter", method: "GET", path: saBase + "?status=deleted", field: "status"},
		{name: "expired is no account status", method: "GET", path: saBase + "?status=expired", field: "status"},
		{name: "scopeId with NUL", method: "GET", path: saBase + "?scopeId=%00", field: "scopeId"},
		{name: "scopeId not UTF-8", method: "GET", path: saBase + "?scopeId=%ff", field: "scopeId"},
		{name: "scopeId upper case", method: "GET", path: saBase + "?scopeId=Team", field: "scopeId"},
		{name: "scopeId too long", method: "GET", path: saBase + "?scopeId=" + strings.Repeat("a", 254), field: "scopeId"},
		{name: "query on get", method: "GET", path: saBase + "/" + s.ID + "?expand=credentials", field: "expand"},
		{name: "unknown credential status", method: "GET", path: cred + "?status=disabled", field: "status"},
		{name: "scope filter on credentials", method: "GET", path: cred + "?scope=folder", field: "scope"},
		{name: "credentials pageSize 0", method: "GET", path: cred + "?pageSize=0", field: "pageSize"},
		{name: "credentials bad pageToken", method: "GET", path: cred + "?pageToken=%25%25", field: "pageToken"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.send(t, httpReq{method: c.method, path: c.path, token: a.token, body: c.body, header: c.header})
			status := c.status
			if status == 0 {
				status = http.StatusBadRequest
			}
			p := checkProblem(t, r, status)
			if c.field != "" && p["field"] != c.field {
				t.Errorf("problem field %v, want %q (detail %v)", p["field"], c.field, p["detail"])
			}
			if !strings.Contains(fmt.Sprint(p["detail"]), c.detail) {
				t.Errorf("detail %q does not contain %q", p["detail"], c.detail)
			}
			if strings.Contains(fmt.Sprint(p["detail"]), "internal") {
				t.Errorf("detail %v", p["detail"])
			}
		})
	}
	// Dot segments are not cleaned into another resource's path: they reach
	// the id checks (400), match no route (404), or name a path the method
	// does not apply to (405), and change nothing.
	for _, path := range []string{saBase + "/../", saBase + "/..", cred + "/../", saBase + "/" + s.ID + "/x/../", saBase + "/..%2F", saBase + "/%2e%2e%2fx"} {
		for _, method := range []string{"GET", "PATCH", "DELETE", "POST"} {
			t.Run("dot segments "+method+" "+path, func(t *testing.T) {
				r := h.send(t, httpReq{method: method, path: path, token: a.token, body: `{"displayName":"x"}`})
				switch r.Status {
				case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed:
				default:
					t.Fatalf("status %d: %s", r.Status, r.Body)
				}
			})
		}
	}
	if after := snapshot(t); after != before {
		t.Errorf("bad input changed state:\n%s\n%s", before, after)
	}
	if n := len(h.auditAll(t, a.token, "")); n != events {
		t.Errorf("bad input appended %d events", n-events)
	}
}

// TestRefusedBeforeDecoding checks refusals that need other callers or raw
// headers: a caller without the right gets 403 whatever its body, a
// repeated authentication header is 400, a Keyhold-Tenant the caller
// cannot use says so, and the OAuth2 endpoints answer a wrong method and
// an oversized body in their own shape.
func TestRefusedBeforeDecoding(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	_, viewer := h.principal(t, a.token, "reader", "viewer")
	before := len(h.listSAs(t, a.token, "?pageSize=200"))

	t.Run("viewer posting a bad body gets 403", func(t *testing.T) {
		for _, body := range []string{`{"displayName":`, `{"displayName":"a\ud800"}`, `{"bogus":1}`} {
			r := h.send(t, httpReq{method: http.MethodPost, path: saBase, token: viewer, body: body})
			checkProblem(t, r, http.StatusForbidden)
		}
		r := h.send(t, httpReq{method: http.MethodPost, path: saBase + "?dryRun=true", token: viewer, body: `{}`})
		checkProblem(t, r, http.StatusForbidden)
	})
	t.Run("repeated Authorization is 400", func(t *testing.T) {
		for _, tc := range []struct{ name, first, second string }{
			{"Authorization", "Bearer " + a.token, "Bearer " + viewer},
			{"Keyhold-Tenant", "acme", "other"},
		} {
			req, err := http.NewRequest(http.MethodPost, h.ts.URL+saBase, strings.NewReader(`{"displayName":"twice","scope":"organization","scopeId":"acme"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tc.name != "Authorization" {
				req.Header.Set("Authorization", "Bearer "+a.token)
			}
			req.Header.Add(tc.name, tc.first)
			req.Header.Add(tc.name, tc.second)
			res, err := h.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			p := checkProblem(t, httpResp{Status: res.StatusCode, Header: res.Header, Body: raw, Path: saBase}, http.StatusBadRequest)
			if p["field"] != tc.name {
				t.Errorf("%s twice: field %v, want %s", tc.name, p["field"], tc.name)
			}
		}
	})
	t.Run("a tenant the caller cannot use", func(t *testing.T) {
		r := h.send(t, httpReq{method: http.MethodGet, path: saBase, token: a.token, header: map[string]string{"Keyhold-Tenant": "other"}})
		p := checkProblem(t, r, http.StatusUnauthorized)
		if d := fmt.Sprint(p["detail"]); p["field"] != "Keyhold-Tenant" || !strings.Contains(d, "no access to the tenant") || strings.Contains(d, "invalid") {
			t.Errorf("problem %v", p)
		}
	})
	t.Run("wrong methods and unknown paths in the envelope", func(t *testing.T) {
		r := h.do(t, http.MethodPut, saBase, a.token, `{}`)
		checkProblem(t, r, http.StatusMethodNotAllowed)
		if got := r.Header.Get("Allow"); got != "GET, POST" {
			t.Errorf("Allow %q", got)
		}
		checkProblem(t, h.do(t, http.MethodPost, settingsPath, a.token, `{}`), http.StatusMethodNotAllowed)
		for _, path := range []string{"/v1/regions/global/iam/users", saBase + "/x/y/z/w", "/v1/regions/global/iam/"} {
			checkProblem(t, h.do(t, http.MethodGet, path, a.token, nil), http.StatusNotFound)
			// Authentication comes first, even for paths that name nothing.
			checkProblem(t, h.do(t, http.MethodGet, path, "", nil), http.StatusUnauthorized)
		}
	})
	t.Run("GET /oauth2/token is 405 in the OAuth2 shape", func(t *testing.T) {
		r := h.do(t, http.MethodGet, "/oauth2/token", "", nil)
		var e struct {
			Error string `json:"error"`
		}
		r.decode(t, &e)
		if r.Status != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "POST" || e.Error != "invalid_request" ||
			!strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Errorf("got %s, Allow %q, Content-Type %q", r, r.Header.Get("Allow"), r.Header.Get("Content-Type"))
		}
	})
	t.Run("oversized OAuth2 body is 413 in the OAuth2 shape", func(t *testing.T) {
		r := h.form(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "pad": {strings.Repeat("x", 9<<10)}}, "", "")
		var e struct {
			Error string `json:"error"`
		}
		r.decode(t, &e)
		if r.Status != http.StatusRequestEntityTooLarge || e.Error != "invalid_request" {
			t.Errorf("got %s", r)
		}
	})
	if after := len(h.listSAs(t, a.token, "?pageSize=200")); after != before {
		t.Errorf("refused requests created %d service accounts", after-before)
	}
}
