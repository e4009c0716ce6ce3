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

// With ShowPersonal the trail shows a user's personal data decrypted in
// place of the ciphertext, and erased once the user's key is destroyed;
// without it, the ciphertext as stored.
func TestAuditShowsPersonalData(t *testing.T) {
	store, _ := testenv.Store(t)
	personal := privacy.NewMemory()
	cmds, err := commands.New(store, commands.WithPersonalData(personal))
	testenv.Must(t, err, "commands")
	ctx := context.Background()
	sys := commands.Meta{Caller: auth.System()}
	res, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "ann", Email: "ann@acme.test", DisplayName: "Ann Lee"})
	testenv.Must(t, err, "create")
	id := res.User.ID()

	created := func(a *query.Audit) map[string]json.RawMessage {
		t.Helper()
		evs, _, err := a.Events(ctx, auth.System(), query.AuditFilter{Tenant: events.InstanceTenant, Aggregate: id, Type: "iam.user.created"})
		testenv.Must(t, err, "audit")
		if len(evs) != 1 {
			t.Fatalf("%d created events", len(evs))
		}
		var data map[string]json.RawMessage
		testenv.Must(t, json.Unmarshal(evs[0].Data, &data), "data")
		return data
	}
	shown := query.NewAudit(store, nil, nil, query.ShowPersonal(personal))
	raw := query.NewAudit(store, nil, nil)

	if d := created(raw); d["personal_enc"] == nil || d["personal"] != nil {
		t.Fatalf("without ShowPersonal: %v", d)
	}
	d := created(shown)
	if d["personal_enc"] != nil || !strings.Contains(string(d["personal"]), `"display_name":"Ann Lee"`) {
		t.Fatalf("with ShowPersonal: %v", d)
	}
	_, err = cmds.ErasePersonalData.Handle(ctx, commands.ErasePersonalData{Meta: sys, PrincipalID: id})
	testenv.Must(t, err, "erase")
	d = created(shown)
	if d["personal_enc"] != nil || strings.Contains(string(d["personal"]), "Ann") || !strings.Contains(string(d["personal"]), events.ErasedMarker) {
		t.Fatalf("after the erase: %v", d)
	}
}
