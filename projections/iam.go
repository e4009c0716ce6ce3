package projections

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/keyhold/keyhold/events"
)

//go:embed iam.sql
var iamSchema string

//go:embed iam_indexes.sql
var iamIndexes string

// IAM projects tenants, users, service accounts and credential metadata.
// It is stateless between batches and safe to use from one runner.
type IAM struct{}

// Name implements Projector.
func (IAM) Name() string { return "iam" }

// Version implements Projector. Bump it when iam.sql or Apply changes;
// the next start rebuilds the tables from the log.
func (IAM) Version() int { return 1 }

// Schema implements Projector.
func (IAM) Schema() string { return iamSchema }

// Indexes implements Indexer.
func (IAM) Indexes() string { return iamIndexes }

// Tables implements Projector.
func (IAM) Tables() []string {
	return []string{"tenants", "users", "user_tenants", "user_roles", "service_accounts", "credentials"}
}

type saKey struct{ tenant, id string }

type saRow struct {
	tenant, id, clientID, displayName, description string
	scopeLevel, scopeTarget                        string
	roles                                          []string
	status                                         string
	createdAt, updatedAt                           time.Time
}

type credKey struct{ tenant, sa, id string }

type credRow struct {
	createdAt, expiresAt time.Time
}

// iamBatch buffers rows created within one batch. Later events in the batch
// change buffered rows in memory; the rows are then written with COPY. Rows
// that existed before the batch are changed with plain statements, which
// never touch buffered rows, so the order of writes does not matter.
type iamBatch struct {
	sas       map[saKey]*saRow
	saOrder   []saKey
	creds     map[credKey]*credRow
	credOrder []credKey
}

// Apply implements Projector.
func (IAM) Apply(ctx context.Context, tx Tx, batch []events.Envelope) error {
	b := iamBatch{sas: map[saKey]*saRow{}, creds: map[credKey]*credRow{}}
	for _, env := range batch {
		e, err := events.Decode(env)
		if err != nil {
			return &ApplyError{Seq: env.Sequence, Err: err}
		}
		if err := b.apply(ctx, tx, env, e); err != nil {
			return fmt.Errorf("apply %s at %d: %w", env.Type, env.Sequence, err)
		}
	}
	return b.flush(ctx, tx)
}

