package projections

import (
	"context"
	_ "embed"
	"errors"
	"slices"
	"time"

	"github.com/lib/pq"

	"github.com/keyhold/keyhold/events"
)

//go:embed iam.sql
var iamSchema string

//go:embed iam_indexes.sql
var iamIndexes string

// IAM projects tenants, users, service accounts, credential metadata,
// roles, bindings, groups and their members, and invitations.
// It is stateless between batches and safe to use from one runner.
type IAM struct {
	// Personal reads users' encrypted personal data; without it an event
	// that carries some fails to apply. Plaintext events from before
	// encryption need none.
	Personal events.PersonalReader
}

// Name implements Projector.
func (IAM) Name() string { return "iam" }

// Version implements Projector. Bump it when iam.sql, iam_indexes.sql or
// Apply changes; the next start rebuilds the tables from the log, which
// fills new columns for old events too. 2: an index per service-account
// list filter; 3: users' names, status and superadmin flag; 4: roles,
// bindings, groups, API token metadata and instance settings; 5: service
// accounts' node kind and creator, credentials' creator; 6: service
// accounts' chosen names; 7: numbers of users, service accounts, roles and
// groups; 8: tenant renames and deletions, superadmin revocations,
// restricted users, API token descriptions, whether users have a
// password; 9: invitations; 10: service accounts' API tokens; 11: the
// instance's settings for new tenants; 12: row counts and the search
// indexes of roles and groups; 13: service accounts' credential expiries;
// 14: the scope-target index holds namespace accounts only.
func (IAM) Version() int { return 14 }

// Schema implements Projector.
func (IAM) Schema() string { return iamSchema + "\n" + rbacSchema + "\n" + invitationsSchema }

// Indexes implements Indexer.
func (IAM) Indexes() string { return iamIndexes }

// Tables implements Projector.
func (IAM) Tables() []string {
	return []string{"tenants", "users", "user_tenants", "user_roles", "service_accounts", "credentials",
		"roles", "bindings", "groups", "group_members", "api_tokens", "instance_settings", "invitations",
		"service_account_api_tokens", "row_counts"}
}

// roleSuperadmin is auth.RoleSuperadmin: projections import events only.
const roleSuperadmin = "superadmin"

type saKey struct{ tenant, id string }

type saRow struct {
	tenant, id, name, clientID, displayName, description string
	num                                                  uint64
	scopeLevel, scopeTarget, scopeKind                   string
	roles                                                []string
	status, createdBy                                    string
	createdAt, updatedAt                                 time.Time
	// credExpiries are the row's credential_expiries.
	credExpiries []int64
}

type credKey struct{ tenant, sa, id string }

type credRow struct {
	createdBy            string
	createdAt, expiresAt time.Time
}

// iamBatch plans one batch. Rows created within the batch are buffered,
// later events in the batch change them in memory, and they are written
// together (one literal INSERT, or COPY). Rows that existed before the
// batch are changed by statements, which never touch buffered rows, so
// the statements may run before the new rows are written.
type iamBatch struct {
	stmts     []statement
	sas       map[saKey]*saRow
	saOrder   []saKey
	creds     map[credKey]*credRow
	credOrder []credKey
	// stale are accounts that existed before the batch and whose
	// credentials it changed: their credential_expiries are read again
	// from credentials once the batch's rows are written.
	stale map[saKey]struct{}
}

// statement is a planned statement with its arguments.
type statement struct {
	query string
	args  []any
}

func (b *iamBatch) exec(query string, args ...any) {
	b.stmts = append(b.stmts, statement{query, args})
}

// iamPlan is a planned batch: statements, then new rows, then statements
// that read what the rows wrote.
type iamPlan struct {
	stmts []statement
	rows  []rows
	after []statement
}

