package main

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
)

var (
	kestraUserAccess   = []string{"auths", "description", "displayName", "groups", "id", "username"}
	kestraTenantAccess = []string{"displayName", "groups", "roles", "superAdmin", "tenantId", "userId", "username"}
)

// TestKestraTenantAccess: a tenant administrator grants, reads and revokes
// users' access to the tenant; revoking it stops the user's credentials
// there, its personal API token included.
func TestKestraTenantAccess(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	other := h.bootstrap(t, "other")
	ctx := context.Background()
	sys := commands.Meta{Caller: auth.System()}
	created, err := h.srv.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "carol", Email: "carol@acme.example", DisplayName: "Carol C", Tenants: []string{"other"}})
	h.applied(t, created.Sequence, err, "create carol")
	carol := created.User.ID()
	tok, err := h.srv.cmds.IssueAPIToken.Handle(ctx, commands.IssueAPIToken{Meta: sys, UserID: carol})
	h.applied(t, tok.Sequence, err, "carol's token")
	h.remember(tok.Token, "carol's API token")
	k := newKestraAPI(t, h, "acme", "/api/v1")
	base := "/tenant-access"

	// Before the grant carol's token cannot reach acme at all.
	kestraError(t, k.do(t, http.MethodGet, "/roles/search", tok.Token, nil), http.StatusForbidden, k.path("/roles/search"))
	for _, c := range []struct {
		name  string
		body  any
		want  int
		field string
	}{
		{"unknown email", map[string]any{"email": "nobody@acme.example"}, http.StatusNotFound, ""},
		{"not an email", map[string]any{"email": "carol"}, http.StatusUnprocessableEntity, "email"},
		{"no email", map[string]any{}, http.StatusUnprocessableEntity, "email"},
		{"unknown field", map[string]any{"email": "carol@acme.example", "role": "x"}, http.StatusUnprocessableEntity, "role"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := kestraError(t, k.do(t, http.MethodPost, base, a.token, c.body), c.want, k.path(base))
			if c.field != "" && fieldOf(t, m) != c.field {
				t.Errorf("field %q, want %q", fieldOf(t, m), c.field)
			}
		})
	}
	r := k.ok(t, http.MethodGet, base+"?type=STANDARD", a.token, nil, http.StatusOK)
	if _, total := page(t, r, kestraUserAccess); total != 1 {
		t.Fatalf("refused grants changed access: %s", r.Body)
	}
	// Emails match ignoring case, as at sign-in.
	k.ok(t, http.MethodPost, base, a.token, map[string]any{"email": "Carol@ACME.example"}, http.StatusNoContent)
	kestraError(t, k.do(t, http.MethodPost, base, a.token, map[string]any{"email": "carol@acme.example"}), http.StatusConflict, k.path(base))
	h.bindAsOperator(t, "acme", "viewer", events.SubjectUser, carol, events.Scope{})
	k.ok(t, http.MethodGet, "/roles/search", tok.Token, nil, http.StatusOK)
	// Having access is not the right to manage it.
	kestraError(t, k.do(t, http.MethodGet, base, tok.Token, nil), http.StatusForbidden, k.path(base))
	kestraError(t, k.do(t, http.MethodDelete, base+"/"+a.userID, tok.Token, nil), http.StatusForbidden, k.path(base+"/"+a.userID))
	// Nor does another tenant's administrator reach this tenant's.
	kestraError(t, k.do(t, http.MethodGet, base, other.token, nil), http.StatusForbidden, k.path(base))

	r = k.ok(t, http.MethodGet, base+"?q=car&type=STANDARD", a.token, nil, http.StatusOK)
	res, total := page(t, r, kestraUserAccess)
	want := map[string]any{"id": carol, "username": "carol", "displayName": "Carol C", "description": "", "groups": []any{}, "auths": []any{}}
	if total != 1 || !reflect.DeepEqual(res[0], want) {
		t.Fatalf("search %s, want %v", r.Body, want)
	}
	robot := k.ok(t, http.MethodPost, "/service-accounts", a.token, map[string]any{"name": "robot"}, http.StatusOK).object(t)["id"].(string)
	for _, c := range []struct {
		query string
		ids   []string
	}{
		{"?type=SERVICE_ACCOUNT", []string{robot}},
		{"?type=STANDARD&sort=username:asc", []string{a.userID, carol}},
		{"?size=2&page=2&sort=id:asc", nil},
	} {
		r := k.ok(t, http.MethodGet, base+c.query, a.token, nil, http.StatusOK)
		res, total := page(t, r, kestraUserAccess)
		var got []string
		for _, it := range res {
			got = append(got, it["id"].(string))
		}
		if c.ids != nil && (!reflect.DeepEqual(got, c.ids) || total != len(c.ids)) {
			t.Errorf("%s: %v (total %d), want %v", c.query, got, total, c.ids)
		}
		if c.ids == nil && (total != 3 || len(got) != 1) {
			t.Errorf("%s: page %v of %d, want 1 of 3", c.query, got, total)
		}
	}
	kestraError(t, k.do(t, http.MethodGet, base+"?type=ROBOT", a.token, nil), http.StatusBadRequest, k.path(base))
	// Who may read tenant access but not service accounts sees users only.
	reader := k.ok(t, http.MethodPost, "/roles", a.token, map[string]any{"name": "access-reader", "permissions": map[string][]string{"TENANT_ACCESS": {"READ"}}}, http.StatusOK).object(t)["id"].(string)
	h.bindAsOperator(t, "acme", reader, events.SubjectUser, carol, events.Scope{})
	r = k.ok(t, http.MethodGet, base, tok.Token, nil, http.StatusOK)
	if res, total := page(t, r, kestraUserAccess); total != 2 || res[0]["id"] == robot || res[1]["id"] == robot {
		t.Fatalf("a reader of tenant access sees service accounts: %s", r.Body)
	}
	kestraError(t, k.do(t, http.MethodGet, base+"?type=SERVICE_ACCOUNT", tok.Token, nil), http.StatusForbidden, k.path(base))

	if got := items(t, k.ok(t, http.MethodPost, base+"/autocomplete", a.token, map[string]any{"q": "CAR"}, http.StatusOK)); len(got) != 1 || got[0]["id"] != carol {
		t.Fatalf("autocomplete: %v", got)
	}

	// A group's binding shows as the group's.
	gid := k.ok(t, http.MethodPost, "/groups", a.token, map[string]any{"name": "auditors", "membersId": []string{carol}}, http.StatusOK).object(t)["id"].(string)
	k.ok(t, http.MethodPost, "/bindings", a.token, map[string]any{"type": "GROUP", "externalId": gid, "roleId": "auditor"}, http.StatusOK)
	r = k.ok(t, http.MethodGet, base+"/"+carol, a.token, nil, http.StatusOK)
	got := r.object(t)
	exactKeys(t, "tenant access", got, kestraTenantAccess)
	roles, _ := got["roles"].([]any)
	groups, _ := got["groups"].([]any)
	if got["tenantId"] != "acme" || got["userId"] != carol || got["superAdmin"] != false || len(roles) != 3 || len(groups) != 1 {
		t.Fatalf("tenant access %s", r.Body)
	}
	// Roles come ordered by name: access-reader, auditor, viewer.
	auditor := roles[1].(map[string]any)
	if auditor["id"] != "auditor" || auditor["origin"] != "GROUP" || auditor["sourceId"] != gid {
		t.Fatalf("a group's role %v, want auditor through group %s", auditor, gid)
	}
	viewer := roles[2].(map[string]any)
	wantRole := map[string]any{"id": "viewer", "name": "viewer", "namespace": "", "origin": "BINDING", "sourceId": viewer["sourceId"],
		"permissions": []any{map[string]any{"permission": "ROLE", "actions": []any{"READ"}}}}
	if !reflect.DeepEqual(viewer, wantRole) || viewer["sourceId"] == "" {
		t.Fatalf("role assignment %v, want %v", viewer, wantRole)
	}

	k.ok(t, http.MethodDelete, base+"/"+carol, a.token, nil, http.StatusNoContent)
	kestraError(t, k.do(t, http.MethodDelete, base+"/"+carol, a.token, nil), http.StatusNotFound, k.path(base+"/"+carol))
	kestraError(t, k.do(t, http.MethodGet, base+"/"+carol, a.token, nil), http.StatusNotFound, k.path(base+"/"+carol))
	// The token is useless in acme at once, and still carol's elsewhere.
	kestraError(t, k.do(t, http.MethodGet, "/roles/search", tok.Token, nil), http.StatusForbidden, k.path("/roles/search"))
	if r := h.do(t, http.MethodGet, "/api/v1/other/roles/search", tok.Token, nil); r.Status == http.StatusUnauthorized {
		t.Fatalf("revoking acme's access broke carol's token in other: %s", r)
	}
	// PUT grants again, by id.
	k.ok(t, http.MethodPut, base+"/"+carol, a.token, nil, http.StatusCreated)
	k.ok(t, http.MethodPut, base+"/"+carol, a.token, nil, http.StatusCreated)
	k.ok(t, http.MethodGet, base+"/"+carol, a.token, nil, http.StatusOK)
	kestraError(t, k.do(t, http.MethodPut, base+"/01m8xksbk34yhjaxftq8ek86fd", a.token, nil), http.StatusNotFound, k.path(base+"/01m8xksbk34yhjaxftq8ek86fd"))
	h.assertNoSecretsStored(t)
}

