package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// serverID returns the Keyhold id behind a service account: its client id
// is khc- and that id, whatever the account's chosen id.
func serverID(t *testing.T, s sa) string {
	t.Helper()
	id, ok := strings.CutPrefix(s.ClientID, "khc-")
	if !ok || len(id) != 26 {
		t.Fatalf("clientId %q is not khc- and a 26-character id", s.ClientID)
	}
	return id
}

// A create may choose the account's id: it is the account's id on the
// wire and in paths (the server's id works in paths too), unique in the
// tenant, free again once the account is deleted.
func TestChosenServiceAccountIDs(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, testTenant)
	other := h.bootstrap(t, "globex")

	body := func(id, name string) map[string]any {
		b := tenantSA(name, "viewer")
		b["id"] = id
		return b
	}
	r := h.do(t, http.MethodPost, saBase, a.token, body("ci-runner", "CI runner"))
	expectStatus(t, r, http.StatusCreated, "create with a chosen id")
	if got := keysOf(r.object(t)); !slices.Equal(got, saFields) {
		t.Fatalf("fields %v, want exactly %v", got, saFields)
	}
	var s sa
	r.decode(t, &s)
	ulid := serverID(t, s)
	if s.ID != "ci-runner" || s.SelfLink != saBase+"/ci-runner" || r.Header.Get("Location") != s.SelfLink || !uidPattern.MatchString(s.UID) {
		t.Fatalf("created %+v, Location %q", s, r.Header.Get("Location"))
	}

	t.Run("lookups by either id", func(t *testing.T) {
		for _, ref := range []string{"ci-runner", ulid} {
			r := h.do(t, http.MethodGet, saBase+"/"+ref, a.token, nil)
			expectStatus(t, r, http.StatusOK, "get "+ref)
			var got sa
			r.decode(t, &got)
			if got.ID != "ci-runner" || got.UID != s.UID || got.ClientID != s.ClientID || got.SelfLink != s.SelfLink {
				t.Errorf("get %s: %+v, want the account %+v", ref, got, s)
			}
		}
		if i := slices.IndexFunc(h.listSAs(t, a.token, ""), func(x sa) bool { return x.UID == s.UID }); i < 0 {
			t.Error("the account is not listed")
		} else if got := h.listSAs(t, a.token, "")[i]; got.ID != "ci-runner" {
			t.Errorf("listed with id %q", got.ID)
		}
		for _, ref := range []string{"ci-runne", "ci-runner-2", "x"} {
			checkEnvelope(t, h.do(t, http.MethodGet, saBase+"/"+ref, a.token, nil), http.StatusNotFound)
		}
		// Another tenant's administrator does not see it by name.
		checkEnvelope(t, h.do(t, http.MethodGet, saBase+"/ci-runner", other.token, nil), http.StatusNotFound)
	})

	t.Run("taken in the tenant", func(t *testing.T) {
		r := h.do(t, http.MethodPost, saBase, a.token, body("ci-runner", "another"))
		e := checkEnvelope(t, r, http.StatusConflict)
		if len(e.Details) != 1 || e.Details[0].Field != "id" || !strings.Contains(e.Message, `"ci-runner" is already taken`) {
			t.Errorf("409 %+v", e)
		}
		// The server's id of another account is no name to take, nor its client id.
		checkEnvelope(t, h.do(t, http.MethodPost, saBase, a.token, body(ulid, "x")), http.StatusBadRequest)
		checkEnvelope(t, h.do(t, http.MethodPost, saBase, a.token, body("khc-"+ulid, "x")), http.StatusBadRequest)
	})

	t.Run("the same id in another tenant", func(t *testing.T) {
		o := h.createSA(t, other.token, func() map[string]any {
			b := orgSA("globex", "their runner")
			b["id"] = "ci-runner"
			return b
		}())
		if o.ID != "ci-runner" || o.UID == s.UID || o.ClientID == s.ClientID {
			t.Fatalf("other tenant's account %+v", o)
		}
		r := h.do(t, http.MethodGet, saBase+"/ci-runner", other.token, nil)
		expectStatus(t, r, http.StatusOK, "get in the other tenant")
		var got sa
		r.decode(t, &got)
		if got.UID != o.UID || got.DisplayName != "their runner" {
			t.Errorf("the other tenant reads %+v", got)
		}
	})

	t.Run("update by chosen id", func(t *testing.T) {
		r := h.do(t, http.MethodPatch, saBase+"/ci-runner", a.token, map[string]any{"displayName": "CI runner 2"})
		expectStatus(t, r, http.StatusOK, "patch")
		var got sa
		r.decode(t, &got)
		if got.ID != "ci-runner" || got.DisplayName != "CI runner 2" || got.UID != s.UID {
			t.Errorf("patched %+v", got)
		}
	})

	t.Run("credentials under the chosen id", func(t *testing.T) {
		c := h.createCredential(t, a.token, "ci-runner", nil)
		credPath := saBase + "/ci-runner/credentials"
		if c.ServiceAccountID != "ci-runner" || c.SelfLink != credPath+"/"+c.ID {
			t.Errorf("credential %+v", c)
		}
		for _, path := range []string{credPath, saBase + "/" + ulid + "/credentials"} {
			r := h.do(t, http.MethodGet, path, a.token, nil)
			expectStatus(t, r, http.StatusOK, "list "+path)
			var p credentialPage
			r.decode(t, &p)
			if len(p.Credentials) != 1 || p.Credentials[0].ID != c.ID || p.Credentials[0].ServiceAccountID != "ci-runner" {
				t.Errorf("list %s: %+v", path, p.Credentials)
			}
			r = h.do(t, http.MethodGet, path+"/"+c.ID, a.token, nil)
			expectStatus(t, r, http.StatusOK, "get credential under "+path)
			var got credential
			r.decode(t, &got)
			if got.ID != c.ID || got.ServiceAccountID != "ci-runner" || got.SelfLink != c.SelfLink {
				t.Errorf("get under %s: %+v", path, got)
			}
		}
		// The credential is not found under the other tenant's ci-runner.
		checkEnvelope(t, h.do(t, http.MethodGet, credPath+"/"+c.ID, other.token, nil), http.StatusNotFound)
		h.accessToken(t, s.ClientID, *c.ClientSecret)
		r := h.do(t, http.MethodDelete, credPath+"/"+c.ID, a.token, nil)
		expectStatus(t, r, http.StatusNoContent, "delete credential by chosen id")
		if g := h.grant(t, s.ClientID, *c.ClientSecret); g.Status == http.StatusOK {
			t.Errorf("a deleted credential still grants: %s", g)
		}
	})

	t.Run("free again after delete", func(t *testing.T) {
		r := h.do(t, http.MethodDelete, saBase+"/ci-runner", a.token, nil)
		expectStatus(t, r, http.StatusNoContent, "delete by chosen id")
		for _, ref := range []string{"ci-runner", ulid} {
			checkEnvelope(t, h.do(t, http.MethodGet, saBase+"/"+ref, a.token, nil), http.StatusNotFound)
			checkEnvelope(t, h.do(t, http.MethodDelete, saBase+"/"+ref, a.token, nil), http.StatusNotFound)
		}
		again := h.createSA(t, a.token, body("ci-runner", "CI runner, again"))
		if again.ID != "ci-runner" || again.UID == s.UID || serverID(t, again) == ulid {
			t.Fatalf("recreated %+v", again)
		}
		r = h.do(t, http.MethodGet, saBase+"/ci-runner", a.token, nil)
		expectStatus(t, r, http.StatusOK, "get the new account")
		var got sa
		r.decode(t, &got)
		if got.UID != again.UID {
			t.Errorf("ci-runner names %s, want the new account %s", got.UID, again.UID)
		}
		// The other tenant's account kept its id through all this.
		expectStatus(t, h.do(t, http.MethodGet, saBase+"/ci-runner", other.token, nil), http.StatusOK, "other tenant's account")
	})

	t.Run("server-chosen ids stay", func(t *testing.T) {
		g := h.createSA(t, a.token, tenantSA("no id"))
		if g.ID != serverID(t, g) || g.SelfLink != saBase+"/"+g.ID {
			t.Errorf("server-chosen %+v", g)
		}
	})
	h.assertNoSecretsStored(t)
}