// Write implements Plan. It writes the plan once: the encoded rows'
// buffers are reused for later plans as soon as they are written.
func (p *iamPlan) Write(ctx context.Context, tx Tx) error {
	for _, st := range p.stmts {
		if _, err := tx.ExecContext(ctx, st.query, st.args...); err != nil {
			return err
		}
	}
	for i := range p.rows {
		err := p.rows[i].write(ctx, tx)
		p.rows[i].release()
		if err != nil {
			return err
		}
	}
	for _, st := range p.after {
		if _, err := tx.ExecContext(ctx, st.query, st.args...); err != nil {
			return err
		}
	}
	return nil
}

// refreshExpiries sets the accounts' credential_expiries from their rows
// in credentials.
const refreshExpiries = `UPDATE service_accounts s SET credential_expiries = COALESCE((
	SELECT array_agg((extract(epoch FROM c.expires_at) * 1000000)::bigint ORDER BY c.expires_at)
	FROM credentials c WHERE c.tenant = s.tenant AND c.service_account_id = s.id), '{}')
	FROM unnest($1::text[], $2::text[]) AS t(tenant, id) WHERE s.tenant = t.tenant AND s.id = t.id`

// Apply implements Projector.
func (i IAM) Apply(ctx context.Context, tx Tx, batch []events.Envelope) error {
	p, err := i.Plan(batch)
	if err != nil {
		return err
	}
	return p.Write(ctx, tx)
}

// Plan implements Planner. It is stateless and safe for concurrent use.
//
// Users' personal data is read with i.Personal: erased users get
// events.ErasedMarker in every personal column. A key store that does not
// answer fails the batch with an error that is retried.
func (i IAM) Plan(batch []events.Envelope) (Plan, error) {
	b := iamBatch{sas: make(map[saKey]*saRow, len(batch)), creds: make(map[credKey]*credRow, len(batch)/2), stale: map[saKey]struct{}{}}
	for _, env := range batch {
		e, err := events.Decode(env)
		if err != nil {
			return nil, &ApplyError{Seq: env.Sequence, Err: err}
		}
		p, err := i.personal(env, e)
		if err != nil {
			return nil, err
		}
		b.apply(env, e, p)
	}
	return b.plan()
}

// personalWait bounds the key-store reads of one batch's events.
const personalWait = 10 * time.Second

// personal returns the personal data of a UserCreated, UserUpdated or
// InvitationCreated.
func (i IAM) personal(env events.Envelope, e events.Event) (events.Personal, error) {
	var plain *events.Personal
	var sealed []byte
	switch e := e.(type) {
	case events.UserCreated:
		plain, sealed = e.Personal, e.PersonalEnc
	case events.UserUpdated:
		plain, sealed = e.Personal, e.PersonalEnc
	case events.InvitationCreated:
		plain, sealed = e.Personal, e.PersonalEnc
	default:
		return events.Personal{}, nil
	}
	if i.Personal == nil {
		if sealed != nil {
			return events.Personal{}, &ApplyError{Seq: env.Sequence, Err: errors.New("encrypted personal data and no key store to read it")}
		}
		if plain == nil {
			return events.Personal{}, nil
		}
		return *plain, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), personalWait)
	defer cancel()
	p, err := i.Personal.Personal(ctx, env.Subject, e)
	if errors.Is(err, events.ErrPersonalData) {
		return events.Personal{}, &ApplyError{Seq: env.Sequence, Err: err}
	}
	return p, err
}

