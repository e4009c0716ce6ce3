package commands

import (
	"context"
	"fmt"

	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

// ErasePersonalData erases a user's personal data for good: the events
// stay, but their encrypted personal fields can never be read again
// (crypto-shredding).
type ErasePersonalData struct {
	Meta
	// PrincipalID is the user id.
	PrincipalID string
}

// ErasePersonalDataResult says what Erase did.
type ErasePersonalDataResult struct {
	PrincipalID string
	// Erased is the personal data that was erased (empty when an earlier
	// erase had done it), so that the caller can scrub copies outside the
	// log, such as replayable responses. Never log it.
	Erased events.Personal
	// Sequence is the log sequence of the erase batch, 0 when an earlier
	// erase had recorded it and only the key was destroyed now.
	Sequence uint64
}

// ErasePersonalDataHandler handles ErasePersonalData.
type ErasePersonalDataHandler struct{ base }

// Handle records PersonalDataErased with the release of the user's
// username and email in one atomic batch, then destroys the user's data
// key. Only an instance superadmin (or the operator) may. It is
// idempotent: a user already erased records nothing and its key is
// destroyed again, so a run that failed between the two steps is finished
// by running it again. A deleted user can be erased too; an id that was
// never a user is ErrNotFound.
//
// Events written before personal data was encrypted keep their plaintext
// in the log; readers show them as erased, but the raw log still holds it.
func (h ErasePersonalDataHandler) Handle(ctx context.Context, cmd ErasePersonalData) (ErasePersonalDataResult, error) {
	if !cmd.Caller.Can(h.authz, authz.PersonalDataErase, "", authz.Instance).Allowed {
		return ErasePersonalDataResult{}, ruleError(ErrForbidden, "", "only a superadmin may erase personal data")
	}
	if err := validUserID(cmd.PrincipalID); err != nil {
		return ErasePersonalDataResult{}, err
	}
	if h.personal == nil {
		return ErasePersonalDataResult{}, errNoKeyStore
	}
	id := cmd.PrincipalID
	k := key{events.InstanceTenant, events.AggregateUser, id}
	var erased events.Personal
	seq, err := h.repo.execute(ctx, cmd.Meta, k, func(c *change) error {
		st, useq, err := h.repo.load(ctx, k, 0, func() state { return newUser(id) })
		if err != nil {
			return err
		}
		u := st.(*User)
		switch {
		case !u.exists && !u.deleted:
			return notFound("user", id)
		case u.erased:
			return nil
		}
		erased = u.personal
		if err := h.releaseLogins(ctx, c, u); err != nil {
			return err
		}
		c.record(k, u, useq, events.PersonalDataErased{})
		return nil
	})
	if err != nil {
		return ErasePersonalDataResult{}, err
	}
	// After the event, never before: the batch needed the plaintext to
	// find the reservations it releases.
	if err := h.personal.Erase(ctx, id); err != nil {
		return ErasePersonalDataResult{}, fmt.Errorf("%w: the erase is recorded but the key is not destroyed yet (run it again): %v", ErrUnavailable, err)
	}
	return ErasePersonalDataResult{PrincipalID: id, Sequence: seq, Erased: erased}, nil
}
