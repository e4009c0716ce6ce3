package query

import (
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lib/pq"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

// Invitation statuses, decided when read: an invitation not accepted is
// expired from its expiry time on.
const (
	InvitationPending  = "pending"
	InvitationAccepted = "accepted"
	InvitationExpired  = "expired"
)

// InvitationStatuses are the statuses an invitation can have.
var InvitationStatuses = []string{InvitationPending, InvitationAccepted, InvitationExpired}

// InvitationRole is a role an invitation grants, at Namespaces or across
// the tenant when there are none.
type InvitationRole struct {
	ID         string
	Name       string
	Default    bool
	Managed    bool
	Namespaces []string
}

// InvitationGroup is a group an invitation adds the invitee to.
type InvitationGroup struct {
	ID   string
	Name string
}

// Invitation is an invitation as the read tables hold it. Roles and
// groups deleted since it was made are left out: they grant nothing.
type Invitation struct {
	ID     string
	Tenant string
	// Email is the invited address; for an accepted invitation the
	// address of the user who accepted (events.ErasedMarker once erased).
	Email      string
	Roles      []InvitationRole
	Groups     []InvitationGroup
	Superadmin bool
	CreateUser bool
	InvitedBy  string
	Status     string
	SentAt     time.Time
	ExpiresAt  time.Time
	AcceptedBy string
	// AcceptedAt is nil until accepted.
	AcceptedAt *time.Time
}

type invitationRow struct {
	Tenant     string         `db:"tenant"`
	ID         string         `db:"id"`
	Email      string         `db:"email"`
	Roles      []byte         `db:"roles"`
	Groups     pq.StringArray `db:"groups"`
	Superadmin bool           `db:"superadmin"`
	CreateUser bool           `db:"create_user"`
	InvitedBy  string         `db:"invited_by"`
	SentAt     time.Time      `db:"sent_at"`
	ExpiresAt  time.Time      `db:"expires_at"`
	AcceptedBy string         `db:"accepted_by"`
	AcceptedAt *time.Time     `db:"accepted_at"`
	Status     string         `db:"status"`
}

// invitationsFrom is a relation of invitations with the address to show
// (an accepted invitation's is its user's) and the status at $1.
const invitationsFrom = `(SELECT i.tenant, i.id,
		CASE WHEN i.accepted_by <> '' THEN COALESCE(u.email, '` + events.ErasedMarker + `') ELSE i.email END AS email,
		i.roles, i.groups, i.superadmin, i.create_user, i.invited_by, i.sent_at, i.expires_at, i.accepted_by, i.accepted_at,
		CASE WHEN i.accepted_by <> '' THEN '` + InvitationAccepted + `' WHEN i.expires_at > $1 THEN '` + InvitationPending + `' ELSE '` + InvitationExpired + `' END AS status
	FROM invitations i LEFT JOIN users u ON u.id = i.accepted_by) inv`

const invitationColumns = "tenant, id, email, roles, groups, superadmin, create_user, invited_by, sent_at, expires_at, accepted_by, accepted_at, status"

var invitationSort = map[string]string{"id": "id", "email": "email", "sentAt": "sent_at", "expiredAt": "expires_at", "status": "status"}

// InvitationFilter narrows SearchInvitations.
type InvitationFilter struct {
	// Email matches case-insensitively as a substring of the address.
	Email string
	// Status is one of InvitationStatuses, or "" for any.
	Status string
}

// SearchInvitations returns a page of the caller's tenant's invitations
// and how many match in all; Search.Text matches the address like
// f.Email. It needs iam.invitations.list.
func (q *Queries) SearchInvitations(ctx context.Context, caller auth.Principal, s Search, f InvitationFilter) ([]Invitation, int, error) {
	if err := q.mayIn(caller, authz.InvitationsList, "invitations"); err != nil {
		return nil, 0, err
	}
	order, limit, offset, err := s.resolve(invitationSort)
	if err != nil {
		return nil, 0, err
	}
	if f.Status != "" && !slices.Contains(InvitationStatuses, f.Status) {
		return nil, 0, invalid("status", "status must be one of %s", strings.Join(InvitationStatuses, ", "))
	}
	if len(f.Email) > MaxSearchText || !utf8.ValidString(f.Email) || strings.ContainsFunc(f.Email, unicode.IsControl) {
		return nil, 0, invalid("email", "email must be at most %d bytes of UTF-8 text without control characters", MaxSearchText)
	}
	where := ` WHERE tenant = $2 AND ($3 = '' OR email ILIKE $4) AND ($5 = '' OR email ILIKE $6) AND ($7 = '' OR status = $7)`
	args := []any{q.now(), caller.Tenant, s.Text, likePattern(s.Text), f.Email, likePattern(f.Email), f.Status}
	var total int
	if err := q.db.GetContext(ctx, &total, `SELECT count(*) FROM `+invitationsFrom+where, args...); err != nil {
		return nil, 0, fmt.Errorf("count invitations: %w", err)
	}
	var rows []invitationRow
	if err := q.db.SelectContext(ctx, &rows, `SELECT `+invitationColumns+` FROM `+invitationsFrom+where+
		` ORDER BY `+order+pageClause(limit, offset, len(args)), pageArgs(args, offset)...); err != nil {
		return nil, 0, fmt.Errorf("search invitations: %w", err)
	}
	out, err := q.invitations(ctx, rows)
	return out, total, err
}

// GetInvitation returns one invitation of the caller's tenant. It needs
// iam.invitations.get; an unknown id (or another tenant's) is ErrNotFound.
func (q *Queries) GetInvitation(ctx context.Context, caller auth.Principal, id string) (Invitation, error) {
	if err := q.mayIn(caller, authz.InvitationsGet, "invitations"); err != nil {
		return Invitation{}, err
	}
	var rows []invitationRow
	if err := q.db.SelectContext(ctx, &rows, `SELECT `+invitationColumns+` FROM `+invitationsFrom+` WHERE tenant = $2 AND id = $3`,
		q.now(), caller.Tenant, id); err != nil {
		return Invitation{}, fmt.Errorf("get invitation: %w", err)
	}
	if len(rows) == 0 {
		return Invitation{}, fmt.Errorf("%w: invitation %q", ErrNotFound, id)
	}
	out, err := q.invitations(ctx, rows)
	if err != nil {
		return Invitation{}, err
	}
	return out[0], nil
}

// MaxInvitationsByEmail bounds InvitationsByEmail and MyInvitations.
const MaxInvitationsByEmail = 1000

// InvitationsByEmail returns the invitations of the caller's tenant to
// email (ignoring case), newest first, at most MaxInvitationsByEmail. It
// needs iam.invitations.list; what is no address is ErrInvalid on field
// email, not an empty list.
func (q *Queries) InvitationsByEmail(ctx context.Context, caller auth.Principal, email string) ([]Invitation, error) {
	if err := q.mayIn(caller, authz.InvitationsList, "invitations"); err != nil {
		return nil, err
	}
	email = strings.ToLower(email)
	if !ValidEmail(email) {
		return nil, invalid("email", "must be a plain address like name@example.com")
	}
	var rows []invitationRow
	if err := q.db.SelectContext(ctx, &rows, `SELECT `+invitationColumns+` FROM `+invitationsFrom+` WHERE tenant = $2 AND email = $3
		ORDER BY id DESC LIMIT `+strconv.Itoa(MaxInvitationsByEmail), q.now(), caller.Tenant, email); err != nil {
		return nil, fmt.Errorf("invitations by email: %w", err)
	}
	return q.invitations(ctx, rows)
}

// ValidEmail reports whether s is a plain address (name@example.com, no
// display name or comments), at most 254 characters: the rule the write
// side gives users' and invitations' addresses.
func ValidEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && len(s) <= 254
}

