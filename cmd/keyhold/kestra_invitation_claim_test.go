package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
)

// TestKestraInvitationNotClaimedByEmail: a user who sets its own email to
// an invited address (nothing verifies it) sees the invitation in
// /me/invitations but not its link, so it cannot accept what was mailed
// to that address.
func TestKestraInvitationNotClaimedByEmail(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.kestraAdmin(t, "acme")
	k := newKestraAPI(t, h, "acme", "/api/v1")
	ctx := context.Background()
	const evePW = "a long password for eve the squatter"
	h.remember(evePW, "eve's password")
	eve, err := h.srv.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: commands.Meta{Caller: auth.System()}, Username: "eve", Email: "eve@example.com", Password: evePW, Tenants: []string{"acme"}})
	h.applied(t, eve.Sequence, err, "create eve")
	inv := k.ok(t, http.MethodPost, "/invitations", a.token, map[string]any{"email": "victim@example.com", "roles": []map[string]any{{"id": "tenant-admin"}}}, http.StatusCreated).object(t)["id"].(string)
	token := h.invitationToken(t, "acme", inv)

	expectStatus(t, k.send(t, http.MethodPatch, "/api/v1/me", basicAuth("eve", evePW), map[string]any{"email": "victim@example.com"}), http.StatusOK, "eve takes the address")
	mine := k.send(t, http.MethodGet, "/api/v1/me/invitations", basicAuth("eve", evePW), nil)
	expectStatus(t, mine, http.StatusOK, "eve's invitations")
	list := items(t, mine)
	if len(list) != 1 || list[0]["id"] != inv {
		t.Fatalf("eve's invitations %s", mine.Body)
	}
	if _, ok := list[0]["link"]; ok || strings.Contains(string(mine.Body), token) {
		t.Fatalf("/me/invitations shows the token: %s", mine.Body)
	}
}
