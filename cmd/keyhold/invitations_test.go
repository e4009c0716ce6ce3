package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/mail"
)

// Key sets of Kestra's invitation shapes as Keyhold answers them.
var (
	// invitationKeys: ApiInvitationDetail of a pending invitation in a
	// list (no link there).
	invitationKeys = []string{"email", "expiredAt", "groups", "id", "roles", "sentAt", "status", "superAdmin", "tenantId"}
	// invitationLinkKeys: one pending invitation, with its link.
	invitationLinkKeys = []string{"email", "expiredAt", "groups", "id", "link", "roles", "sentAt", "status", "superAdmin", "tenantId"}
	// acceptedInvitationKeys: an accepted one, with acceptedAt, no link.
	acceptedInvitationKeys = []string{"acceptedAt", "email", "expiredAt", "groups", "id", "roles", "sentAt", "status", "superAdmin", "tenantId"}
	// myInvitationKeys: Kestra's Invitation, as /me/invitations lists it
	// (never with its link).
	myInvitationKeys = []string{"bindings", "deleted", "email", "expiredAt", "groupIds", "id", "isExpired", "sentAt", "status", "superAdmin", "tenantId", "userType"}
	acceptedKeys     = []string{"id", "tenantId", "userId"}
)

// invitationToken waits for the mail serve sends for invitation id
// (into the outbox) and returns the token its link carries; the test
// remembers it as a secret.
func (h *harness) invitationToken(t *testing.T, tenant, id string) string {
	t.Helper()
	envs, _, err := h.env.store.Load(context.Background(), tenant, events.AggregateInvitation, id)
	if err != nil || len(envs) == 0 {
		t.Fatalf("load invitation %s: %d events, %v", id, len(envs), err)
	}
	box := mail.OpenOutbox(h.cfg.outboxDir())
	var raw []byte
	eventually(t, "the invitation's mail", func() bool {
		raw, err = box.Read(envs[0].ID)
		return err == nil
	})
	text, err := mail.TextPart(raw)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(text, auth.InvitationPath)
	if !ok {
		t.Fatalf("no link in the mail:\n%s", text)
	}
	token := strings.Fields(after)[0]
	h.rememberInvitationToken(t, token)
	return token
}

// rememberInvitationToken records the token and its MAC, the part that
// is secret, for the secrets check.
func (h *harness) rememberInvitationToken(t *testing.T, token string) {
	t.Helper()
	_, _, mac, err := auth.ParseInvitationToken(token)
	if err != nil {
		t.Fatalf("token %q: %v", token, err)
	}
	h.remember(token, "invitation token")
	h.remember(hex.EncodeToString(mac), "invitation token's MAC")
}

// keyed is do with an Idempotency-Key, recorded.
func (k kestraAPI) keyed(t *testing.T, method, p, token string, body any, key string) httpResp {
	t.Helper()
	r := k.h.send(t, httpReq{method: method, path: k.path(p), token: token, body: body, header: map[string]string{"Idempotency-Key": key}})
	k.rec.add(kestraExchange{method: method, path: k.path(p), body: bodyJSON(t, body), resp: r})
	return r
}

