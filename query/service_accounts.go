// Package query is Keyhold's read side: queries over the read tables the
// projectors maintain, the in-memory directory used to authenticate
// callers, and the audit trail read straight from the event log. It never
// writes and never imports commands.
package query

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

var (
	// ErrNotFound means the resource does not exist or the caller may not know it does.
	ErrNotFound = errors.New("not found")
	// ErrForbidden means the caller may not read this.
	ErrForbidden = errors.New("forbidden")
	// ErrInvalid means a filter, cursor or limit is malformed.
	ErrInvalid = errors.New("invalid query")
	// ErrBusy means too many reads of this kind are running; retry shortly.
	ErrBusy = errors.New("too many reads at once")
)

// FieldError is an ErrInvalid about one filter, cursor or limit: it
// matches ErrInvalid with errors.Is.
type FieldError struct {
	// Field names the input as the query's filter does ("cursor").
	Field string
	// Message says what to fix, naming the field.
	Message string
}

func (e *FieldError) Error() string { return ErrInvalid.Error() + ": " + e.Message }

// Is makes a FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Page limits (k0rdent's pageSize: 50 unless asked, at most 500).
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Page asks for up to Limit items after the opaque Cursor of a previous page.
type Page struct {
	Limit  int
	Cursor string
}

func (p Page) resolve() (limit int, after string, err error) {
	limit = p.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return 0, "", invalid("limit", "limit must be between 1 and %d", MaxLimit)
	}
	if p.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(p.Cursor)
		if err != nil || !events.ValidToken(string(b)) {
			return 0, "", invalid("cursor", "cursor is not one this API returned")
		}
		after = string(b)
	}
	return limit, after, nil
}

