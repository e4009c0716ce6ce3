package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
)

// Numbered kinds: the resources that have numbers besides their ids.
const (
	NumberedUser           = "user"
	NumberedServiceAccount = "service_account"
	NumberedRole           = "role"
	NumberedGroup          = "group"
)

// numbered maps each numbered kind to its table, whether its rows belong
// to a tenant, and the right that reading one needs.
var numbered = map[string]struct {
	table    string
	tenanted bool
	action   string
}{
	NumberedUser:           {"users", false, authz.UsersGet},
	NumberedServiceAccount: {"service_accounts", true, authz.ServiceAccountsGet},
	NumberedRole:           {"roles", true, authz.RolesGet},
	NumberedGroup:          {"groups", true, authz.GroupsGet},
}

// Numbered returns the id of the resource of kind whose number is n.
//
// A number is the log sequence of the event that created the resource:
// fixed when the event is appended, the same after every rebuild of the
// read tables, never given to another resource (sequences only grow, and
// a deleted resource's creating event stays in the log). Dialects whose
// ids are integers show numbers and resolve them here. Users are looked
// up among the users with access to the caller's tenant, other kinds in
// the tenant; anything else is ErrNotFound, a caller without the right
// to read such a resource gets ErrForbidden.
func (q *Queries) Numbered(ctx context.Context, caller auth.Principal, kind string, n uint64) (string, error) {
	k, ok := numbered[kind]
	if !ok {
		return "", fmt.Errorf("%w: kind %q has no numbers", ErrInvalid, kind)
	}
	if err := q.mayIn(caller, k.action, kind+"s"); err != nil {
		return "", err
	}
	if n == 0 || n > 1<<63-1 {
		return "", fmt.Errorf("%w: no %s numbered %d in tenant %q", ErrNotFound, kind, n, caller.Tenant)
	}
	stmt := `SELECT id FROM ` + k.table + ` WHERE tenant = $1 AND num = $2`
	if !k.tenanted {
		stmt = `SELECT u.id FROM users u JOIN user_tenants t ON t.user_id = u.id WHERE t.tenant = $1 AND u.num = $2`
	}
	var id string
	err := q.db.GetContext(ctx, &id, stmt, caller.Tenant, int64(n))
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%w: no %s numbered %d in tenant %q", ErrNotFound, kind, n, caller.Tenant)
	}
	if err != nil {
		return "", fmt.Errorf("%s by number: %w", kind, err)
	}
	return id, nil
}