func (b *iamBatch) apply(ctx context.Context, tx Tx, env events.Envelope, e events.Event) error {
	var err error
	switch e := e.(type) {
	case events.TenantCreated:
		_, err = tx.ExecContext(ctx, `INSERT INTO tenants (id, name, credential_default_lifetime_s, credential_max_lifetime_s, scope_levels, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6)`, env.Subject, e.Name, e.CredentialDefaultLifetime, e.CredentialMaxLifetime, pq.Array(e.ScopeLevels), stamp(env.Time))
	case events.TenantSettingsChanged:
		var levels any
		if e.ScopeLevels != nil {
			levels = pq.Array(*e.ScopeLevels)
		}
		_, err = tx.ExecContext(ctx, `UPDATE tenants SET
			credential_default_lifetime_s = COALESCE($2, credential_default_lifetime_s),
			credential_max_lifetime_s = COALESCE($3, credential_max_lifetime_s),
			scope_levels = COALESCE($4, scope_levels), updated_at = $5 WHERE id = $1`,
			env.Subject, e.CredentialDefaultLifetime, e.CredentialMaxLifetime, levels, stamp(env.Time))
	case events.UserCreated:
		_, err = tx.ExecContext(ctx, `INSERT INTO users (id, username, email, created_at) VALUES ($1, $2, $3, $4)`, env.Subject, e.Username, e.Email, stamp(env.Time))
	case events.UserTenantAccessGranted:
		_, err = tx.ExecContext(ctx, `INSERT INTO user_tenants (user_id, tenant) VALUES ($1, $2) ON CONFLICT DO NOTHING`, env.Subject, e.Tenant)
	case events.UserRoleGranted:
		_, err = tx.ExecContext(ctx, `INSERT INTO user_roles (user_id, role, tenant, scope_level, scope_target) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
			env.Subject, e.Role, e.Tenant, e.Scope.Level, e.Scope.Target)
	case events.ServiceAccountCreated:
		k := saKey{env.Tenant, env.Subject}
		at := stamp(env.Time)
		b.sas[k] = &saRow{tenant: env.Tenant, id: env.Subject, clientID: e.ClientID, displayName: e.DisplayName, description: e.Description,
			scopeLevel: e.Scope.Level, scopeTarget: e.Scope.Target, roles: e.Roles, status: e.Status, createdAt: at, updatedAt: at}
		b.saOrder = append(b.saOrder, k)
	case events.ServiceAccountUpdated:
		if row, ok := b.sas[saKey{env.Tenant, env.Subject}]; ok {
			if e.DisplayName != nil {
				row.displayName = *e.DisplayName
			}
			if e.Description != nil {
				row.description = *e.Description
			}
			if e.Roles != nil {
				row.roles = *e.Roles
			}
			if e.Status != nil {
				row.status = *e.Status
			}
			row.updatedAt = stamp(env.Time)
			return nil
		}
		var roles any
		if e.Roles != nil {
			roles = pq.Array(*e.Roles)
		}
		_, err = tx.ExecContext(ctx, `UPDATE service_accounts SET
			display_name = COALESCE($3, display_name), description = COALESCE($4, description),
			roles = COALESCE($5, roles), status = COALESCE($6, status), updated_at = $7
			WHERE tenant = $1 AND id = $2`, env.Tenant, env.Subject, e.DisplayName, e.Description, roles, e.Status, stamp(env.Time))
	case events.ServiceAccountDeleted:
		for k := range b.creds {
			if k.tenant == env.Tenant && k.sa == env.Subject {
				delete(b.creds, k)
			}
		}
		if _, ok := b.sas[saKey{env.Tenant, env.Subject}]; ok {
			delete(b.sas, saKey{env.Tenant, env.Subject})
			return nil
		}
		if _, err = tx.ExecContext(ctx, `DELETE FROM credentials WHERE tenant = $1 AND service_account_id = $2`, env.Tenant, env.Subject); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM service_accounts WHERE tenant = $1 AND id = $2`, env.Tenant, env.Subject)
	case events.CredentialCreated:
		k := credKey{env.Tenant, env.Subject, e.CredentialID}
		b.creds[k] = &credRow{createdAt: stamp(env.Time), expiresAt: stamp(e.ExpiresAt)}
		b.credOrder = append(b.credOrder, k)
	case events.CredentialDeleted:
		k := credKey{env.Tenant, env.Subject, e.CredentialID}
		if _, ok := b.creds[k]; ok {
			delete(b.creds, k)
			return nil
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM credentials WHERE tenant = $1 AND service_account_id = $2 AND id = $3`, env.Tenant, env.Subject, e.CredentialID)
	}
	return err
}

func (b *iamBatch) flush(ctx context.Context, tx Tx) error {
	sas := make([]*saRow, 0, len(b.sas))
	for _, k := range b.saOrder {
		if r, ok := b.sas[k]; ok {
			sas = append(sas, r)
		}
	}
	err := writeRows(ctx, tx, "service_accounts", []string{"tenant", "id", "client_id", "display_name", "description",
		"scope_level", "scope_target", "roles", "status", "created_at", "updated_at"}, len(sas), func(e *encoder, i int) {
		r := sas[i]
		e.str(r.tenant)
		e.str(r.id)
		e.str(r.clientID)
		e.str(r.displayName)
		e.str(r.description)
		e.str(r.scopeLevel)
		e.str(r.scopeTarget)
		e.strs(r.roles)
		e.str(r.status)
		e.time(r.createdAt)
		e.time(r.updatedAt)
	})
	if err != nil {
		return err
	}
	creds := make([]credKey, 0, len(b.creds))
	for _, k := range b.credOrder {
		if _, ok := b.creds[k]; ok {
			creds = append(creds, k)
		}
	}
	return writeRows(ctx, tx, "credentials", []string{"tenant", "service_account_id", "id", "created_at", "expires_at"}, len(creds), func(e *encoder, i int) {
		k := creds[i]
		r := b.creds[k]
		e.str(k.tenant)
		e.str(k.sa)
		e.str(k.id)
		e.time(r.createdAt)
		e.time(r.expiresAt)
	})
}