func cursorOf(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

// Queries runs read queries. Safe for concurrent use.
type Queries struct {
	db    *reads
	now   func() time.Time
	authz auth.Authorizer
}

// New returns queries over db, deciding who may read what with a (the
// server's directory model); a nil a lets only the operator (auth.System)
// read.
func New(db *sqlx.DB, a auth.Authorizer) (*Queries, error) {
	if db == nil {
		return nil, errors.New("query: nil database")
	}
	return &Queries{db: newReads(db), now: time.Now, authz: a}, nil
}

// may reports whether caller may do action in its own tenant.
func (q *Queries) may(caller auth.Principal, action string) bool {
	return caller.Can(q.authz, action, "", authz.TenantScope(caller.Tenant)).Allowed
}

// ServiceAccount is a service account as read tables hold it.
type ServiceAccount struct {
	ID string `db:"id"`
	// Number is the account's number (see Numbered).
	Number uint64 `db:"num"`
	// Name is the client-chosen name, unique in the tenant, or "".
	Name        string `db:"name"`
	ClientID    string `db:"client_id"`
	DisplayName string `db:"display_name"`
	Description string `db:"description"`
	ScopeLevel  string `db:"scope_level"`
	ScopeTarget string `db:"scope_target"`
	// ScopeKind is the namespace node's kind, empty for level tenant.
	ScopeKind string      `db:"scope_kind"`
	Roles     StringArray `db:"roles"`
	Status    string      `db:"status"`
	// CreatedBy is the id of the principal that created the account.
	CreatedBy string    `db:"created_by"`
	CreatedAt time.Time `db:"created_at"`
	UpdatedAt time.Time `db:"updated_at"`
	Tenant    string    `db:"tenant"`
	// ActiveCredentials counts the credentials unexpired at the query's now.
	ActiveCredentials int `db:"active_credentials"`
}

// Scope returns the service account's scope.
func (s ServiceAccount) Scope() events.Scope {
	return events.Scope{Level: s.ScopeLevel, Target: s.ScopeTarget, Kind: s.ScopeKind}
}

// StringArray reads a Postgres text[].
type StringArray = pq.StringArray

// ServiceAccountFilter narrows a listing; empty fields match everything.
type ServiceAccountFilter struct {
	ScopeLevel string
	// ScopeKind is a namespace node's kind (events.NodeKinds); it implies
	// ScopeLevel namespace.
	ScopeKind   string
	ScopeTarget string
	Status      string
}

// check refuses a filter naming a status no account can have or a scope
// target that cannot be one (a tenant id or a namespace): as bad input
// (ErrInvalid naming status or scope_target), rather than as a filter
// that matches nothing.
func (f ServiceAccountFilter) check() error {
	if f.Status != "" && !slices.Contains(ServiceAccountStatuses, f.Status) {
		return invalid("status", "status must be %s", strings.Join(ServiceAccountStatuses, " or "))
	}
	if f.ScopeTarget != "" && !ValidTenantID(f.ScopeTarget) && !ValidNamespace(f.ScopeTarget) {
		return invalid("scope_target", "must be an organization id or a folder or project path (lowercase letters, digits, '-', '_' and '.')")
	}
	return nil
}

const saColumns = "tenant, id, num, name, client_id, display_name, description, scope_level, scope_target, scope_kind, roles, status, created_by, created_at, updated_at"

// saLevel is a scope level with a node kind, as the read tables hold them.
type saLevel struct{ level, kind string }

// saLevels are every (scope level, node kind) pair a service account can
// have: the projection records a namespace's kind, defaulted to folder.
var saLevels = []saLevel{{events.ScopeTenant, ""}, {events.ScopeNamespace, events.NodeFolder}, {events.ScopeNamespace, events.NodeProject}}

// levels returns the pairs f leaves open.
func (f ServiceAccountFilter) levels() []saLevel {
	var out []saLevel
	for _, l := range saLevels {
		if (f.ScopeLevel == "" || f.ScopeLevel == l.level) && (f.ScopeKind == "" || f.ScopeKind == l.kind) {
			out = append(out, l)
		}
	}
	return out
}

// saPageColumns are saColumns with what a page or a single read counts
// the active credentials from (countUnexpired).
const saPageColumns = saColumns + ", credential_expiries"

// countUnexpired counts the values of raw, a bigint[] in Postgres's text
// form ("{1,-2}"), greater than after, without allocating: it runs for
// every row of a page.
func countUnexpired(raw []byte, after int64) (int, error) {
	if len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' {
		return 0, fmt.Errorf("credential expiries %q: not an array", raw)
	}
	body := raw[1 : len(raw)-1]
	if len(body) == 0 {
		return 0, nil
	}
	n := 0
	for more := true; more; {
		var field []byte
		field, body, more = bytes.Cut(body, []byte{','})
		v, neg, digits := int64(0), false, field
		if len(digits) > 0 && digits[0] == '-' {
			neg, digits = true, digits[1:]
		}
		if len(digits) == 0 || len(digits) > 18 {
			return 0, fmt.Errorf("credential expiries %q: not an array of microseconds", raw)
		}
		for _, c := range digits {
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("credential expiries %q: not an array of microseconds", raw)
			}
			v = v*10 + int64(c-'0')
		}
		if neg {
			v = -v
		}
		if v > after {
			n++
		}
	}
	return n, nil
}

// ServiceAccountStatuses are every status the write side gives a service
// account (commands.Statuses is this list). The list enumerates them, and the scope levels
// (events.ServiceAccountScopeLevels), where a filter leaves them open.
var ServiceAccountStatuses = []string{"active", "disabled"}

