package projections

import (
	_ "embed"
	"encoding/json"

	"github.com/lib/pq"

	"github.com/keyhold/keyhold/events"
)

// invitations.sql holds the invitations table, part of the IAM
// projection, written in its batches.
//
//go:embed invitations.sql
var invitationsSchema string

// invitationStatements plans what one invitation event changes; p is the
// address an InvitationCreated carries, read through the key store.
// Roles marshal without error: they hold strings only.
func invitationStatements(env events.Envelope, e events.Event, p events.Personal) []statement {
	t, id, at := env.Tenant, env.Subject, stamp(env.Time)
	switch e := e.(type) {
	case events.InvitationCreated:
		roles := e.Roles
		if roles == nil {
			roles = []events.InvitationRole{}
		}
		raw, _ := json.Marshal(roles)
		groups := e.Groups
		if groups == nil {
			groups = []string{}
		}
		return []statement{{`INSERT INTO invitations (tenant, id, email, roles, groups, superadmin, create_user, invited_by, sent_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
			[]any{t, id, p.Email, string(raw), pq.Array(groups), e.Superadmin, e.CreateUser, e.InvitedBy, at, stamp(e.ExpiresAt)}}}
	case events.InvitationAccepted:
		// The invitation's data key is destroyed after this event: the
		// row must not keep the address either.
		return []statement{{`UPDATE invitations SET accepted_by = $3, accepted_at = $4, email = $5 WHERE tenant = $1 AND id = $2`,
			[]any{t, id, e.UserID, at, events.ErasedMarker}}}
	case events.InvitationDeleted:
		return []statement{{`DELETE FROM invitations WHERE tenant = $1 AND id = $2`, []any{t, id}}}
	case events.TenantDeleted:
		// A deleted tenant's invitations can no longer be accepted.
		return []statement{{`DELETE FROM invitations WHERE tenant = $1`, []any{id}}}
	}
	return nil
}
