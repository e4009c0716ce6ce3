package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

// Exact key sets of Kestra's instance-level shapes.
var (
	kestraMe           = []string{"auths", "id", "profile", "restricted", "superAdmin", "tenants"}
	kestraProfile      = []string{"email", "firstName", "lastName", "username"}
	kestraUser         = []string{"auths", "displayName", "email", "firstName", "groups", "id", "lastName", "restricted", "superAdmin", "tenants", "username"}
	kestraUserSummary  = []string{"auths", "displayName", "id", "superAdmin", "tenants", "username"}
	kestraTenant       = []string{"deleted", "id", "name"}
	kestraTokenCreated = []string{"fullToken", "id", "name"}
	kestraTokenItem    = []string{"createdAt", "description", "expiresAt", "id", "name"}
)

// top calls an instance-level route (no tenant in the path) and records
// the exchange for validation against Kestra's document.
func (k kestraAPI) top(t *testing.T, method, p, auth string, body any) httpResp {
	t.Helper()
	return k.send(t, method, k.prefix+p, auth, body)
}

// send makes a request with an Authorization header value (Bearer or
// Basic, or none) and records it.
func (k kestraAPI) send(t *testing.T, method, full, authz string, body any) httpResp {
	t.Helper()
	req := httpReq{method: method, path: full, body: body}
	if authz != "" {
		req.header = map[string]string{"Authorization": authz}
	}
	r := k.h.send(t, req)
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		raw = mustJSON(t, b)
	}
	k.rec.add(kestraExchange{method: method, path: full, body: raw, resp: r})
	return r
}

// topOK is top expecting status want.
func (k kestraAPI) topOK(t *testing.T, method, p, auth string, body any, want int) httpResp {
	t.Helper()
	r := k.top(t, method, p, auth, body)
	expectStatus(t, r, want, method+" "+k.prefix+p)
	return r
}

func bearer(token string) string { return "Bearer " + token }