// bodyJSON is v as a recorded request body: nil when there is none.
func bodyJSON(t *testing.T, v any) []byte {
	t.Helper()
	if v == nil {
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestKestraInvitations(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.kestraAdmin(t, "acme")
	o := h.kestraAdmin(t, "other")
	k := newKestraAPI(t, h, "acme", "/api/v1")
	ko := newKestraAPI(t, h, "other", "/api/v1")
	ctx := context.Background()
	sys := commands.Meta{Caller: auth.System()}

	reader := k.ok(t, http.MethodPost, "/roles", a.token, map[string]any{"name": "flow-reader", "permissions": map[string]any{"FLOW": []string{"READ"}}}, http.StatusOK).object(t)["id"].(string)
	gid := k.ok(t, http.MethodPost, "/groups", a.token, map[string]any{"name": "team"}, http.StatusOK).object(t)["id"].(string)

	const email = "newcomer@example.com"
	invite := k.keyed(t, http.MethodPost, "/invitations", a.token, map[string]any{
		"email": "Newcomer@Example.com", "createUserIfNotExist": true, "groups": []string{gid},
		"roles": []map[string]any{{"id": reader, "namespaces": []string{"company.team"}}, {"id": "viewer"}},
	}, "invite-newcomer")
	expectStatus(t, invite, http.StatusCreated, "invite")
	inv := invite.object(t)
	exactKeys(t, "created invitation", inv, invitationLinkKeys)
	id := inv["id"].(string)
	if inv["email"] != email || inv["status"] != "PENDING" || inv["tenantId"] != "acme" || inv["superAdmin"] != false ||
		!strings.Contains(inv["link"].(string), auth.InvitationPath+auth.PrefixInvitation) || invite.Header.Get("Location") != k.path("/invitations/"+id) {
		t.Fatalf("created %v, Location %q", inv, invite.Header.Get("Location"))
	}
	if roles := inv["roles"].([]any); len(roles) != 2 || roles[0].(map[string]any)["name"] != "flow-reader" {
		t.Fatalf("roles %v", roles)
	}
	if groups := inv["groups"].([]any); len(groups) != 1 || groups[0].(map[string]any)["name"] != "team" {
		t.Fatalf("groups %v", groups)
	}
	sent, _ := time.Parse(time.RFC3339, inv["sentAt"].(string))
	expires, _ := time.Parse(time.RFC3339, inv["expiredAt"].(string))
	// The expiry is set to the second when the command runs, sentAt when
	// the event is appended, moments later on a loaded machine.
	if d := expires.Sub(sent); d < commands.DefaultInvitationLifetime-5*time.Second || d > commands.DefaultInvitationLifetime+time.Second {
		t.Fatalf("sentAt %v, expiredAt %v: want 7 days apart", sent, expires)
	}
	token := h.invitationToken(t, "acme", id)
	if !strings.HasSuffix(inv["link"].(string), token) {
		t.Fatalf("link %v does not end with the mail's token", inv["link"])
	}
	// Not recorded for the check against Kestra's document: the replay's
	// link is null.
	replay := h.send(t, httpReq{method: http.MethodPost, path: k.path("/invitations"), token: a.token, body: map[string]any{
		"email": "Newcomer@Example.com", "createUserIfNotExist": true, "groups": []string{gid},
		"roles": []map[string]any{{"id": reader, "namespaces": []string{"company.team"}}, {"id": "viewer"}},
	}, header: map[string]string{"Idempotency-Key": "invite-newcomer"}})
	if replay.Status != http.StatusCreated || replay.Header.Get("Idempotent-Replayed") != "true" || strings.Contains(string(replay.Body), token) {
		t.Fatalf("replay %s, headers %v: want 201 without the link's token", replay, replay.Header)
	}

	t.Run("bad bodies are 422 naming the field, and change nothing", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			body  any
			field string
		}{
			{"no email", map[string]any{}, "email"},
			{"not an address", map[string]any{"email": "someone"}, "email"},
			{"unknown role", map[string]any{"email": "x@example.com", "roles": []map[string]any{{"id": "root"}}}, "roles[0].id"},
			{"bad namespace", map[string]any{"email": "x@example.com", "roles": []map[string]any{{"id": "viewer", "namespaces": []string{"Bad Space"}}}}, "roles[0].namespaces[0]"},
			{"unknown group", map[string]any{"email": "x@example.com", "groups": []string{"nope"}}, "groups[0]"},
			{"unknown field", map[string]any{"email": "x@example.com", "link": "x"}, "link"},
			{"wrong type", map[string]any{"email": 7}, "email"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := kestraError(t, k.do(t, http.MethodPost, "/invitations", a.token, tc.body), http.StatusUnprocessableEntity, k.path("/invitations"))
				if f := fieldOf(t, m); f != tc.field {
					t.Fatalf("field %q, want %q: %v", f, tc.field, m)
				}
			})
		}
		_, total := page(t, k.ok(t, http.MethodGet, "/invitations/search?page=1&size=10", a.token, nil, http.StatusOK), invitationKeys)
		if total != 1 {
			t.Fatalf("%d invitations after refused bodies, want 1", total)
		}
	})

	t.Run("one pending invitation per address", func(t *testing.T) {
		kestraError(t, k.do(t, http.MethodPost, "/invitations", a.token, map[string]any{"email": email}), http.StatusConflict, k.path("/invitations"))
		kestraError(t, k.do(t, http.MethodPost, "/invitations", a.token, map[string]any{"email": "admin@acme.example"}), http.StatusConflict, k.path("/invitations"))
	})

	t.Run("read: get, search, by email; other tenants see none", func(t *testing.T) {
		got := k.ok(t, http.MethodGet, "/invitations/"+id, a.token, nil, http.StatusOK).object(t)
		exactKeys(t, "invitation", got, invitationLinkKeys)
		if got["link"] != inv["link"] {
			t.Fatalf("link %v, at creation %v", got["link"], inv["link"])
		}
		for _, tc := range []struct {
			query string
			total int
		}{
			{"", 1}, {"&status=PENDING", 1}, {"&status=ACCEPTED", 0}, {"&email=NEWCOMER", 1}, {"&q=nobody", 0}, {"&sort=email:desc", 1},
		} {
			items, total := page(t, k.ok(t, http.MethodGet, "/invitations/search?page=1&size=10"+tc.query, a.token, nil, http.StatusOK), invitationKeys)
			if total != tc.total || len(items) != tc.total {
				t.Fatalf("%q: total %d, %d items, want %d", tc.query, total, len(items), tc.total)
			}
		}
		kestraError(t, k.do(t, http.MethodGet, "/invitations/search?page=1&size=10&status=pending", a.token, nil), http.StatusBadRequest, k.path("/invitations/search"))
		// What is no address is bad input, not a search that finds nothing.
		for _, bad := range []string{"notanemail", "Ann%20%3Cann%40example.com%3E", "a%40b%40c"} {
			r := k.do(t, http.MethodGet, "/invitations/email/"+bad, a.token, nil)
			if f := fieldOf(t, kestraError(t, r, http.StatusBadRequest, k.path("/invitations/email/"+bad))); f != "email" {
				t.Errorf("invitations of %q: field %q, want email", bad, f)
			}
		}
		byEmail := items(t, k.ok(t, http.MethodGet, "/invitations/email/Newcomer%40example.com", a.token, nil, http.StatusOK))
		if len(byEmail) != 1 {
			t.Fatalf("%d by email, want 1", len(byEmail))
		}
		exactKeys(t, "by email", byEmail[0], invitationKeys)
		// Another tenant's administrator: its own tenant holds none of them.
		kestraError(t, ko.do(t, http.MethodGet, "/invitations/"+id, o.token, nil), http.StatusNotFound, ko.path("/invitations/"+id))
		kestraError(t, ko.do(t, http.MethodDelete, "/invitations/"+id, o.token, nil), http.StatusNotFound, ko.path("/invitations/"+id))
		if _, total := page(t, ko.ok(t, http.MethodGet, "/invitations/search?page=1&size=10", o.token, nil, http.StatusOK), invitationKeys); total != 0 {
			t.Fatalf("other tenant sees %d invitations", total)
		}
		kestraError(t, k.do(t, http.MethodGet, "/invitations/"+id, o.token, nil), http.StatusForbidden, k.path("/invitations/"+id))
	})

	t.Run("scope-down: nobody invites with what they could not grant", func(t *testing.T) {
		inviter := h.role(t, "acme", "inviter", "iam.invitations.create", "iam.bindings.create")
		u, err := h.srv.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "ivy", Email: "ivy@acme.example", Tenants: []string{"acme"}})
		h.applied(t, u.Sequence, err, "create ivy")
		h.bindAsOperator(t, "acme", inviter, events.SubjectUser, u.User.ID(), events.Scope{})
		tok, err := h.srv.cmds.IssueAPIToken.Handle(ctx, commands.IssueAPIToken{Meta: sys, UserID: u.User.ID()})
		h.applied(t, tok.Sequence, err, "token for ivy")
		h.remember(tok.Token, "ivy's API token")
		for _, tc := range []struct {
			name string
			body map[string]any
		}{
			{"a role it does not hold", map[string]any{"email": "p@example.com", "roles": []map[string]any{{"id": "viewer"}}}},
			{"superadmin", map[string]any{"email": "p@example.com", "superAdmin": true}},
			{"a group it may not add to", map[string]any{"email": "p@example.com", "groups": []string{gid}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				kestraError(t, k.do(t, http.MethodPost, "/invitations", tok.Token, tc.body), http.StatusForbidden, k.path("/invitations"))
			})
		}
		// Inviting without reading invitations: only the id of what was made.
		r := k.ok(t, http.MethodPost, "/invitations", tok.Token, map[string]any{"email": "p@example.com"}, http.StatusCreated)
		got := r.object(t)
		exactKeys(t, "invitation made without reading rights", got, []string{"id"})
		if !strings.HasPrefix(r.Header.Get("Location"), k.path("/invitations/"+got["id"].(string))) {
			t.Fatalf("plain invite by ivy: %s, Location %q", r.Body, r.Header.Get("Location"))
		}
		kestraError(t, k.do(t, http.MethodGet, "/invitations/search?page=1&size=10", tok.Token, nil), http.StatusForbidden, k.path("/invitations/search"))
	})

	const pw = "a long password for the newcomer"
	h.remember(pw, "newcomer's password")
	t.Run("register from the invitation, sign in with Basic, hold its roles and groups", func(t *testing.T) {
		create := "/api/v1/invitation/create/" + token
		for _, tc := range []struct {
			name  string
			body  any
			field string
		}{
			{"no password", map[string]any{"firstName": "Nia", "lastName": "Cole"}, "password"},
			{"weak password", map[string]any{"firstName": "Nia", "lastName": "Cole", "password": "short"}, "password"},
			{"no first name", map[string]any{"lastName": "Cole", "password": pw}, "firstName"},
			{"unknown field", map[string]any{"firstName": "Nia", "lastName": "Cole", "password": pw, "email": "x@example.com"}, "email"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := kestraError(t, k.send(t, http.MethodPost, create, "", tc.body), http.StatusUnprocessableEntity, create)
				if f := fieldOf(t, m); f != tc.field {
					t.Fatalf("field %q, want %q", f, tc.field)
				}
			})
		}
		// Another last character: the checksum no longer matches.
		last := "x"
		if strings.HasSuffix(token, last) {
			last = "y"
		}
		wrong := "/api/v1/invitation/create/" + token[:len(token)-1] + last
		kestraError(t, k.send(t, http.MethodPost, wrong, "", map[string]any{"firstName": "Nia", "lastName": "Cole", "password": pw}), http.StatusNotFound, wrong)
		r := k.send(t, http.MethodPost, create, "", map[string]any{"firstName": "Nia", "lastName": "Cole", "password": pw})
		expectStatus(t, r, http.StatusOK, "register")
		got := r.object(t)
		exactKeys(t, "registered", got, acceptedKeys)
		if got["id"] != id || got["tenantId"] != "acme" {
			t.Fatalf("registered %v", got)
		}
		userID := got["userId"].(string)
		kestraError(t, k.send(t, http.MethodPost, create, "", map[string]any{"firstName": "Nia", "lastName": "Cole", "password": pw}), http.StatusNotFound, create)

		// Basic sign-in with the invited address: viewer's right to list
		// roles holds across the tenant.
		req := httpReq{method: http.MethodGet, path: k.path("/roles/search?page=1&size=10"), header: map[string]string{"Authorization": basicAuth(email, pw)}}
		expectStatus(t, h.send(t, req), http.StatusOK, "newcomer lists roles")
		binds, _ := page(t, k.ok(t, http.MethodGet, "/bindings/search?page=1&size=10&id="+userID, a.token, nil, http.StatusOK), nil)
		seen := map[string]bool{}
		for _, b := range binds {
			ns, _ := b["namespace"].(string)
			seen[b["role"].(map[string]any)["id"].(string)+"@"+ns] = true
		}
		if len(binds) != 2 || !seen[reader+"@company.team"] || !seen["viewer@"] {
			t.Fatalf("newcomer's bindings %v", binds)
		}
		members, _ := page(t, k.ok(t, http.MethodGet, "/groups/"+gid+"/members?page=1&size=10", a.token, nil, http.StatusOK), nil)
		// Shown by first and last names, as /users shows them, having no display name.
		if len(members) != 1 || members[0]["id"] != userID || members[0]["username"] != email || members[0]["displayName"] != "Nia Cole" {
			t.Fatalf("group members %v", members)
		}
		if u := binds[0]["user"].(map[string]any); u["displayName"] != "Nia Cole" {
			t.Fatalf("binding's user %v", u)
		}
		acc := k.ok(t, http.MethodGet, "/invitations/"+id, a.token, nil, http.StatusOK).object(t)
		exactKeys(t, "accepted invitation", acc, acceptedInvitationKeys)
		if acc["status"] != "ACCEPTED" || acc["email"] != email {
			t.Fatalf("accepted %v", acc)
		}
		mine := k.send(t, http.MethodGet, "/api/v1/me/invitations", basicAuth(email, pw), nil)
		expectStatus(t, mine, http.StatusOK, "newcomer's invitations")
		if n := len(items(t, mine)); n != 0 {
			t.Fatalf("%d pending invitations after accepting, want 0", n)
		}
	})

	t.Run("a signed-in user accepts an invitation to their address, under either prefix", func(t *testing.T) {
		const annPW = "a long password for ann the existing"
		h.remember(annPW, "ann's password")
		ann, err := h.srv.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "ann", Email: "ann@example.com", Password: annPW})
		h.applied(t, ann.Sequence, err, "create ann")
		r := k.ok(t, http.MethodPost, "/invitations", a.token, map[string]any{"email": "ann@example.com", "roles": []map[string]any{{"id": "viewer"}}}, http.StatusCreated)
		annInv := r.object(t)["id"].(string)
		annToken := h.invitationToken(t, "acme", annInv)
		kv := newKestraAPI(t, h, "acme", "/v1/api")
		mine := kv.send(t, http.MethodGet, "/v1/api/me/invitations", basicAuth("ann", annPW), nil)
		expectStatus(t, mine, http.StatusOK, "ann's invitations")
		list := items(t, mine)
		if len(list) != 1 {
			t.Fatalf("ann has %d invitations, want 1", len(list))
		}
		exactKeys(t, "my invitation", list[0], myInvitationKeys)
		if list[0]["id"] != annInv || list[0]["status"] != "PENDING" || list[0]["isExpired"] != false || strings.Contains(string(mine.Body), annToken) {
			t.Fatalf("ann's invitation %v", list[0])
		}
		if b := list[0]["bindings"].([]any); len(b) != 1 || b[0].(map[string]any)["roleId"] != "viewer" || b[0].(map[string]any)["externalId"] != ann.User.ID() {
			t.Fatalf("bindings %v", b)
		}
		// Not for registering: the invitation does not allow it.
		create := "/v1/api/invitation/create/" + annToken
		kestraError(t, kv.send(t, http.MethodPost, create, "", map[string]any{"firstName": "A", "lastName": "B", "password": annPW}), http.StatusForbidden, create)
		accept := "/v1/api/invitation/accept/" + annToken
		// Nor for anyone else.
		kestraError(t, kv.send(t, http.MethodPost, accept, basicAuth(email, pw), nil), http.StatusForbidden, accept)
		kestraError(t, kv.send(t, http.MethodPost, accept, "", nil), http.StatusUnauthorized, accept)
		got := kv.send(t, http.MethodPost, accept, basicAuth("ann", annPW), nil)
		expectStatus(t, got, http.StatusOK, "ann accepts")
		exactKeys(t, "accepted", got.object(t), acceptedKeys)
		req := httpReq{method: http.MethodGet, path: k.path("/roles/search?page=1&size=10"), header: map[string]string{"Authorization": basicAuth("ann", annPW)}}
		expectStatus(t, h.send(t, req), http.StatusOK, "ann lists acme's roles")
		kestraError(t, kv.send(t, http.MethodPost, accept, basicAuth("ann", annPW), nil), http.StatusNotFound, accept)
		// Erasing ann erases the address her accepted invitation shows.
		er, err := h.srv.cmds.ErasePersonalData.Handle(ctx, commands.ErasePersonalData{Meta: sys, PrincipalID: ann.User.ID()})
		h.applied(t, er.Sequence, err, "erase ann")
		if e := k.ok(t, http.MethodGet, "/invitations/"+annInv, a.token, nil, http.StatusOK).object(t)["email"]; e != events.ErasedMarker {
			t.Fatalf("accepted invitation of an erased user shows %v", e)
		}
	})

	t.Run("an expired link is refused", func(t *testing.T) {
		past, err := commands.New(h.env.store, commands.WithPersonalData(h.env.personal), commands.WithAuthorizer(h.srv.dir.Authorizer()),
			commands.WithClock(func() time.Time { return time.Now().Add(-commands.DefaultInvitationLifetime - time.Hour) }))
		if err != nil {
			t.Fatal(err)
		}
		res, err := past.CreateInvitation.Handle(ctx, commands.CreateInvitation{Meta: operatorIn("acme"), Email: "late@example.com", CreateUser: true})
		h.applied(t, res.Sequence, err, "old invitation")
		old := res.Invitation.ID()
		oldToken := h.invitationTokenUnsent(t, "acme", old)
		got := k.ok(t, http.MethodGet, "/invitations/"+old, a.token, nil, http.StatusOK).object(t)
		exactKeys(t, "expired invitation", got, invitationKeys)
		if got["status"] != "EXPIRED" {
			t.Fatalf("status %v, want EXPIRED", got["status"])
		}
		if _, total := page(t, k.ok(t, http.MethodGet, "/invitations/search?page=1&size=10&status=EXPIRED", a.token, nil, http.StatusOK), invitationKeys); total != 1 {
			t.Fatalf("%d expired, want 1", total)
		}
		create := "/api/v1/invitation/create/" + oldToken
		m := kestraError(t, k.send(t, http.MethodPost, create, "", map[string]any{"firstName": "L", "lastName": "T", "password": pw}), http.StatusNotFound, create)
		if !strings.Contains(m["message"].(string), "expired") {
			t.Fatalf("message %v", m["message"])
		}
		// The address may be invited again.
		k.ok(t, http.MethodPost, "/invitations", a.token, map[string]any{"email": "late@example.com"}, http.StatusCreated)
	})

	t.Run("deleting ends the link and erases the address", func(t *testing.T) {
		body := map[string]any{"email": "gone@example.com", "createUserIfNotExist": true}
		r := k.keyed(t, http.MethodPost, "/invitations", a.token, body, "invite-gone")
		expectStatus(t, r, http.StatusCreated, "invite")
		del := r.object(t)["id"].(string)
		delToken := h.invitationToken(t, "acme", del)
		k.ok(t, http.MethodDelete, "/invitations/"+del, a.token, nil, http.StatusNoContent)
		// A retry of the keyed create still replays its status, without
		// the erased address.
		replay := k.keyed(t, http.MethodPost, "/invitations", a.token, body, "invite-gone")
		if replay.Status != http.StatusCreated || replay.Header.Get("Idempotent-Replayed") != "true" ||
			strings.Contains(string(replay.Body), "gone@example.com") || replay.Header.Get("Keyhold-Redacted") == "" {
			t.Fatalf("replay after the deletion %s, headers %v: want 201 without the address", replay, replay.Header)
		}
		kestraError(t, k.do(t, http.MethodGet, "/invitations/"+del, a.token, nil), http.StatusNotFound, k.path("/invitations/"+del))
		kestraError(t, k.do(t, http.MethodDelete, "/invitations/"+del, a.token, nil), http.StatusNotFound, k.path("/invitations/"+del))
		create := "/api/v1/invitation/create/" + delToken
		kestraError(t, k.send(t, http.MethodPost, create, "", map[string]any{"firstName": "G", "lastName": "O", "password": pw}), http.StatusNotFound, create)
		envs, _, err := h.env.store.Load(ctx, "acme", events.AggregateInvitation, del)
		if err != nil || len(envs) != 2 {
			t.Fatalf("%d events, %v", len(envs), err)
		}
		e, err := events.Decode(envs[0])
		if err != nil {
			t.Fatal(err)
		}
		p, err := h.env.personal.Personal(ctx, del, e)
		if err != nil || !p.Erased {
			t.Fatalf("the deleted invitation's address reads %+v, %v: want erased", p, err)
		}
		if strings.Contains(string(envs[0].Data), "gone@") {
			t.Fatalf("the event holds the address in the clear: %s", envs[0].Data)
		}
		h.rememberPersonal(t, "gone@example.com")
	})

	t.Run("a rebuild of the read tables shows the same invitations", func(t *testing.T) {
		list := func() string {
			t.Helper()
			return string(k.ok(t, http.MethodGet, "/invitations/search?page=1&size=100&sort=id:asc", a.token, nil, http.StatusOK).Body)
		}
		before := list()
		if out, err := cli(t, h.cfg, h.natsAddr(), "projections", "rebuild"); err != nil {
			t.Fatalf("rebuild: %v\n%s", err, out)
		}
		if after := list(); after != before {
			t.Fatalf("after a rebuild:\n%s\nbefore:\n%s", after, before)
		}
	})

	t.Run("no token in the log, the tables or the server log", func(t *testing.T) {
		h.assertNoSecretsStored(t)
	})
}

// invitationTokenUnsent returns an invitation's token without a mail:
// the reaction sends none for an invitation that expired already.
func (h *harness) invitationTokenUnsent(t *testing.T, tenant, id string) string {
	t.Helper()
	token := h.env.personal.InvitationToken(tenant, id)
	h.rememberInvitationToken(t, token)
	return token
}

// rememberPersonal records personal data that must be in no table: the
// secrets check looks for it like for a secret.
func (h *harness) rememberPersonal(t *testing.T, value string) {
	t.Helper()
	h.remember(value, "erased personal data "+value)
}