func (b *iamBatch) apply(env events.Envelope, e events.Event, p events.Personal) {
	// They touch tables of their own only: order among them is all that counts.
	b.stmts = append(b.stmts, rbacStatements(env, e)...)
	b.stmts = append(b.stmts, invitationStatements(env, e, p)...)
	switch e := e.(type) {
	case events.TenantCreated:
		b.exec(`INSERT INTO tenants (id, name, credential_default_lifetime_s, credential_max_lifetime_s, scope_levels, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6)`, env.Subject, e.Name, e.CredentialDefaultLifetime, e.CredentialMaxLifetime, pq.Array(e.ScopeLevels), stamp(env.Time))
	case events.TenantSettingsChanged:
		var levels any
		if e.ScopeLevels != nil {
			levels = pq.Array(*e.ScopeLevels)
		}
		b.exec(`UPDATE tenants SET
			credential_default_lifetime_s = COALESCE($2, credential_default_lifetime_s),
			credential_max_lifetime_s = COALESCE($3, credential_max_lifetime_s),
			scope_levels = COALESCE($4, scope_levels), updated_at = $5 WHERE id = $1`,
			env.Subject, e.CredentialDefaultLifetime, e.CredentialMaxLifetime, levels, stamp(env.Time))
	case events.TenantUpdated:
		b.exec(`UPDATE tenants SET name = $2, updated_at = $3 WHERE id = $1`, env.Subject, e.Name, stamp(env.Time))
	case events.TenantDeleted:
		// Hidden from reads: nobody may act in a deleted tenant.
		b.exec(`DELETE FROM tenants WHERE id = $1`, env.Subject)
		b.exec(`DELETE FROM user_tenants WHERE tenant = $1`, env.Subject)
		b.exec(`DELETE FROM user_roles WHERE tenant = $1`, env.Subject)
	case events.UserRestrictionChanged:
		b.exec(`UPDATE users SET restricted = $2 WHERE id = $1`, env.Subject, e.Restricted)
	case events.UserRoleRevoked:
		b.exec(`DELETE FROM user_roles WHERE user_id = $1 AND role = $2 AND tenant = $3 AND scope_level = $4 AND scope_target = $5`,
			env.Subject, e.Role, e.Tenant, e.Scope.Level, e.Scope.Target)
		if e.Role == roleSuperadmin && e.Scope.Level == events.ScopeInstance {
			b.exec(`UPDATE users SET superadmin = false WHERE id = $1`, env.Subject)
		}
	case events.UserCreated:
		status := e.Status
		if status == "" {
			status = events.UserStatusActive
		}
		b.exec(`INSERT INTO users (id, num, username, email, first_name, last_name, display_name, status, superadmin, has_password, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, env.Subject, int64(env.Sequence), p.Username, p.Email, p.FirstName, p.LastName, p.DisplayName, status, e.Superadmin, e.PasswordVerifier != "", stamp(env.Time))
	case events.UserUpdated:
		b.exec(`UPDATE users SET username = $2, email = $3, first_name = $4, last_name = $5, display_name = $6 WHERE id = $1`,
			env.Subject, p.Username, p.Email, p.FirstName, p.LastName, p.DisplayName)
	case events.PersonalDataErased:
		m := events.ErasedMarker
		b.exec(`UPDATE users SET username = $2, email = $2, first_name = $2, last_name = $2, display_name = $2 WHERE id = $1`, env.Subject, m)
	case events.PasswordChanged:
		b.exec(`UPDATE users SET has_password = true WHERE id = $1`, env.Subject)
	case events.UserDisabled:
		b.exec(`UPDATE users SET status = $2 WHERE id = $1`, env.Subject, events.UserStatusDisabled)
	case events.UserEnabled:
		b.exec(`UPDATE users SET status = $2 WHERE id = $1`, env.Subject, events.UserStatusActive)
	case events.UserDeleted:
		b.exec(`DELETE FROM users WHERE id = $1`, env.Subject)
		b.exec(`DELETE FROM user_tenants WHERE user_id = $1`, env.Subject)
		b.exec(`DELETE FROM user_roles WHERE user_id = $1`, env.Subject)
		b.exec(`DELETE FROM api_tokens WHERE user_id = $1`, env.Subject)
	case events.APITokenIssued:
		if e.ServiceAccountToken() {
			b.exec(`INSERT INTO service_account_api_tokens (tenant, service_account_id, id, name, description, created_by, created_at, expires_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
				env.Tenant, env.Subject, e.TokenID, e.Name, e.Description, env.Actor.ID, stamp(env.Time), e.ExpiresAt)
			return
		}
		b.exec(`INSERT INTO api_tokens (user_id, id, name, description, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
			env.Subject, e.TokenID, e.Name, e.Description, stamp(env.Time), e.ExpiresAt)
	case events.InstanceSettingsChanged:
		var levels any
		if e.ScopeLevels != nil {
			levels = pq.StringArray(*e.ScopeLevels)
		}
		b.exec(`INSERT INTO instance_settings (id, api_token_default_lifetime_s, api_token_max_lifetime_s,
			credential_default_lifetime_s, credential_max_lifetime_s, scope_levels, updated_at) VALUES (1, $1, $2, $3, $4, $5, $6)
			ON CONFLICT (id) DO UPDATE SET
			api_token_default_lifetime_s = COALESCE(EXCLUDED.api_token_default_lifetime_s, instance_settings.api_token_default_lifetime_s),
			api_token_max_lifetime_s = COALESCE(EXCLUDED.api_token_max_lifetime_s, instance_settings.api_token_max_lifetime_s),
			credential_default_lifetime_s = COALESCE(EXCLUDED.credential_default_lifetime_s, instance_settings.credential_default_lifetime_s),
			credential_max_lifetime_s = COALESCE(EXCLUDED.credential_max_lifetime_s, instance_settings.credential_max_lifetime_s),
			scope_levels = COALESCE(EXCLUDED.scope_levels, instance_settings.scope_levels),
			updated_at = EXCLUDED.updated_at`, e.APITokenDefaultLifetime, e.APITokenMaxLifetime, e.CredentialDefaultLifetime, e.CredentialMaxLifetime, levels, stamp(env.Time))
	case events.APITokenRevoked:
		if env.Tenant != events.InstanceTenant {
			b.exec(`DELETE FROM service_account_api_tokens WHERE tenant = $1 AND service_account_id = $2 AND id = $3`, env.Tenant, env.Subject, e.TokenID)
			return
		}
		b.exec(`DELETE FROM api_tokens WHERE user_id = $1 AND id = $2`, env.Subject, e.TokenID)
	case events.UserTenantAccessRevoked:
		b.exec(`DELETE FROM user_tenants WHERE user_id = $1 AND tenant = $2`, env.Subject, e.Tenant)
	case events.UserTenantAccessGranted:
		b.exec(`INSERT INTO user_tenants (user_id, tenant) VALUES ($1, $2) ON CONFLICT DO NOTHING`, env.Subject, e.Tenant)
	case events.UserRoleGranted:
		b.exec(`INSERT INTO user_roles (user_id, role, tenant, scope_level, scope_target) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
			env.Subject, e.Role, e.Tenant, e.Scope.Level, e.Scope.Target)
		if e.Role == roleSuperadmin && e.Scope.Level == events.ScopeInstance {
			b.exec(`UPDATE users SET superadmin = true WHERE id = $1`, env.Subject)
		}
	case events.ServiceAccountCreated:
		k := saKey{env.Tenant, env.Subject}
		at := stamp(env.Time)
		b.sas[k] = &saRow{tenant: env.Tenant, id: env.Subject, num: env.Sequence, name: e.Name, clientID: e.ClientID, displayName: e.DisplayName, description: e.Description,
			scopeLevel: e.Scope.Level, scopeTarget: e.Scope.Target, scopeKind: e.Scope.NodeKind(), roles: e.Roles, status: e.Status,
			createdBy: env.Actor.ID, createdAt: at, updatedAt: at}
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
			return
		}
		var roles any
		if e.Roles != nil {
			roles = pq.Array(*e.Roles)
		}
		b.exec(`UPDATE service_accounts SET
			display_name = COALESCE($3, display_name), description = COALESCE($4, description),
			roles = COALESCE($5, roles), status = COALESCE($6, status), updated_at = $7
			WHERE tenant = $1 AND id = $2`, env.Tenant, env.Subject, e.DisplayName, e.Description, roles, e.Status, stamp(env.Time))
	case events.ServiceAccountDeleted:
		b.exec(`DELETE FROM service_account_api_tokens WHERE tenant = $1 AND service_account_id = $2`, env.Tenant, env.Subject)
		for k := range b.creds {
			if k.tenant == env.Tenant && k.sa == env.Subject {
				delete(b.creds, k)
			}
		}
		if _, ok := b.sas[saKey{env.Tenant, env.Subject}]; ok {
			delete(b.sas, saKey{env.Tenant, env.Subject})
			return
		}
		b.exec(`DELETE FROM credentials WHERE tenant = $1 AND service_account_id = $2`, env.Tenant, env.Subject)
		b.exec(`DELETE FROM service_accounts WHERE tenant = $1 AND id = $2`, env.Tenant, env.Subject)
	case events.CredentialCreated:
		k := credKey{env.Tenant, env.Subject, e.CredentialID}
		b.creds[k] = &credRow{createdBy: env.Actor.ID, createdAt: stamp(env.Time), expiresAt: stamp(e.ExpiresAt)}
		b.credOrder = append(b.credOrder, k)
	case events.CredentialDeleted:
		k := credKey{env.Tenant, env.Subject, e.CredentialID}
		if _, ok := b.creds[k]; ok {
			delete(b.creds, k)
			return
		}
		b.exec(`DELETE FROM credentials WHERE tenant = $1 AND service_account_id = $2 AND id = $3`, env.Tenant, env.Subject, e.CredentialID)
		if _, ok := b.sas[saKey{env.Tenant, env.Subject}]; !ok {
			b.stale[saKey{env.Tenant, env.Subject}] = struct{}{}
		}
	}
}

