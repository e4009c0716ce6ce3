package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
)

// TokenUses remembers when personal API tokens were last used and writes
// it to Postgres (api_token_use) in the background: one upsert per flush
// for all tokens used since, never a write per request, and never into
// the log. Safe for concurrent use.
type TokenUses struct {
	mu      sync.Mutex
	pending map[string]time.Time
}

// NewTokenUses returns an empty tracker.
func NewTokenUses() *TokenUses { return &TokenUses{pending: map[string]time.Time{}} }

// Touch records that the token with id was used at.
func (u *TokenUses) Touch(id string, at time.Time) {
	u.mu.Lock()
	if at.After(u.pending[id]) {
		u.pending[id] = at
	}
	u.mu.Unlock()
}

// Flush writes what was touched since the last flush. Times only move
// forward, so replicas flushing the same token in any order agree. On
// failure the uses are kept for the next flush.
func (u *TokenUses) Flush(ctx context.Context, db *sqlx.DB) error {
	u.mu.Lock()
	batch := u.pending
	u.pending = map[string]time.Time{}
	u.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	ids := make([]string, 0, len(batch))
	ats := make([]time.Time, 0, len(batch))
	for id, at := range batch {
		ids, ats = append(ids, id), append(ats, at.UTC())
	}
	_, err := db.ExecContext(ctx, `INSERT INTO api_token_use (token_id, last_used_at)
		SELECT * FROM unnest($1::text[], $2::timestamptz[])
		ON CONFLICT (token_id) DO UPDATE SET last_used_at = GREATEST(api_token_use.last_used_at, EXCLUDED.last_used_at)`,
		pq.Array(ids), pq.Array(ats))
	if err != nil {
		u.mu.Lock()
		for id, at := range batch {
			if at.After(u.pending[id]) {
				u.pending[id] = at
			}
		}
		u.mu.Unlock()
		return fmt.Errorf("record API token use: %w", err)
	}
	return nil
}

// Run flushes every interval until ctx ends, and once more then.
func (u *TokenUses) Run(ctx context.Context, db *sqlx.DB, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := u.Flush(fctx, db); err != nil {
				log.Warn("flush API token use", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if err := u.Flush(ctx, db); err != nil {
				log.Warn("flush API token use", "err", err)
			}
		}
	}
}

// APIToken is an API token's metadata, a user's personal token or a
// service account's; the token is never kept.
type APIToken struct {
	ID          string     `db:"id"`
	Name        string     `db:"name"`
	Description string     `db:"description"`
	CreatedAt   time.Time  `db:"created_at"`
	ExpiresAt   *time.Time `db:"expires_at"`
	LastUsedAt  *time.Time `db:"last_used_at"`
}

// APITokens lists a user's live personal API tokens, oldest first, with
// when each was last used (as flushed so far; nil if never). A user may
// list its own; a superadmin anyone's; others get ErrForbidden.
func (q *Queries) APITokens(ctx context.Context, caller auth.Principal, userID string) ([]APIToken, error) {
	self := caller.Kind == auth.KindUser && caller.ID == userID
	if !self && !caller.Can(q.authz, authz.UsersGet, "", authz.Instance).Allowed {
		return nil, fmt.Errorf("%w: only the user itself or a superadmin may list a user's API tokens", ErrForbidden)
	}
	out := []APIToken{}
	err := q.db.SelectContext(ctx, &out, `SELECT t.id, t.name, t.description, t.created_at, t.expires_at, u.last_used_at
		FROM api_tokens t LEFT JOIN api_token_use u ON u.token_id = t.id
		WHERE t.user_id = $1 AND (t.expires_at IS NULL OR t.expires_at > now()) ORDER BY t.id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	return out, nil
}

// InstanceSettings are the instance's settings as the read tables hold
// them, defaults filled in.
type InstanceSettings struct {
	APITokenDefaultLifetime time.Duration
	APITokenMaxLifetime     time.Duration
	// What tenants created from now on start with.
	CredentialDefaultLifetime time.Duration
	CredentialMaxLifetime     time.Duration
	ScopeLevels               []string
}

// InstanceSettings returns the instance's settings, with defaults (given
// by the caller, who knows them: the write side) for those never set.
// Superadmins only.
func (q *Queries) InstanceSettings(ctx context.Context, caller auth.Principal, defaults InstanceSettings) (InstanceSettings, error) {
	if !caller.Can(q.authz, authz.InstanceUpdate, "", authz.Instance).Allowed {
		return InstanceSettings{}, fmt.Errorf("%w: only a superadmin may read the instance's settings", ErrForbidden)
	}
	var row struct {
		Default     *int64         `db:"api_token_default_lifetime_s"`
		Max         *int64         `db:"api_token_max_lifetime_s"`
		CredDefault *int64         `db:"credential_default_lifetime_s"`
		CredMax     *int64         `db:"credential_max_lifetime_s"`
		Levels      pq.StringArray `db:"scope_levels"`
	}
	err := q.db.GetContext(ctx, &row, `SELECT api_token_default_lifetime_s, api_token_max_lifetime_s,
		credential_default_lifetime_s, credential_max_lifetime_s, scope_levels FROM instance_settings WHERE id = 1`)
	if errors.Is(err, sql.ErrNoRows) {
		// Nothing set yet. (sqlx fills row's pointers even then.)
		return defaults, nil
	}
	if err != nil {
		return InstanceSettings{}, fmt.Errorf("read instance settings: %w", err)
	}
	out := defaults
	if row.Default != nil {
		out.APITokenDefaultLifetime = time.Duration(*row.Default) * time.Second
	}
	if row.Max != nil {
		out.APITokenMaxLifetime = time.Duration(*row.Max) * time.Second
	}
	if row.CredDefault != nil {
		out.CredentialDefaultLifetime = time.Duration(*row.CredDefault) * time.Second
	}
	if row.CredMax != nil {
		out.CredentialMaxLifetime = time.Duration(*row.CredMax) * time.Second
	}
	if row.Levels != nil {
		out.ScopeLevels = []string(row.Levels)
	}
	return out, nil
}