// MyInvitations returns the pending invitations, in every tenant, to the
// address of the calling user, newest first; none for a user whose
// address was erased. A caller that is no user gets ErrForbidden.
func (q *Queries) MyInvitations(ctx context.Context, caller auth.Principal) ([]Invitation, error) {
	if caller.Kind != auth.KindUser {
		// As for Me: only users have an email to be invited at.
		return nil, fmt.Errorf("%w: only users are invited; a service account has no invitations", ErrForbidden)
	}
	var rows []invitationRow
	if err := q.db.SelectContext(ctx, &rows, `SELECT `+invitationColumns+` FROM `+invitationsFrom+`
		WHERE status = '`+InvitationPending+`' AND email = (SELECT email FROM users WHERE id = $2 AND email <> $3)
		ORDER BY id DESC LIMIT `+strconv.Itoa(MaxInvitationsByEmail), q.now(), caller.ID, events.ErasedMarker); err != nil {
		return nil, fmt.Errorf("my invitations: %w", err)
	}
	return q.invitations(ctx, rows)
}

// invitations turns rows into invitations, naming their roles and groups
// (one query each for all the rows).
func (q *Queries) invitations(ctx context.Context, rows []invitationRow) ([]Invitation, error) {
	type ref struct{ tenant, id string }
	var roleTenants, roleIDs, groupTenants, groupIDs []string
	granted := make([][]events.InvitationRole, len(rows))
	for i, r := range rows {
		if err := json.Unmarshal(r.Roles, &granted[i]); err != nil {
			return nil, fmt.Errorf("invitation %s: roles: %w", r.ID, err)
		}
		for _, g := range granted[i] {
			roleTenants, roleIDs = append(roleTenants, r.Tenant), append(roleIDs, g.Role)
		}
		for _, g := range r.Groups {
			groupTenants, groupIDs = append(groupTenants, r.Tenant), append(groupIDs, g)
		}
	}
	type named struct {
		Tenant  string `db:"tenant"`
		ID      string `db:"id"`
		Name    string `db:"name"`
		Default bool   `db:"is_default"`
		Managed bool   `db:"managed"`
	}
	roles, groups := map[ref]named{}, map[ref]named{}
	if len(roleIDs) > 0 {
		var found []named
		if err := q.db.SelectContext(ctx, &found, `SELECT r.tenant, r.id, r.name, r.is_default, r.managed FROM roles r
			JOIN unnest($1::text[], $2::text[]) AS k(tenant, id) ON r.tenant = k.tenant AND r.id = k.id`,
			pq.Array(roleTenants), pq.Array(roleIDs)); err != nil {
			return nil, fmt.Errorf("invitation roles: %w", err)
		}
		for _, n := range found {
			roles[ref{n.Tenant, n.ID}] = n
		}
	}
	if len(groupIDs) > 0 {
		var found []named
		if err := q.db.SelectContext(ctx, &found, `SELECT g.tenant, g.id, g.name, false AS is_default, false AS managed FROM groups g
			JOIN unnest($1::text[], $2::text[]) AS k(tenant, id) ON g.tenant = k.tenant AND g.id = k.id`,
			pq.Array(groupTenants), pq.Array(groupIDs)); err != nil {
			return nil, fmt.Errorf("invitation groups: %w", err)
		}
		for _, n := range found {
			groups[ref{n.Tenant, n.ID}] = n
		}
	}
	out := make([]Invitation, len(rows))
	for i, r := range rows {
		inv := Invitation{ID: r.ID, Tenant: r.Tenant, Email: r.Email, Superadmin: r.Superadmin, CreateUser: r.CreateUser,
			InvitedBy: r.InvitedBy, Status: r.Status, SentAt: r.SentAt, ExpiresAt: r.ExpiresAt, AcceptedBy: r.AcceptedBy, AcceptedAt: r.AcceptedAt,
			Roles: []InvitationRole{}, Groups: []InvitationGroup{}}
		for _, g := range granted[i] {
			if n, ok := roles[ref{r.Tenant, g.Role}]; ok {
				inv.Roles = append(inv.Roles, InvitationRole{ID: n.ID, Name: n.Name, Default: n.Default, Managed: n.Managed, Namespaces: g.Namespaces})
			}
		}
		for _, g := range r.Groups {
			if n, ok := groups[ref{r.Tenant, g}]; ok {
				inv.Groups = append(inv.Groups, InvitationGroup{ID: n.ID, Name: n.Name})
			}
		}
		out[i] = inv
	}
	return out, nil
}