// TestKestraServiceAccountTokens: a service account's API token is shown
// once, authenticates as the account with its bindings in its tenant only,
// and stops working when deleted or when its account is.
func TestKestraServiceAccountTokens(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	h.bootstrap(t, "other")
	k := newKestraAPI(t, h, "acme", "/api/v1")
	id := k.ok(t, http.MethodPost, "/service-accounts", a.token, map[string]any{"name": "deployer"}, http.StatusOK).object(t)["id"].(string)
	h.bindAsOperator(t, "acme", "viewer", events.SubjectServiceAccount, id, events.Scope{})
	base := "/service-accounts/" + id + "/api-tokens"

	// A lifetime too long is refused naming the bound, in days.
	const malformed, tooLong = "ISO 8601 duration", " days"
	for _, c := range []struct {
		name  string
		body  map[string]any
		field string
		says  string
	}{
		{"capital name", map[string]any{"name": "CI"}, "name", ""},
		{"no name", map[string]any{"maxAge": "PT1H"}, "name", ""},
		{"hours without T", map[string]any{"name": "ci", "maxAge": "P1H"}, "maxAge", malformed},
		{"months", map[string]any{"name": "ci", "maxAge": "P1M"}, "maxAge", malformed},
		{"years", map[string]any{"name": "ci", "maxAge": "P1Y"}, "maxAge", malformed},
		{"negative", map[string]any{"name": "ci", "maxAge": "PT-1H"}, "maxAge", malformed},
		{"fraction", map[string]any{"name": "ci", "maxAge": "PT1.5H"}, "maxAge", malformed},
		{"zero", map[string]any{"name": "ci", "maxAge": "PT0S"}, "maxAge", malformed},
		{"empty T", map[string]any{"name": "ci", "maxAge": "P1DT"}, "maxAge", malformed},
		{"beyond the instance's maximum", map[string]any{"name": "ci", "maxAge": "P400D"}, "maxAge", tooLong},
		{"beyond a century", map[string]any{"name": "ci", "maxAge": "P99999D"}, "maxAge", tooLong},
		{"more seconds than a duration holds", map[string]any{"name": "ci", "maxAge": "PT999999999999S"}, "maxAge", tooLong},
		{"more digits than an int64 holds", map[string]any{"name": "ci", "maxAge": "P99999999999999999999999D"}, "maxAge", tooLong},
		{"extended", map[string]any{"name": "ci", "extended": true}, "extended", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := kestraError(t, k.do(t, http.MethodPost, base, a.token, c.body), http.StatusUnprocessableEntity, k.path(base))
			if f := fieldOf(t, m); f != c.field {
				t.Errorf("field %q, want %q", f, c.field)
			}
			if msg, _ := m["message"].(string); !strings.Contains(msg, c.says) {
				t.Errorf("message %q does not say %q", msg, c.says)
			}
		})
	}
	r := k.ok(t, http.MethodGet, base, a.token, nil, http.StatusOK)
	if got := r.object(t)["results"].([]any); len(got) != 0 {
		t.Fatalf("refused creations left tokens: %s", r.Body)
	}

	before := time.Now()
	r = k.ok(t, http.MethodPost, base, a.token, map[string]any{"name": "ci-deploy", "description": "for CI", "maxAge": "P1DT2H", "extended": false}, http.StatusOK)
	made := r.object(t)
	exactKeys(t, "created token", made, kestraTokenCreated)
	token := made["fullToken"].(string)
	h.remember(token, "service account API token")
	if made["name"] != "ci-deploy" || len(token) < 40 {
		t.Fatalf("created %s", r.Body)
	}
	r = k.ok(t, http.MethodGet, base, a.token, nil, http.StatusOK)
	var list struct {
		Results []map[string]any `json:"results"`
	}
	r.decode(t, &list)
	if len(list.Results) != 1 {
		t.Fatalf("list %s", r.Body)
	}
	exactKeys(t, "listed token", list.Results[0], kestraTokenItem)
	exp, _ := time.Parse(time.RFC3339, list.Results[0]["expiresAt"].(string))
	if want := before.Add(26 * time.Hour); exp.Before(want.Add(-time.Minute)) || exp.After(want.Add(time.Minute)) {
		t.Errorf("expiresAt %v, want about %v", exp, want)
	}
	if list.Results[0]["id"] != made["id"] || list.Results[0]["description"] != "for CI" {
		t.Errorf("listed %v", list.Results[0])
	}

	// The token acts as the account: viewer reads roles, nothing more, and
	// only in acme.
	k.ok(t, http.MethodGet, "/roles/search", token, nil, http.StatusOK)
	kestraError(t, k.do(t, http.MethodGet, "/groups/search", token, nil), http.StatusForbidden, k.path("/groups/search"))
	kestraError(t, h.do(t, http.MethodGet, "/api/v1/other/roles/search", token, nil), http.StatusForbidden, "/api/v1/other/roles/search")
	if r := h.do(t, http.MethodGet, saBase, token, nil); r.Status == http.StatusUnauthorized {
		t.Fatalf("the token does not authenticate in the k0rdent API: %s", r)
	}

	// Non-administrators learn nothing; scope-down keeps an administrator
	// from taking the rights of an account that holds more than it does.
	_, vtoken := h.principal(t, a.token, "viewer-sa", "viewer")
	kestraError(t, k.do(t, http.MethodPost, base, vtoken, map[string]any{"name": "x"}), http.StatusNotFound, k.path(base))
	kestraError(t, k.do(t, http.MethodGet, base, vtoken, nil), http.StatusNotFound, k.path(base))
	kestraError(t, k.do(t, http.MethodDelete, base+"/"+made["id"].(string), vtoken, nil), http.StatusNotFound, k.path(base+"/"+made["id"].(string)))
	vault := h.role(t, "acme", "vault", "vault.secrets.*")
	vaulted := k.ok(t, http.MethodPost, "/service-accounts", a.token, map[string]any{"name": "vaulted"}, http.StatusOK).object(t)["id"].(string)
	h.bindAsOperator(t, "acme", vault, events.SubjectServiceAccount, vaulted, events.Scope{})
	_, ops := h.principal(t, a.token, "ops", "tenant-admin")
	kestraError(t, k.do(t, http.MethodPost, "/service-accounts/"+vaulted+"/api-tokens", ops, map[string]any{"name": "x"}), http.StatusForbidden, k.path("/service-accounts/"+vaulted+"/api-tokens"))
	opsMade := k.ok(t, http.MethodPost, base, ops, map[string]any{"name": "by-ops"}, http.StatusOK).object(t)
	h.remember(opsMade["fullToken"].(string), "API token made by ops")
	k.ok(t, http.MethodDelete, base+"/"+opsMade["id"].(string), ops, nil, http.StatusOK)

	tokenPath := base + "/" + made["id"].(string)
	k.ok(t, http.MethodDelete, tokenPath, a.token, nil, http.StatusOK)
	kestraError(t, k.do(t, http.MethodGet, "/roles/search", token, nil), http.StatusUnauthorized, k.path("/roles/search"))
	kestraError(t, k.do(t, http.MethodDelete, tokenPath, a.token, nil), http.StatusNotFound, k.path(tokenPath))

	// A disabled account's tokens are refused until it is enabled again.
	setStatus := func(status string) {
		t.Helper()
		res, err := h.srv.cmds.UpdateServiceAccount.Handle(context.Background(), commands.UpdateServiceAccount{Meta: operatorIn("acme"), ID: id, Status: &status})
		h.applied(t, res.Sequence, err, "set status "+status)
	}
	third := k.ok(t, http.MethodPost, base, a.token, map[string]any{"name": "third"}, http.StatusOK).object(t)["fullToken"].(string)
	h.remember(third, "third service account API token")
	setStatus(commands.StatusDisabled)
	kestraError(t, k.do(t, http.MethodGet, "/roles/search", third, nil), http.StatusUnauthorized, k.path("/roles/search"))
	setStatus(commands.StatusActive)
	k.ok(t, http.MethodGet, "/roles/search", third, nil, http.StatusOK)

	// A keyed request issues one token, shown by the first answer only;
	// the recorded answer holds no token (assertNoSecretsStored).
	keyed := func() map[string]any {
		t.Helper()
		r := h.send(t, httpReq{method: http.MethodPost, path: k.path(base), token: a.token, body: map[string]any{"name": "keyed"}, header: map[string]string{"Idempotency-Key": "token-1"}})
		expectStatus(t, r, http.StatusOK, "keyed token")
		return r.object(t)
	}
	first := keyed()
	h.remember(first["fullToken"].(string), "keyed service account API token")
	if again := keyed(); again["id"] != first["id"] || again["fullToken"] != nil {
		t.Fatalf("replayed %v, first %v", again, first)
	}
	r = k.ok(t, http.MethodGet, base, a.token, nil, http.StatusOK)
	r.decode(t, &list)
	if len(list.Results) != 2 {
		t.Fatalf("a keyed request issued more than one token: %s", r.Body)
	}

	// Tokens die with their account.
	second := k.ok(t, http.MethodPost, base, a.token, map[string]any{"name": "second"}, http.StatusOK).object(t)["fullToken"].(string)
	h.remember(second, "second service account API token")
	k.ok(t, http.MethodGet, "/roles/search", second, nil, http.StatusOK)
	k.ok(t, http.MethodDelete, "/service-accounts/"+id, a.token, nil, http.StatusOK)
	kestraError(t, k.do(t, http.MethodGet, "/roles/search", second, nil), http.StatusUnauthorized, k.path("/roles/search"))
	var rows int
	if err := h.env.db.SQL().Get(&rows, `SELECT count(*) FROM service_account_api_tokens`); err != nil || rows != 0 {
		t.Fatalf("token rows after the account's deletion: %d (%v)", rows, err)
	}
	h.assertNoSecretsStored(t)
}