// listServiceAccountsSQL serves every filter combination from two indexes
// (iam_indexes.sql) with a short range scan however few rows match:
// (tenant, status, scope_level, scope_kind, id) when no target is given
// or the level is tenant, and (tenant, scope_target, status, scope_level,
// scope_kind, id), which holds namespace accounts, when a target is given
// for a namespace level. Filtered columns are fixed by equality; the
// statuses and the (level, kind) pairs left open between a fixed prefix
// and id are enumerated (two statuses, three pairs), one ordered range
// scan per combination, merged by id. An index per combination would cost
// every write and every rebuild many more indexes.
func listServiceAccountsSQL(tenant, after string, f ServiceAccountFilter, limit int) (string, []any) {
	lim := pageClause(limit, 0, 0)
	if f.ScopeLevel == "" && f.ScopeKind == "" && f.ScopeTarget == "" && f.Status == "" {
		return `SELECT ` + saPageColumns + ` FROM service_accounts WHERE tenant = $1 AND id > $2 ORDER BY id` + lim, []any{tenant, after}
	}
	args := []any{tenant, after}
	arg := func(v string) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	levels := f.levels()
	target := ""
	if f.ScopeTarget != "" && slices.ContainsFunc(levels, func(l saLevel) bool { return l.level != events.ScopeTenant }) {
		target = " AND scope_target = " + arg(f.ScopeTarget)
	}
	statuses := ServiceAccountStatuses
	if f.Status != "" {
		statuses = []string{f.Status}
	}
	// The statuses, levels and kinds are written into the text as
	// literals: they come from closed vocabularies (f.check refused
	// anything else), so the texts are few, and with them fixed Postgres
	// settles on one plan per text instead of planning every run (with
	// them as arguments it kept custom plans: 0.4 ms of planning a page).
	var parts []string
	for _, st := range statuses {
		for _, lv := range levels {
			where := target
			if lv.level == events.ScopeTenant && f.ScopeTarget != "" {
				// A tenant-level account's target is its tenant
				// (commands.validScope), and the target index holds
				// namespace accounts only.
				if f.ScopeTarget != tenant {
					continue
				}
				where = ""
			}
			parts = append(parts, `(SELECT `+saPageColumns+` FROM service_accounts WHERE tenant = $1`+where+
				` AND status = `+pq.QuoteLiteral(st)+` AND scope_level = `+pq.QuoteLiteral(lv.level)+
				` AND scope_kind = `+pq.QuoteLiteral(lv.kind)+` AND id > $2 ORDER BY id`+lim+`)`)
		}
	}
	if len(parts) == 0 {
		// A kind at a level that has none, or a tenant level with
		// another target: nothing matches.
		return `SELECT ` + saPageColumns + ` FROM service_accounts WHERE false`, args[:0]
	}
	if len(parts) == 1 {
		return parts[0][1 : len(parts[0])-1], args
	}
	return strings.Join(parts, " UNION ALL ") + ` ORDER BY id` + lim, args
}

// ListServiceAccounts returns the caller's tenant's service accounts in
// creation order, a page at a time; next is empty on the last page. Only
// tenant administrators may list (ErrForbidden otherwise).
func (q *Queries) ListServiceAccounts(ctx context.Context, caller auth.Principal, f ServiceAccountFilter, p Page) (items []ServiceAccount, next string, err error) {
	if !q.may(caller, authz.ServiceAccountsList) {
		return nil, "", fmt.Errorf("%w: only tenant administrators can list service accounts", ErrForbidden)
	}
	limit, after, err := p.resolve()
	if err != nil {
		return nil, "", err
	}
	if err := f.check(); err != nil {
		return nil, "", err
	}
	query, args := listServiceAccountsSQL(caller.Tenant, after, f, limit+1)
	items, err = q.selectServiceAccounts(ctx, limit+1, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list service accounts: %w", err)
	}
	if len(items) > limit {
		items = items[:limit]
		next = cursorOf(items[limit-1].ID)
	}
	if items == nil {
		items = []ServiceAccount{}
	}
	return items, next, nil
}