func (b *iamBatch) plan() (Plan, error) {
	p := &iamPlan{stmts: b.stmts}
	sas := make([]*saRow, 0, len(b.sas))
	for _, k := range b.saOrder {
		if r, ok := b.sas[k]; ok {
			sas = append(sas, r)
		}
	}
	creds := make([]credKey, 0, len(b.creds))
	for _, k := range b.credOrder {
		if _, ok := b.creds[k]; ok {
			creds = append(creds, k)
		}
	}
	// A credential of an account created in this batch goes into the
	// account's row; one of an older account makes that row stale.
	for _, k := range creds {
		if r, ok := b.sas[saKey{k.tenant, k.sa}]; ok {
			r.credExpiries = append(r.credExpiries, b.creds[k].expiresAt.UnixMicro())
		} else {
			b.stale[saKey{k.tenant, k.sa}] = struct{}{}
		}
	}
	for _, r := range sas {
		slices.Sort(r.credExpiries) // as refreshExpiries orders them
	}
	if len(b.stale) > 0 {
		tenants, ids := make([]string, 0, len(b.stale)), make([]string, 0, len(b.stale))
		for k := range b.stale {
			tenants, ids = append(tenants, k.tenant), append(ids, k.id)
		}
		p.after = append(p.after, statement{refreshExpiries, []any{pq.StringArray(tenants), pq.StringArray(ids)}})
	}
	sr, err := encodeRows("service_accounts", []string{"tenant", "id", "num", "name", "client_id", "display_name", "description",
		"scope_level", "scope_target", "scope_kind", "roles", "status", "created_by", "created_at", "updated_at", "credential_expiries"}, len(sas), func(e *encoder, i int) {
		r := sas[i]
		e.str(r.tenant)
		e.str(r.id)
		e.uint(r.num)
		e.str(r.name)
		e.str(r.clientID)
		e.str(r.displayName)
		e.str(r.description)
		e.str(r.scopeLevel)
		e.str(r.scopeTarget)
		e.str(r.scopeKind)
		e.strs(r.roles)
		e.str(r.status)
		e.str(r.createdBy)
		e.time(r.createdAt)
		e.time(r.updatedAt)
		e.ints(r.credExpiries)
	})
	if err != nil {
		return nil, err
	}
	cr, err := encodeRows("credentials", []string{"tenant", "service_account_id", "id", "created_by", "created_at", "expires_at"}, len(creds), func(e *encoder, i int) {
		k := creds[i]
		r := b.creds[k]
		e.str(k.tenant)
		e.str(k.sa)
		e.str(k.id)
		e.str(r.createdBy)
		e.time(r.createdAt)
		e.time(r.expiresAt)
	})
	if err != nil {
		return nil, err
	}
	p.rows = append(p.rows, sr, cr)
	return p, nil
}
