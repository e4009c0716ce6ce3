package projections_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/projections"
)

// An account's credential_expiries always list the expiries of its rows in
// credentials, however the credentials' events fall into batches: with
// the account's creation, after it, deleted in the batch that created
// them or in a later one, or gone with the account.
func TestCredentialExpiriesFollowCredentials(t *testing.T) {
	db := testenv.DB(t)
	iam := projections.IAM{}
	_, err := db.Exec(iam.Schema())
	testenv.Must(t, err, "schema")
	ctx := context.Background()
	conn, err := db.Connx(ctx)
	testenv.Must(t, err, "conn")
	defer conn.Close()

	actor := events.Actor{ID: "01admin", Kind: "user"}
	at := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	var seq uint64
	ev := func(subject string, e events.Event) events.Envelope {
		seq++
		env := events.New("acme", subject, actor, "req", e)
		env.Sequence = seq
		return env
	}
	created := func(id string) events.Envelope {
		return ev(id, events.ServiceAccountCreated{ClientID: "khc-" + id, DisplayName: id, Scope: events.Scope{Level: events.ScopeTenant, Target: "acme"}, Roles: []string{}, Status: "active"})
	}
	cred := func(sa, id string, days int) events.Envelope {
		return ev(sa, events.CredentialCreated{CredentialID: id, Verifier: "v", ExpiresAt: at.AddDate(0, 0, days).Add(123456789 * time.Nanosecond)})
	}
	gone := func(sa, id string) events.Envelope { return ev(sa, events.CredentialDeleted{CredentialID: id}) }

	batches := []struct {
		name  string
		batch []events.Envelope
		want  map[string][]int // account -> days of its credentials
	}{
		{"created with the account, one deleted at once",
			[]events.Envelope{created("a"), cred("a", "a1", 30), cred("a", "a2", 10), cred("a", "a3", 20), gone("a", "a3"), created("b")},
			map[string][]int{"a": {10, 30}, "b": {}}},
		{"added to older accounts",
			[]events.Envelope{cred("a", "a4", 5), cred("b", "b1", 7), cred("b", "b2", 7)},
			map[string][]int{"a": {5, 10, 30}, "b": {7, 7}}},
		{"deleted later, one added and deleted in the batch",
			[]events.Envelope{gone("a", "a1"), gone("b", "b1"), cred("b", "b3", 1), gone("b", "b3")},
			map[string][]int{"a": {5, 10}, "b": {7}}},
		{"gone with its account, another account untouched",
			[]events.Envelope{created("c"), cred("c", "c1", 3), ev("a", events.ServiceAccountDeleted{})},
			map[string][]int{"b": {7}, "c": {3}}},
	}
	for _, b := range batches {
		t.Run(b.name, func(t *testing.T) {
			plan, err := iam.Plan(b.batch)
			testenv.Must(t, err, "plan")
			testenv.Must(t, plan.Write(ctx, conn), "write")
			type row struct {
				ID       string        `db:"id"`
				Expiries pq.Int64Array `db:"credential_expiries"`
				Rows     pq.Int64Array `db:"from_rows"`
			}
			var got []row
			testenv.Must(t, db.Select(&got, `SELECT id, credential_expiries, COALESCE((SELECT array_agg((extract(epoch FROM expires_at) * 1000000)::bigint ORDER BY expires_at)
				FROM credentials c WHERE c.tenant = s.tenant AND c.service_account_id = s.id), '{}') AS from_rows
				FROM service_accounts s ORDER BY id`), "read")
			if len(got) != len(b.want) {
				t.Fatalf("accounts %+v, want %v", got, b.want)
			}
			for _, r := range got {
				var want []int64
				for _, d := range b.want[r.ID] {
					want = append(want, at.AddDate(0, 0, d).Add(123456*time.Microsecond).UnixMicro())
				}
				if !slices.Equal([]int64(r.Expiries), want) || !slices.Equal([]int64(r.Rows), want) {
					t.Errorf("account %s: credential_expiries %v, credentials rows %v, want %v", r.ID, r.Expiries, r.Rows, want)
				}
			}
		})
	}
}