// selectServiceAccounts runs query, whose columns are saPageColumns, and
// scans its rows by hand into a slice with room for capacity rows,
// counting each account's credentials unexpired at the query's now. The
// list's hot path: sqlx's reflection and the slice's growth cost the
// process more than Postgres spent on the page.
func (q *Queries) selectServiceAccounts(ctx context.Context, capacity int, query string, args ...any) ([]ServiceAccount, error) {
	now := q.now().UnixMicro()
	rows, err := q.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	items := make([]ServiceAccount, 0, capacity)
	var expiries sql.RawBytes
	for rows.Next() {
		items = append(items, ServiceAccount{})
		sa := &items[len(items)-1]
		if err := rows.Scan(&sa.Tenant, &sa.ID, &sa.Number, &sa.Name, &sa.ClientID, &sa.DisplayName, &sa.Description,
			&sa.ScopeLevel, &sa.ScopeTarget, &sa.ScopeKind, &sa.Roles, &sa.Status, &sa.CreatedBy, &sa.CreatedAt,
			&sa.UpdatedAt, &expiries); err != nil {
			return nil, err
		}
		if sa.ActiveCredentials, err = countUnexpired(expiries, now); err != nil {
			return nil, err
		}
	}
	return items, rows.Err()
}

// IsServiceAccountName reports whether ref, a reference to a service
// account, is a chosen name rather than the account's id: names start
// with a letter, ids with a digit. The write side reads references the
// same way (commands uses this function).
func IsServiceAccountName(ref string) bool { return ref != "" && ref[0] >= 'a' && ref[0] <= 'z' }

// refColumn is the column a reference to a service account is matched
// against: name for a chosen name, id otherwise.
func refColumn(ref string) string {
	if IsServiceAccountName(ref) {
		return "name"
	}
	return "id"
}

// ServiceAccount returns one service account of the caller's tenant by
// its id or its chosen name (ref). Non-administrators get ErrNotFound, as
// for a missing account.
func (q *Queries) ServiceAccount(ctx context.Context, caller auth.Principal, ref string) (ServiceAccount, error) {
	var sa ServiceAccount
	if !q.may(caller, authz.ServiceAccountsGet) || !events.ValidToken(ref) {
		return sa, fmt.Errorf("%w: service account %q", ErrNotFound, ref)
	}
	found, err := q.selectServiceAccounts(ctx, 1, `SELECT `+saPageColumns+` FROM service_accounts WHERE tenant = $1 AND `+refColumn(ref)+` = $2`, caller.Tenant, ref)
	if err != nil {
		return sa, fmt.Errorf("get service account: %w", err)
	}
	if len(found) == 0 {
		return sa, fmt.Errorf("%w: service account %q", ErrNotFound, ref)
	}
	return found[0], nil
}

// Credential is a credential's metadata; the secret is never stored.
type Credential struct {
	ID               string `db:"id"`
	ServiceAccountID string `db:"service_account_id"`
	// ServiceAccountName is the account's chosen name, or "".
	ServiceAccountName string `db:"service_account_name"`
	// CreatedBy is the id of the principal that created the credential.
	CreatedBy string    `db:"created_by"`
	CreatedAt time.Time `db:"created_at"`
	ExpiresAt time.Time `db:"expires_at"`
}

// Credential statuses: a credential is active until it expires.
const (
	CredentialActive  = "active"
	CredentialExpired = "expired"
)

// CredentialFilter narrows a listing of credentials; an empty Status
// matches every credential.
type CredentialFilter struct {
	// Status is CredentialActive or CredentialExpired, at the query's now.
	Status string
}

const credColumns = "id, service_account_id, created_by, created_at, expires_at"

// Active reports whether the credential is unexpired at now.
func (c Credential) Active(now time.Time) bool { return c.ExpiresAt.After(now) }