func basicAuth(login, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(login+":"+password))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestKestraInstanceRoutes drives /me, /users, /tenants and
// /instance/settings as a superadmin, a tenant administrator, a member,
// a service account and anonymously, under both prefixes.
func TestKestraInstanceRoutes(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	root := h.kestraAdmin(t, "acme")
	k := newKestraAPI(t, h, "acme", "/api/v1")
	v := newKestraAPI(t, h, "acme", "/v1/api")
	su := bearer(root.token)

	const bobPW = "correct horse battery staple 1"
	h.remember(bobPW, "bob's first password")
	r := k.topOK(t, http.MethodPost, "/users", su, map[string]any{"email": "Bob@Example.com", "firstName": "Bob", "lastName": "Builder",
		"password": bobPW, "superAdmin": false, "restricted": false, "tenants": []string{"acme"}, "groups": []string{}}, http.StatusCreated)
	bob := r.object(t)
	exactKeys(t, "created user", bob, kestraUser)
	bobID, _ := bob["id"].(string)
	if bob["email"] != "bob@example.com" || bob["username"] != "bob@example.com" || bob["displayName"] != "Bob Builder" || bob["superAdmin"] != false {
		t.Fatalf("created user: %s", r.Body)
	}
	if ts, _ := bob["tenants"].([]any); len(ts) != 1 || ts[0].(map[string]any)["id"] != "acme" {
		t.Fatalf("tenants: %s", r.Body)
	}
	if as, _ := bob["auths"].([]any); len(as) != 1 {
		t.Fatalf("a user with a password lists it in auths: %s", r.Body)
	}
	if loc := r.Header.Get("Location"); loc != "/api/v1/users/"+bobID {
		t.Errorf("Location %q", loc)
	}
	bobBasic := basicAuth("bob@example.com", bobPW)

	// carol administers acme; dan is a member of it.
	carol := k.topOK(t, http.MethodPost, "/users", su, map[string]any{"email": "carol@example.com", "password": "carol's long password 2", "tenants": []string{"acme"}}, http.StatusCreated).object(t)
	h.remember("carol's long password 2", "carol's password")
	h.bindAsOperator(t, "acme", authz.RoleTenantAdmin, events.SubjectUser, carol["id"].(string), events.Scope{})
	carolBasic := basicAuth("carol@example.com", "carol's long password 2")
	k.topOK(t, http.MethodPost, "/users", su, map[string]any{"email": "dan@example.com", "password": "dan's long password 3", "tenants": []string{"acme"}}, http.StatusCreated).object(t)
	h.remember("dan's long password 3", "dan's password")
	danBasic := basicAuth("dan@example.com", "dan's long password 3")

	t.Run("me", func(t *testing.T) {
		for _, api := range []kestraAPI{k, v} {
			r := api.topOK(t, http.MethodGet, "/me", su, nil, http.StatusOK)
			me := r.object(t)
			exactKeys(t, "me", me, kestraMe)
			exactKeys(t, "profile", me["profile"].(map[string]any), kestraProfile)
			if me["id"] != root.userID || me["superAdmin"] != true || me["restricted"] != false {
				t.Fatalf("me: %s", r.Body)
			}
			if ts, _ := me["tenants"].([]any); len(ts) != 1 || ts[0].(map[string]any)["id"] != "acme" || ts[0].(map[string]any)["name"] != "acme" {
				t.Fatalf("me tenants: %s", r.Body)
			}
		}
		// Basic sign-in with the password given at creation.
		r := k.topOK(t, http.MethodGet, "/me", bobBasic, nil, http.StatusOK)
		if me := r.object(t); me["id"] != bobID || me["profile"].(map[string]any)["firstName"] != "Bob" {
			t.Fatalf("bob's me: %s", r.Body)
		}
		r = k.topOK(t, http.MethodPatch, "/me", bobBasic, map[string]any{"firstName": "Robert"}, http.StatusOK)
		if me := r.object(t); me["profile"].(map[string]any)["firstName"] != "Robert" || me["profile"].(map[string]any)["lastName"] != "Builder" {
			t.Fatalf("patched me: %s", r.Body)
		}
		r = k.top(t, http.MethodPatch, "/me", bobBasic, map[string]any{"email": "not an email"})
		if f := fieldOf(t, kestraError(t, r, http.StatusUnprocessableEntity, "/api/v1/me")); f != "email" {
			t.Errorf("bad email: path %q", f)
		}
		r = k.top(t, http.MethodGet, "/me", "", nil)
		kestraError(t, r, http.StatusUnauthorized, "/api/v1/me")
		_, saToken := h.principalIn(t, "acme", root.token, "robot")
		r = k.top(t, http.MethodGet, "/me", bearer(saToken), nil)
		kestraError(t, r, http.StatusForbidden, "/api/v1/me")
		// Nor has it invitations: a service account has no address.
		kestraError(t, k.top(t, http.MethodGet, "/me/invitations", bearer(saToken), nil), http.StatusForbidden, "/api/v1/me/invitations")
	})

	t.Run("password", func(t *testing.T) {
		const next = "a brand new passphrase 4"
		h.remember(next, "bob's second password")
		r := k.top(t, http.MethodPut, "/me/password", bobBasic, map[string]any{"oldPassword": "wrong password here", "newPassword": next})
		if f := fieldOf(t, kestraError(t, r, http.StatusUnprocessableEntity, "/api/v1/me/password")); f != "oldPassword" {
			t.Errorf("wrong old password: path %q", f)
		}
		r = k.top(t, http.MethodPut, "/me/password", bobBasic, map[string]any{"oldPassword": bobPW, "newPassword": "short"})
		if f := fieldOf(t, kestraError(t, r, http.StatusUnprocessableEntity, "/api/v1/me/password")); f != "newPassword" {
			t.Errorf("weak password: path %q", f)
		}
		k.topOK(t, http.MethodPut, "/me/password", bobBasic, map[string]any{"oldPassword": bobPW, "newPassword": next}, http.StatusOK)
		kestraError(t, k.top(t, http.MethodGet, "/me", bobBasic, nil), http.StatusUnauthorized, "/api/v1/me")
		bobBasic = basicAuth("bob@example.com", next)
		k.topOK(t, http.MethodGet, "/me", bobBasic, nil, http.StatusOK)

		// A superadmin sets it without the old one.
		const third = "set by the superadmin 5"
		h.remember(third, "bob's third password")
		r = k.topOK(t, http.MethodPatch, "/users/"+bobID+"/password", su, map[string]any{"password": third}, http.StatusOK)
		exactKeys(t, "password patched", r.object(t), []string{})
		bobBasic = basicAuth("bob@example.com", third)
		k.topOK(t, http.MethodGet, "/me", bobBasic, nil, http.StatusOK)
		// Bob may not use the superadmin's route on himself.
		r = k.top(t, http.MethodPatch, "/users/"+bobID+"/password", bobBasic, map[string]any{"password": "bob tries the admin route"})
		kestraError(t, r, http.StatusForbidden, "/api/v1/users/"+bobID+"/password")
	})

	t.Run("my api tokens", func(t *testing.T) {
		r := k.topOK(t, http.MethodPost, "/me/api-tokens", bobBasic, map[string]any{"name": "ci-deploy", "description": "CI", "maxAge": "P7D"}, http.StatusOK)
		created := r.object(t)
		exactKeys(t, "created token", created, kestraTokenCreated)
		token, _ := created["fullToken"].(string)
		h.remember(token, "bob's API token")
		r = k.topOK(t, http.MethodGet, "/me", bearer(token), nil, http.StatusOK)
		if r.object(t)["id"] != bobID {
			t.Fatalf("the token is bob's: %s", r.Body)
		}
		r = k.topOK(t, http.MethodGet, "/me/api-tokens", bobBasic, nil, http.StatusOK)
		var list struct {
			Results []map[string]any `json:"results"`
		}
		r.decode(t, &list)
		exactKeys(t, "token list", r.object(t), []string{"results"})
		if len(list.Results) != 1 || list.Results[0]["id"] != created["id"] || list.Results[0]["description"] != "CI" {
			t.Fatalf("tokens: %s", r.Body)
		}
		item := list.Results[0]
		delete(item, "lastUsedAt") // set once the servers flushed a use
		exactKeys(t, "token item", item, kestraTokenItem)
		exp, err := time.Parse(time.RFC3339, item["expiresAt"].(string))
		if err != nil || exp.Sub(time.Now()) > 7*24*time.Hour || exp.Sub(time.Now()) < 7*24*time.Hour-time.Hour {
			t.Errorf("maxAge P7D: expiresAt %v", item["expiresAt"])
		}
		if strings.Contains(string(r.Body), token) {
			t.Fatal("the list shows the token")
		}
		for _, tc := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"name": "Not Valid"}, "name"},
			{map[string]any{"description": "no name"}, "name"},
			{map[string]any{"name": "ok", "maxAge": "7 days"}, "maxAge"},
			{map[string]any{"name": "ok", "maxAge": "P9999D"}, "maxAge"},
			{map[string]any{"name": "ok", "extended": true}, "extended"},
		} {
			r := k.top(t, http.MethodPost, "/me/api-tokens", bobBasic, tc.body)
			if f := fieldOf(t, kestraError(t, r, http.StatusUnprocessableEntity, "/api/v1/me/api-tokens")); f != tc.field {
				t.Errorf("%v: path %q, want %q", tc.body, f, tc.field)
			}
		}
		// A keyed retry replays the response without the token.
		keyed := httpReq{method: http.MethodPost, path: "/api/v1/me/api-tokens", body: map[string]any{"name": "keyed"},
			header: map[string]string{"Authorization": bobBasic, "Idempotency-Key": "token-once"}}
		first := h.send(t, keyed)
		expectStatus(t, first, http.StatusOK, "keyed token")
		h.remember(first.object(t)["fullToken"].(string), "bob's keyed API token")
		again := h.send(t, keyed)
		if got := again.object(t); again.Status != http.StatusOK || got["fullToken"] != nil || got["id"] != first.object(t)["id"] || again.Header.Get("Keyhold-Redacted") == "" {
			t.Fatalf("replay: %s %v", again, again.Header)
		}
		r = k.topOK(t, http.MethodDelete, "/me/api-tokens/"+created["id"].(string), bobBasic, nil, http.StatusOK)
		kestraError(t, k.top(t, http.MethodGet, "/me", bearer(token), nil), http.StatusUnauthorized, "/api/v1/me")
		kestraError(t, k.top(t, http.MethodDelete, "/me/api-tokens/"+created["id"].(string), bobBasic, nil), http.StatusNotFound, "/api/v1/me/api-tokens/"+created["id"].(string))
		kestraError(t, k.top(t, http.MethodDelete, "/me/api-tokens/nope", bobBasic, nil), http.StatusNotFound, "/api/v1/me/api-tokens/nope")
	})

	t.Run("users", func(t *testing.T) {
		r := k.topOK(t, http.MethodGet, "/users?q=BOB&page=1&size=10&sort=username:asc", su, nil, http.StatusOK)
		res, total := page(t, r, kestraUserSummary)
		if total != 1 || res[0]["id"] != bobID {
			t.Fatalf("search: %s", r.Body)
		}
		r = v.topOK(t, http.MethodGet, "/users?size=2&page=2&sort=username:asc", su, nil, http.StatusOK)
		// admin-acme, bob, carol, dan by username: page 2 is carol, dan.
		if res, total := page(t, r, kestraUserSummary); total != 4 || len(res) != 2 || res[0]["username"] != "carol@example.com" {
			t.Fatalf("page 2: %s", r.Body)
		}
		kestraError(t, k.top(t, http.MethodGet, "/users?sort=password", su, nil), http.StatusBadRequest, "/api/v1/users")

		r = k.topOK(t, http.MethodGet, "/users/"+bobID, su, nil, http.StatusOK)
		exactKeys(t, "user", r.object(t), kestraUser)
		kestraError(t, k.top(t, http.MethodGet, "/users/01h0000000000000000000000", su, nil), http.StatusNotFound, "/api/v1/users/01h0000000000000000000000")

		r = k.topOK(t, http.MethodPatch, "/users/"+bobID, su, map[string]any{"lastName": "Baumeister"}, http.StatusOK)
		if u := r.object(t); u["lastName"] != "Baumeister" || u["firstName"] != "Robert" {
			t.Fatalf("patch: %s", r.Body)
		}
		// PUT replaces: no tenants takes acme away.
		r = k.topOK(t, http.MethodPut, "/users/"+bobID, su, map[string]any{"email": "bob@example.com", "firstName": "Bob", "lastName": "B", "tenants": []string{}}, http.StatusOK)
		if u := r.object(t); len(u["tenants"].([]any)) != 0 || u["firstName"] != "Bob" {
			t.Fatalf("put: %s", r.Body)
		}
		kestraError(t, k.top(t, http.MethodGet, "/acme/roles/search", bobBasic, nil), http.StatusForbidden, "/api/v1/acme/roles/search")
		r = k.topOK(t, http.MethodPut, "/users/"+bobID, su, map[string]any{"email": "bob@example.com", "firstName": "Bob", "lastName": "B", "tenants": []string{"acme"}}, http.StatusOK)
		if u := r.object(t); len(u["tenants"].([]any)) != 1 {
			t.Fatalf("put back: %s", r.Body)
		}
		// A PUT with a part refused changes nothing, also the parts before
		// it: not the names, the flags, nor the tenants.
		for _, body := range []map[string]any{
			{"email": "robert@example.com", "firstName": "Rob", "lastName": "B", "superAdmin": true, "tenants": []string{"no-such-tenant"}},
			{"email": "robert@example.com", "firstName": "Rob", "lastName": "B", "restricted": true, "tenants": []string{}, "password": "bob@example.com"},
		} {
			r = k.top(t, http.MethodPut, "/users/"+bobID, su, body)
			if r.Status != http.StatusNotFound && r.Status != http.StatusUnprocessableEntity {
				t.Fatalf("put %v: %d %s, want it refused", body, r.Status, r.Body)
			}
			r = k.topOK(t, http.MethodGet, "/users/"+bobID, su, nil, http.StatusOK)
			if u := r.object(t); u["firstName"] != "Bob" || u["email"] != "bob@example.com" || u["superAdmin"] != false || u["restricted"] != false || len(u["tenants"].([]any)) != 1 {
				t.Fatalf("after a refused put %v: %s", body, r.Body)
			}
		}
		m := kestraError(t, k.top(t, http.MethodPut, "/users/"+bobID, su, map[string]any{"email": "bob@example.com", "tenants": []string{"acme", "no-such-tenant"}}), http.StatusNotFound, "/api/v1/users/"+bobID)
		if msg, _ := m["message"].(string); !strings.Contains(msg, `"no-such-tenant"`) {
			t.Errorf("unknown tenant: message %q does not name it", msg)
		}
		for _, tc := range []struct {
			method, path string
			body         map[string]any
			field        string
		}{
			{http.MethodPost, "/users", map[string]any{"firstName": "No Email"}, "email"},
			{http.MethodPost, "/users", map[string]any{"email": "x@example.com", "groups": []string{"g1"}}, "groups"},
			{http.MethodPost, "/users", map[string]any{"email": "x@example.com", "password": "short"}, "password"},
			{http.MethodPost, "/users", map[string]any{"email": "x@example.com", "username": "x"}, "username"},
			{http.MethodPatch, "/users/" + bobID + "/superadmin", map[string]any{}, "superAdmin"},
			{http.MethodPatch, "/users/" + bobID + "/restricted", map[string]any{}, "restricted"},
			{http.MethodPatch, "/users/" + root.userID + "/superadmin", map[string]any{"superAdmin": false}, "superAdmin"},
		} {
			r := k.top(t, tc.method, tc.path, su, tc.body)
			if f := fieldOf(t, kestraError(t, r, http.StatusUnprocessableEntity, "/api/v1"+tc.path)); f != tc.field {
				t.Errorf("%s %s %v: path %q, want %q", tc.method, tc.path, tc.body, f, tc.field)
			}
		}
		kestraError(t, k.top(t, http.MethodPost, "/users", su, map[string]any{"email": "BOB@example.com"}), http.StatusConflict, "/api/v1/users")
		kestraError(t, k.top(t, http.MethodPost, "/users", su, map[string]any{"email": "eve@example.com", "tenants": []string{"nowhere"}}), http.StatusNotFound, "/api/v1/users")
		// Nothing was created by the refused requests.
		if _, total := page(t, k.topOK(t, http.MethodGet, "/users?q=x@example", su, nil, http.StatusOK), kestraUserSummary); total != 0 {
			t.Fatal("a refused create left a user")
		}
	})

	t.Run("superadmin and restricted", func(t *testing.T) {
		kestraError(t, k.top(t, http.MethodGet, "/users", bobBasic, nil), http.StatusForbidden, "/api/v1/users")
		r := k.topOK(t, http.MethodPatch, "/users/"+bobID+"/superadmin", su, map[string]any{"superAdmin": true}, http.StatusOK)
		if r.object(t)["superAdmin"] != true {
			t.Fatalf("superadmin: %s", r.Body)
		}
		k.topOK(t, http.MethodGet, "/users", bobBasic, nil, http.StatusOK)
		if me := k.topOK(t, http.MethodGet, "/me", bobBasic, nil, http.StatusOK).object(t); me["superAdmin"] != true {
			t.Fatalf("me after superadmin: %v", me)
		}
		k.topOK(t, http.MethodPatch, "/users/"+bobID+"/superadmin", su, map[string]any{"superAdmin": false}, http.StatusOK)
		kestraError(t, k.top(t, http.MethodGet, "/users", bobBasic, nil), http.StatusForbidden, "/api/v1/users")

		r = k.topOK(t, http.MethodPatch, "/users/"+bobID+"/restricted", su, map[string]any{"restricted": true}, http.StatusOK)
		if r.object(t)["restricted"] != true {
			t.Fatalf("restricted: %s", r.Body)
		}
		kestraError(t, k.top(t, http.MethodPatch, "/me", bobBasic, map[string]any{"firstName": "Hacker"}), http.StatusForbidden, "/api/v1/me")
		kestraError(t, k.top(t, http.MethodPut, "/me/password", bobBasic, map[string]any{"oldPassword": "set by the superadmin 5", "newPassword": "restricted users cannot"}), http.StatusForbidden, "/api/v1/me/password")
		kestraError(t, k.top(t, http.MethodPost, "/me/api-tokens", bobBasic, map[string]any{"name": "nope"}), http.StatusForbidden, "/api/v1/me/api-tokens")
		if me := k.topOK(t, http.MethodGet, "/me", bobBasic, nil, http.StatusOK).object(t); me["restricted"] != true || me["profile"].(map[string]any)["firstName"] != "Bob" {
			t.Fatalf("restricted me: %v", me)
		}
		// The superadmin still may.
		k.topOK(t, http.MethodPatch, "/users/"+bobID, su, map[string]any{"firstName": "Bobby"}, http.StatusOK)
		k.topOK(t, http.MethodPatch, "/users/"+bobID+"/restricted", su, map[string]any{"restricted": false}, http.StatusOK)
		k.topOK(t, http.MethodPatch, "/me", bobBasic, map[string]any{"firstName": "Bob"}, http.StatusOK)
	})

	t.Run("user api tokens", func(t *testing.T) {
		p := "/users/" + bobID + "/api-tokens"
		r := k.topOK(t, http.MethodPost, p, su, map[string]any{"name": "for-bob"}, http.StatusOK)
		created := r.object(t)
		exactKeys(t, "created token", created, kestraTokenCreated)
		h.remember(created["fullToken"].(string), "bob's token from the superadmin")
		k.topOK(t, http.MethodGet, "/me", bearer(created["fullToken"].(string)), nil, http.StatusOK)
		r = k.topOK(t, http.MethodGet, p, su, nil, http.StatusOK)
		if strings.Contains(string(r.Body), created["fullToken"].(string)) || !strings.Contains(string(r.Body), created["id"].(string)) {
			t.Fatalf("list: %s", r.Body)
		}
		kestraError(t, k.top(t, http.MethodGet, p, bobBasic, nil), http.StatusForbidden, "/api/v1"+p)
		k.topOK(t, http.MethodDelete, p+"/"+created["id"].(string), su, nil, http.StatusNoContent)
		kestraError(t, k.top(t, http.MethodGet, "/me", bearer(created["fullToken"].(string)), nil), http.StatusUnauthorized, "/api/v1/me")
		kestraError(t, k.top(t, http.MethodDelete, p+"/"+created["id"].(string), su, nil), http.StatusNotFound, "/api/v1"+p+"/"+created["id"].(string))
	})

	t.Run("who may", func(t *testing.T) {
		for _, tc := range []struct {
			who, auth string
			want      int
		}{{"tenant admin", carolBasic, http.StatusForbidden}, {"member", danBasic, http.StatusForbidden}, {"anonymous", "", http.StatusUnauthorized}} {
			for _, c := range []struct{ method, path string }{
				{http.MethodGet, "/users"}, {http.MethodGet, "/users/" + bobID}, {http.MethodDelete, "/users/" + bobID},
				{http.MethodGet, "/tenants/search"}, {http.MethodGet, "/tenants/acme"}, {http.MethodDelete, "/tenants/acme"},
				{http.MethodGet, "/instance/settings"},
			} {
				r := k.h.send(t, httpReq{method: c.method, path: "/api/v1" + c.path, header: map[string]string{"Authorization": tc.auth}})
				kestraError(t, r, tc.want, "/api/v1"+c.path)
			}
			r := k.top(t, http.MethodPost, "/users", tc.auth, map[string]any{"email": "mallory@example.com"})
			kestraError(t, r, tc.want, "/api/v1/users")
			r = k.top(t, http.MethodPost, "/tenants", tc.auth, map[string]any{"id": "mallory", "name": "m", "deleted": false})
			kestraError(t, r, tc.want, "/api/v1/tenants")
		}
		// Every user has a /me.
		k.topOK(t, http.MethodGet, "/me", danBasic, nil, http.StatusOK)
	})

	t.Run("tenants", func(t *testing.T) {
		r := k.topOK(t, http.MethodPost, "/tenants", su, map[string]any{"id": "globex", "name": "Globex", "deleted": false}, http.StatusOK)
		exactKeys(t, "tenant", r.object(t), kestraTenant)
		for _, id := range []string{"users", "me", "tenants", "instance", "cluster", "Not-Valid"} {
			r := k.top(t, http.MethodPost, "/tenants", su, map[string]any{"id": id, "name": "x", "deleted": false})
			if f := fieldOf(t, kestraError(t, r, http.StatusUnprocessableEntity, "/api/v1/tenants")); f != "id" {
				t.Errorf("tenant id %q: path %q", id, f)
			}
		}
		kestraError(t, k.top(t, http.MethodPost, "/tenants", su, map[string]any{"id": "globex", "name": "again", "deleted": false}), http.StatusConflict, "/api/v1/tenants")
		kestraError(t, k.top(t, http.MethodPost, "/tenants", su, map[string]any{"id": "x1", "name": "x", "deleted": false, "storageType": "s3"}), http.StatusUnprocessableEntity, "/api/v1/tenants")
		r = k.topOK(t, http.MethodGet, "/tenants/search?q=GLOB&page=1&size=10", su, nil, http.StatusOK)
		if res, total := page(t, r, kestraTenant); total != 1 || res[0]["name"] != "Globex" {
			t.Fatalf("search: %s", r.Body)
		}
		r = v.topOK(t, http.MethodPut, "/tenants/globex", su, map[string]any{"id": "globex", "name": "Globex Corp", "deleted": false}, http.StatusOK)
		if r.object(t)["name"] != "Globex Corp" {
			t.Fatalf("update: %s", r.Body)
		}
		kestraError(t, k.top(t, http.MethodPut, "/tenants/globex", su, map[string]any{"id": "other", "name": "x", "deleted": false}), http.StatusUnprocessableEntity, "/api/v1/tenants/globex")
		if got := k.topOK(t, http.MethodGet, "/tenants/globex", su, nil, http.StatusOK).object(t); got["name"] != "Globex Corp" || got["deleted"] != false {
			t.Fatalf("get: %v", got)
		}
		// The new tenant's managed roles are seeded.
		erin := k.topOK(t, http.MethodPost, "/users", su, map[string]any{"email": "erin@example.com", "password": "erin's long password 6", "tenants": []string{"globex"}}, http.StatusCreated).object(t)
		h.remember("erin's long password 6", "erin's password")
		h.bindAsOperator(t, "globex", authz.RoleTenantAdmin, events.SubjectUser, erin["id"].(string), events.Scope{})
		erinBasic := basicAuth("erin@example.com", "erin's long password 6")
		k.topOK(t, http.MethodGet, "/globex/roles/search", erinBasic, nil, http.StatusOK)
		erinToken := k.topOK(t, http.MethodPost, "/users/"+erin["id"].(string)+"/api-tokens", su, map[string]any{"name": "erin"}, http.StatusOK).object(t)["fullToken"].(string)
		h.remember(erinToken, "erin's token")
		_, saToken := h.principalIn(t, "globex", erinToken, "globex-robot")
		k.send(t, http.MethodGet, "/api/v1/globex/service-accounts", bearer(saToken), nil)

		k.topOK(t, http.MethodDelete, "/tenants/globex", su, nil, http.StatusNoContent)
		kestraError(t, k.top(t, http.MethodGet, "/tenants/globex", su, nil), http.StatusNotFound, "/api/v1/tenants/globex")
		kestraError(t, k.top(t, http.MethodDelete, "/tenants/globex", su, nil), http.StatusNotFound, "/api/v1/tenants/globex")
		if _, total := page(t, k.topOK(t, http.MethodGet, "/tenants/search?q=glob", su, nil, http.StatusOK), kestraTenant); total != 0 {
			t.Fatal("a deleted tenant is listed")
		}
		kestraError(t, k.top(t, http.MethodPost, "/tenants", su, map[string]any{"id": "globex", "name": "reborn", "deleted": false}), http.StatusConflict, "/api/v1/tenants")
		// Nobody acts in it any more: its users lose access, its service
		// accounts' tokens stop working.
		kestraError(t, k.top(t, http.MethodGet, "/globex/roles/search", erinBasic, nil), http.StatusForbidden, "/api/v1/globex/roles/search")
		kestraError(t, k.top(t, http.MethodGet, "/globex/service-accounts", bearer(saToken), nil), http.StatusUnauthorized, "/api/v1/globex/service-accounts")
		if me := k.topOK(t, http.MethodGet, "/me", erinBasic, nil, http.StatusOK).object(t); len(me["tenants"].([]any)) != 0 {
			t.Fatalf("erin's tenants after the deletion: %v", me["tenants"])
		}
		kestraError(t, k.top(t, http.MethodPut, "/users/"+erin["id"].(string), su, map[string]any{"email": "erin@example.com", "tenants": []string{"globex"}}), http.StatusNotFound, "/api/v1/users/"+erin["id"].(string))
	})

	t.Run("instance settings", func(t *testing.T) {
		// A Keyhold extension, not in Kestra's document: not recorded.
		r := h.do(t, http.MethodGet, "/api/v1/instance/settings", root.token, nil)
		expectStatus(t, r, http.StatusOK, "instance settings")
		got := r.object(t)
		exactKeys(t, "instance settings", got, []string{"apiTokenDefaultLifetime", "apiTokenMaxLifetime", "credentialDefaultLifetime", "credentialMaxLifetime", "mail", "serviceAccountScopeLevels"})
		if got["apiTokenDefaultLifetime"] != "PT2160H" || got["apiTokenMaxLifetime"] != "PT8760H" || got["credentialDefaultLifetime"] != "PT2160H" {
			t.Fatalf("defaults: %s", r.Body)
		}
		if levels := fmt.Sprint(got["serviceAccountScopeLevels"]); levels != "[NAMESPACE TENANT]" {
			t.Fatalf("scope levels %s", levels)
		}
		// How mail is sent is shown, never set here: the server's flags say.
		m := got["mail"].(map[string]any)
		exactKeys(t, "mail settings", m, []string{"from", "publicUrl", "transport"})
		if m["transport"] != "OUTBOX" || !strings.HasPrefix(m["publicUrl"].(string), "http://") {
			t.Fatalf("mail settings %v", m)
		}
		if same := h.do(t, http.MethodGet, "/v1/api/instance", root.token, nil); same.Status != http.StatusOK || string(same.Body) != string(r.Body) {
			t.Fatalf("/instance differs from /instance/settings: %d %s", same.Status, same.Body)
		}
		r = h.do(t, http.MethodPut, "/api/v1/instance", root.token, map[string]any{"mail": map[string]any{"transport": "SMTP"}})
		if f := fieldOf(t, kestraError(t, r, http.StatusUnprocessableEntity, "/api/v1/instance")); f != "mail" {
			t.Errorf("mail settings set through the API: path %q", f)
		}
		r = h.do(t, http.MethodPut, "/api/v1/instance", root.token, map[string]any{"serviceAccountScopeLevels": []string{"PLANET"}})
		if f := fieldOf(t, kestraError(t, r, http.StatusUnprocessableEntity, "/api/v1/instance")); f != "serviceAccountScopeLevels" {
			t.Errorf("unknown scope level: path %q", f)
		}
		r = h.do(t, http.MethodPut, "/api/v1/instance", root.token, map[string]any{"credentialDefaultLifetime": "P7D", "credentialMaxLifetime": "P30D", "serviceAccountScopeLevels": []string{"NAMESPACE"}})
		expectStatus(t, r, http.StatusOK, "settings for new tenants")
		if got := r.object(t); got["credentialDefaultLifetime"] != "PT168H" || got["credentialMaxLifetime"] != "PT720H" || fmt.Sprint(got["serviceAccountScopeLevels"]) != "[NAMESPACE]" {
			t.Fatalf("after setting new tenants' settings: %s", r.Body)
		}
		r = h.do(t, http.MethodPut, "/v1/api/instance/settings", root.token, map[string]any{"apiTokenMaxLifetime": "P30D"})
		if f := fieldOf(t, kestraError(t, r, http.StatusUnprocessableEntity, "/v1/api/instance/settings")); f != "apiTokenDefaultLifetime" {
			t.Errorf("default above max: path %q", f)
		}
		r = h.do(t, http.MethodPut, "/api/v1/instance/settings", root.token, map[string]any{"apiTokenDefaultLifetime": "thirty"})
		if f := fieldOf(t, kestraError(t, r, http.StatusUnprocessableEntity, "/api/v1/instance/settings")); f != "apiTokenDefaultLifetime" {
			t.Errorf("bad duration: path %q", f)
		}
		r = h.do(t, http.MethodPut, "/api/v1/instance/settings", root.token, map[string]any{"apiTokenDefaultLifetime": "P1D"})
		expectStatus(t, r, http.StatusOK, "set default")
		if got := r.object(t); got["apiTokenDefaultLifetime"] != "PT24H" || got["apiTokenMaxLifetime"] != "PT8760H" {
			t.Fatalf("after set: %s", r.Body)
		}
		if got := h.do(t, http.MethodGet, "/api/v1/instance/settings", root.token, nil).object(t); got["apiTokenDefaultLifetime"] != "PT24H" {
			t.Fatalf("read back: %v", got)
		}
		created := k.topOK(t, http.MethodPost, "/me/api-tokens", danBasic, map[string]any{"name": "daily"}, http.StatusOK).object(t)
		h.remember(created["fullToken"].(string), "dan's token")
		r = k.topOK(t, http.MethodGet, "/me/api-tokens", danBasic, nil, http.StatusOK)
		var list struct {
			Results []struct {
				ExpiresAt time.Time `json:"expiresAt"`
			} `json:"results"`
		}
		r.decode(t, &list)
		if len(list.Results) != 1 || time.Until(list.Results[0].ExpiresAt) > 24*time.Hour {
			t.Fatalf("a token without maxAge gets the instance's default: %s", r.Body)
		}
	})

	t.Run("moved paths", func(t *testing.T) {
		for _, prefix := range []string{"/api/v1", "/v1/api"} {
			for _, tc := range []struct {
				method, path string
				names        []string
			}{
				{http.MethodGet, "/acme/me", []string{prefix + "/me"}},
				{http.MethodPost, "/acme/me/api-tokens", []string{prefix + "/me"}},
				{http.MethodGet, "/acme/users", []string{prefix + "/users", prefix + "/acme/tenant-access", prefix + "/acme/service-accounts"}},
				{http.MethodDelete, "/acme/users/" + bobID, []string{prefix + "/users", prefix + "/acme/tenant-access", prefix + "/acme/service-accounts"}},
				{http.MethodGet, "/acme/users/" + bobID + "/api-tokens", []string{prefix + "/users", prefix + "/acme/tenant-access"}},
				{http.MethodGet, "/cluster", []string{prefix + "/instance"}},
				{http.MethodGet, "/cluster/workergroups", []string{prefix + "/instance"}},
				{http.MethodGet, "/tenants/acme/invitations", []string{prefix + "/acme/invitations"}},
				{http.MethodPost, "/tenants/acme/namespaces/company", []string{prefix + "/acme/namespaces"}},
				{http.MethodGet, "/tenants/acme/bindings/search", []string{prefix + "/acme/bindings"}},
			} {
				for _, auth := range []string{su, ""} {
					r := k.h.send(t, httpReq{method: tc.method, path: prefix + tc.path, header: map[string]string{"Authorization": auth}})
					msg, _ := kestraError(t, r, http.StatusNotFound, prefix+tc.path)["message"].(string)
					for _, n := range tc.names {
						if !strings.Contains(msg, n) {
							t.Errorf("%s %s%s: message %q does not name %s", tc.method, prefix, tc.path, msg, n)
						}
					}
				}
			}
		}
		// What stays: group membership of a user, role and group aliases.
		k.ok(t, http.MethodPut, "/users/"+bobID+"/groups", root.token, map[string]any{"groupIds": []string{}}, http.StatusNoContent)
		k.send(t, http.MethodGet, "/api/v1/tenants/acme/roles/search", su, nil)
		if r := k.h.do(t, http.MethodGet, "/api/v1/tenants/acme/groups/search", root.token, nil); r.Status != http.StatusOK {
			t.Fatalf("group alias: %s", r)
		}
	})

	t.Run("delete user", func(t *testing.T) {
		k.topOK(t, http.MethodDelete, "/users/"+bobID, su, nil, http.StatusNoContent)
		kestraError(t, k.top(t, http.MethodGet, "/users/"+bobID, su, nil), http.StatusNotFound, "/api/v1/users/"+bobID)
		kestraError(t, k.top(t, http.MethodGet, "/me", bobBasic, nil), http.StatusUnauthorized, "/api/v1/me")
		r := k.top(t, http.MethodDelete, "/users/"+root.userID, su, nil)
		kestraError(t, r, http.StatusUnprocessableEntity, "/api/v1/users/"+root.userID)
	})

	h.assertNoSecretsStored(t)
}
