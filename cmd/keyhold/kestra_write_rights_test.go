package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

// TestKestraWritesNeedOnlyTheirPermission checks that a member holding
// only a write's own Kestra permission gets the write's documented answer
// in full, as Kestra asks for no read permission besides, and that the
// membership rules the answers depend on still hold.
func TestKestraWritesNeedOnlyTheirPermission(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	f := &matrixFixture{h: h, byPermission: map[string]string{}}
	boot := h.bootstrap(t, "acme")
	k := newKestraAPI(t, h, "acme", "/api/v1")
	ctx := context.Background()
	// only returns the token of a new member holding exactly perm and verb.
	only := func(perm, verb string) string {
		t.Helper()
		r := k.ok(t, http.MethodPost, "/roles", boot.token, map[string]any{"name": f.unique("perm"), "permissions": need(perm, verb)}, http.StatusOK)
		_, token := f.user(t, "acme", r.object(t)["id"].(string))
		return token
	}
	group := func(name string) string {
		t.Helper()
		g, err := h.srv.cmds.CreateGroup.Handle(ctx, commands.CreateGroup{Meta: operatorIn("acme"), GroupInput: commands.GroupInput{Name: name}})
		h.applied(t, g.Sequence, err, "create group")
		return g.Group.ID()
	}
	empty, err := h.srv.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: operatorIn("acme"), RoleInput: commands.RoleInput{Name: "empty"}})
	h.applied(t, empty.Sequence, err, "create empty role")
	dana, email := f.freshUser(t, permitted, true)
	danaName := strings.TrimSuffix(email, "@acme.example") // freshUser's username
	other := group("dana-other")
	res, err := h.srv.cmds.SetGroupMember.Handle(ctx, commands.SetGroupMember{Meta: operatorIn("acme"), GroupID: other, MemberKind: events.SubjectUser, MemberID: dana})
	h.applied(t, res.Sequence, err, "add dana to a group")

	// groupsOf checks a member answer and returns its groups by id.
	groupsOf := func(t *testing.T, r httpResp) map[string]string {
		t.Helper()
		m := r.object(t)
		exactKeys(t, "member", m, kestraMember)
		if m["id"] != dana || m["username"] != danaName {
			t.Fatalf("member %v, want %s (%s)", m, dana, danaName)
		}
		out := map[string]string{}
		for _, g := range m["groups"].([]any) {
			g := g.(map[string]any)
			exactKeys(t, "membership", g, kestraMembership)
			out[g["id"].(string)] = g["membership"].(string)
		}
		return out
	}

	t.Run("bindings", func(t *testing.T) {
		token := only("BINDING", "CREATE")
		g := group("bound")
		b := k.ok(t, http.MethodPost, "/bindings", token, map[string]any{"type": "GROUP", "externalId": g, "roleId": empty.Role.ID()}, http.StatusOK).object(t)
		exactKeys(t, "group binding", b, []string{"group", "id", "role", "type"})
		if b["group"].(map[string]any)["name"] != "bound" || b["role"].(map[string]any)["name"] != "empty" {
			t.Errorf("binding %v: want group bound and role empty by name", b)
		}
		bulk := items(t, k.ok(t, http.MethodPost, "/bindings/bulk", token, []map[string]any{{"type": "USER", "externalId": dana, "roleId": empty.Role.ID()}}, http.StatusOK))
		if len(bulk) != 1 {
			t.Fatalf("bulk answered %d bindings, want 1", len(bulk))
		}
		exactKeys(t, "user binding", bulk[0], kestraUserBinding)
		u := bulk[0]["user"].(map[string]any)
		exactKeys(t, "binding user", u, kestraBindingUser)
		if u["id"] != dana || u["username"] != danaName {
			t.Errorf("binding user %v, want %s", u, danaName)
		}
		// The write does not grant reading bindings.
		kestraError(t, k.do(t, http.MethodGet, "/bindings/"+b["id"].(string), token, nil), http.StatusForbidden, k.path("/bindings/"+b["id"].(string)))
	})

	t.Run("members", func(t *testing.T) {
		g := group("joined")
		add, change, remove := only("GROUP_MEMBERSHIP", "CREATE"), only("GROUP_MEMBERSHIP", "UPDATE"), only("GROUP_MEMBERSHIP", "DELETE")
		got := groupsOf(t, k.ok(t, http.MethodPut, "/groups/"+g+"/members/"+dana, add, nil, http.StatusOK))
		if got[g] != "MEMBER" || got[other] != "MEMBER" {
			t.Errorf("after joining, groups %v: want %s and %s as MEMBER", got, g, other)
		}
		kestraError(t, k.do(t, http.MethodPut, "/groups/"+g+"/members/"+dana, add, nil), http.StatusConflict, k.path("/groups/"+g+"/members/"+dana))
		got = groupsOf(t, k.ok(t, http.MethodPut, "/groups/"+g+"/members/membership/"+dana+"?membership=OWNER", change, nil, http.StatusOK))
		if got[g] != "OWNER" {
			t.Errorf("after the change, groups %v: want %s as OWNER", got, g)
		}
		got = groupsOf(t, k.ok(t, http.MethodDelete, "/groups/"+g+"/members/"+dana, remove, nil, http.StatusOK))
		if _, in := got[g]; in || got[other] != "MEMBER" {
			t.Errorf("after leaving, groups %v: want only %s", got, other)
		}
		// No member any more: changing or removing it is a conflict.
		kestraError(t, k.do(t, http.MethodDelete, "/groups/"+g+"/members/"+dana, remove, nil), http.StatusConflict, k.path("/groups/"+g+"/members/"+dana))
		path := "/groups/" + g + "/members/membership/" + dana + "?membership=OWNER"
		kestraError(t, k.do(t, http.MethodPut, path, change, nil), http.StatusConflict, k.path("/groups/"+g+"/members/membership/"+dana))
		// Setting a user's groups: joins the listed ones, leaves nothing here.
		k.ok(t, http.MethodPut, "/users/"+dana+"/groups", add, map[string]any{"groupIds": []string{other, g}}, http.StatusNoContent)
		members, _ := page(t, k.ok(t, http.MethodGet, "/groups/"+g+"/members", boot.token, nil, http.StatusOK), kestraMember)
		if !slices.ContainsFunc(members, func(m map[string]any) bool { return m["id"] == dana }) {
			t.Errorf("members of %s after setting dana's groups: %v, want dana", g, members)
		}
		kestraError(t, k.do(t, http.MethodPut, "/users/"+dana+"/groups", add, map[string]any{"groupIds": []string{matrixNoSuchID}}), http.StatusNotFound, k.path("/users/"+dana+"/groups"))
		// Joining a third group would mean leaving the two, which needs
		// GROUP_MEMBERSHIP DELETE: refused, and the join with it.
		third := group("third")
		kestraError(t, k.do(t, http.MethodPut, "/users/"+dana+"/groups", add, map[string]any{"groupIds": []string{third}}), http.StatusForbidden, k.path("/users/"+dana+"/groups"))
		for gid, want := range map[string]bool{third: false, g: true, other: true} {
			members, _ := page(t, k.ok(t, http.MethodGet, "/groups/"+gid+"/members", boot.token, nil, http.StatusOK), kestraMember)
			if in := slices.ContainsFunc(members, func(m map[string]any) bool { return m["id"] == dana }); in != want {
				t.Errorf("after a refused change of dana's groups: member of %s %v, want %v", gid, in, want)
			}
		}
	})

	// A creation with memberships the caller may not make creates
	// nothing: no group or service account, and the group's name stays
	// free.
	t.Run("creation with refused memberships", func(t *testing.T) {
		creator := only("GROUP", "CREATE")
		kestraError(t, k.do(t, http.MethodPost, "/groups", creator, map[string]any{"name": "with-dana", "membersId": []string{dana}}), http.StatusForbidden, k.path("/groups"))
		groups, _ := page(t, k.ok(t, http.MethodGet, "/groups/search?q=with-dana", boot.token, nil, http.StatusOK), nil)
		if len(groups) != 0 {
			t.Fatalf("groups after a refused creation: %v", groups)
		}
		k.ok(t, http.MethodPost, "/groups", creator, map[string]any{"name": "with-dana"}, http.StatusOK)

		saCreator := only("SERVICE_ACCOUNT", "CREATE")
		kestraError(t, k.do(t, http.MethodPost, "/service-accounts", saCreator, map[string]any{"name": "joined-sa", "groups": []map[string]any{{"id": other}}}), http.StatusForbidden, k.path("/service-accounts"))
		var n int
		testenv.Must(t, h.srv.env.db.SQL().Get(&n, `SELECT count(*) FROM service_accounts WHERE tenant = 'acme' AND display_name = 'joined-sa'`), "count")
		if n != 0 {
			t.Fatalf("%d service accounts after a refused creation", n)
		}
		// Nor did the refused ones reach the log, to be undone there.
		for typ, name := range map[string]string{"iam.group.created": "with-dana", "iam.service_account.created": "joined-sa"} {
			r := h.do(t, http.MethodGet, auditPath+"?type="+typ+"&limit=500", boot.token, nil)
			expectStatus(t, r, http.StatusOK, "audit "+typ)
			var page pageJSON[events.Envelope]
			r.decode(t, &page)
			created := 0
			for _, env := range page.Items {
				if strings.Contains(string(env.Data), `"`+name+`"`) {
					created++
				}
			}
			if want := map[string]int{"with-dana": 1, "joined-sa": 0}[name]; created != want {
				t.Errorf("%d %s events for %s in the log, want %d", created, typ, name, want)
			}
		}
	})

	t.Run("service account", func(t *testing.T) {
		token := only("SERVICE_ACCOUNT", "UPDATE")
		sa, err := h.srv.cmds.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: operatorIn("acme"), DisplayName: "before", Scope: events.Scope{Level: events.ScopeTenant}})
		h.applied(t, sa.Sequence, err, "create service account")
		id := sa.ServiceAccount.ID()
		m := k.ok(t, http.MethodPut, "/service-accounts/"+id, token, map[string]any{"name": "after", "description": "renamed", "groups": []any{}}, http.StatusOK).object(t)
		exactKeys(t, "service account", m, kestraSA)
		if m["id"] != id || m["name"] != "after" || m["description"] != "renamed" || len(m["groups"].([]any)) != 0 {
			t.Errorf("updated service account %v", m)
		}
		kestraError(t, k.do(t, http.MethodPut, "/service-accounts/"+matrixNoSuchID, token, map[string]any{"name": "x", "groups": []any{}}), http.StatusNotFound, k.path("/service-accounts/"+matrixNoSuchID))
		// Joining a group that holds a right the caller lacks is refused
		// (scope-down), and the new name with it.
		flows := k.ok(t, http.MethodPost, "/roles", boot.token, map[string]any{"name": f.unique("flows"), "permissions": need("FLOW", "CREATE")}, http.StatusOK).object(t)
		privileged := group("privileged")
		b, err := h.srv.cmds.CreateBinding.Handle(ctx, commands.CreateBinding{Meta: operatorIn("acme"), Role: flows["id"].(string), SubjectKind: events.SubjectGroup, SubjectID: privileged, Scope: events.Scope{Level: events.ScopeTenant}})
		h.applied(t, b.Sequence, err, "bind the group")
		role := k.ok(t, http.MethodPost, "/roles", boot.token, map[string]any{"name": f.unique("perm"), "permissions": perms{"SERVICE_ACCOUNT": {"UPDATE"}, "GROUP_MEMBERSHIP": {"CREATE"}}}, http.StatusOK).object(t)
		_, joiner := f.user(t, "acme", role["id"].(string))
		kestraError(t, k.do(t, http.MethodPut, "/service-accounts/"+id, joiner, map[string]any{"name": "renamed-again", "groups": []map[string]any{{"id": privileged}}}), http.StatusForbidden, k.path("/service-accounts/"+id))
		// A refused request does not wait for the read side: catch up with
		// the log before reading, or a write it made would not show yet.
		last, err := h.srv.env.store.LastSequence(ctx)
		h.applied(t, last, err, "catch up with the log")
		if got := k.ok(t, http.MethodGet, "/service-accounts/"+id, boot.token, nil, http.StatusOK).object(t); got["name"] != "after" || len(got["groups"].([]any)) != 0 {
			t.Errorf("after a refused update: %v", got)
		}
	})
	t.Cleanup(func() { h.assertNoSecretsStored(t) })
}