// ListCredentials returns the credentials of a service account, named by
// its id or its chosen name (ref), in creation order. Non-administrators
// and unknown service accounts get ErrNotFound.
func (q *Queries) ListCredentials(ctx context.Context, caller auth.Principal, ref string, f CredentialFilter, p Page) (items []Credential, next string, err error) {
	if !q.may(caller, authz.CredentialsList) {
		return nil, "", fmt.Errorf("%w: service account %q", ErrNotFound, ref)
	}
	sa, err := q.ServiceAccount(ctx, caller, ref)
	if err != nil {
		return nil, "", err
	}
	serviceAccountID := sa.ID
	limit, after, err := p.resolve()
	if err != nil {
		return nil, "", err
	}
	args := []any{caller.Tenant, serviceAccountID, after, limit + 1}
	expiry := ""
	switch f.Status {
	case "":
	case CredentialActive:
		expiry, args = " AND expires_at > $5", append(args, q.now())
	case CredentialExpired:
		expiry, args = " AND expires_at <= $5", append(args, q.now())
	default:
		return nil, "", invalid("status", "status must be %s or %s", CredentialActive, CredentialExpired)
	}
	// A service account holds few credentials (5 active at most): the
	// expiry is checked on the rows the primary key range yields.
	err = q.db.SelectContext(ctx, &items, `SELECT `+credColumns+` FROM credentials
		WHERE tenant = $1 AND service_account_id = $2 AND id > $3`+expiry+` ORDER BY id LIMIT $4`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list credentials: %w", err)
	}
	if len(items) > limit {
		items = items[:limit]
		next = cursorOf(items[limit-1].ID)
	}
	if items == nil {
		items = []Credential{}
	}
	for i := range items {
		items[i].ServiceAccountName = sa.Name
	}
	return items, next, nil
}

// Credential returns the metadata of a credential of a service account
// named by its id or its chosen name (ref). Non-administrators and unknown
// ids get ErrNotFound.
func (q *Queries) Credential(ctx context.Context, caller auth.Principal, ref, id string) (Credential, error) {
	var c Credential
	if !q.may(caller, authz.CredentialsGet) || !events.ValidToken(ref) || !events.ValidToken(id) {
		return c, fmt.Errorf("%w: credential %q", ErrNotFound, id)
	}
	err := q.db.GetContext(ctx, &c, `SELECT c.id, c.service_account_id, c.created_by, c.created_at, c.expires_at, s.name AS service_account_name
		FROM credentials c JOIN service_accounts s ON s.tenant = c.tenant AND s.id = c.service_account_id
		WHERE c.tenant = $1 AND s.`+refColumn(ref)+` = $2 AND c.id = $3`, caller.Tenant, ref, id)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("%w: credential %q", ErrNotFound, id)
	}
	if err != nil {
		return c, fmt.Errorf("get credential: %w", err)
	}
	return c, nil
}

// Now returns the query clock's time.
func (q *Queries) Now() time.Time { return q.now() }

// TenantSettings is a tenant's credential and scope policy.
type TenantSettings struct {
	ID                        string      `db:"id"`
	CredentialDefaultLifetime int64       `db:"credential_default_lifetime_s"`
	CredentialMaxLifetime     int64       `db:"credential_max_lifetime_s"`
	ScopeLevels               StringArray `db:"scope_levels"`
	UpdatedAt                 time.Time   `db:"updated_at"`
}

// TenantSettings returns the caller's tenant's settings; non-administrators
// get ErrNotFound.
func (q *Queries) TenantSettings(ctx context.Context, caller auth.Principal) (TenantSettings, error) {
	var t TenantSettings
	if !q.may(caller, authz.SettingsGet) {
		return t, fmt.Errorf("%w: tenant %q", ErrNotFound, caller.Tenant)
	}
	err := q.db.GetContext(ctx, &t, `SELECT id, credential_default_lifetime_s, credential_max_lifetime_s, scope_levels, updated_at FROM tenants WHERE id = $1`, caller.Tenant)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("%w: tenant %q", ErrNotFound, caller.Tenant)
	}
	if err != nil {
		return t, fmt.Errorf("get tenant settings: %w", err)
	}
	return t, nil
}
