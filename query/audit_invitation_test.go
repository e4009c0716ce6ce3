package query_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/privacy"
	"github.com/keyhold/keyhold/query"
)

// The trail shows an invitation's address decrypted with ShowPersonal,
// and erased once the invitation is deleted (its key destroyed).
func TestAuditShowsInvitationAddress(t *testing.T) {
	store, _ := testenv.Store(t)
	personal := privacy.NewMemory()
	cmds, err := commands.New(store, commands.WithPersonalData(personal))
	testenv.Must(t, err, "commands")
	ctx := context.Background()
	meta := commands.Meta{Caller: auth.SystemIn("acme")}
	res, err := cmds.CreateInvitation.Handle(ctx, commands.CreateInvitation{Meta: meta, Email: "ann@acme.test"})
	testenv.Must(t, err, "invite")
	id := res.Invitation.ID()
	shown := query.NewAudit(store, nil, nil, query.ShowPersonal(personal))
	data := func() map[string]json.RawMessage {
		t.Helper()
		evs, _, err := shown.Events(ctx, auth.System(), query.AuditFilter{Tenant: "acme", Aggregate: id, Type: "iam.invitation.created"})
		testenv.Must(t, err, "audit")
		if len(evs) != 1 {
			t.Fatalf("%d created events", len(evs))
		}
		var d map[string]json.RawMessage
		testenv.Must(t, json.Unmarshal(evs[0].Data, &d), "data")
		return d
	}
	if d := data(); d["personal_enc"] != nil || !strings.Contains(string(d["personal"]), `"email":"ann@acme.test"`) {
		t.Fatalf("shown: %v", d)
	}
	_, err = cmds.DeleteInvitation.Handle(ctx, commands.DeleteInvitation{Meta: meta, ID: id})
	testenv.Must(t, err, "delete")
	if d := data(); strings.Contains(string(d["personal"]), "ann@") || !strings.Contains(string(d["personal"]), events.ErasedMarker) {
		t.Fatalf("after the delete: %v", d)
	}
}
