package projections

import (
	"context"
	_ "embed"
	"encoding/json"

	"github.com/keyhold/keyhold/events"
)

//go:embed rbac.sql
var rbacSchema string

// RBAC projects roles, bindings, groups and group members. RBAC events are
// rare, so it writes one statement per event. Stateless; safe to use from
// one runner.
type RBAC struct{}

// Name implements Projector.
func (RBAC) Name() string { return "rbac" }

// Version implements Projector. Bump it when rbac.sql or Apply changes.
func (RBAC) Version() int { return 1 }

// Schema implements Projector.
func (RBAC) Schema() string { return rbacSchema }

// Tables implements Projector.
func (RBAC) Tables() []string { return []string{"roles", "bindings", "groups", "group_members"} }

// Apply implements Projector.
func (RBAC) Apply(ctx context.Context, tx Tx, batch []events.Envelope) error {
	for _, env := range batch {
		st, err := rbacStatements(env)
		if err != nil {
			return &ApplyError{Seq: env.Sequence, Err: err}
		}
		for _, s := range st {
			if _, err := tx.ExecContext(ctx, s.query, s.args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// rbacStatements plans what one event changes; events of other kinds
// (except deletions of principals, whose bindings and memberships go with
// them) plan nothing.
func rbacStatements(env events.Envelope) ([]statement, error) {
	switch env.Type {
	case events.RoleCreated{}.EventType(), events.RoleUpdated{}.EventType(), events.RoleDeleted{}.EventType(),
		events.BindingCreated{}.EventType(), events.BindingDeleted{}.EventType(),
		events.GroupCreated{}.EventType(), events.GroupUpdated{}.EventType(), events.GroupDeleted{}.EventType(),
		events.GroupMemberSet{}.EventType(), events.GroupMemberRemoved{}.EventType(),
		events.ServiceAccountDeleted{}.EventType(), events.UserDeleted{}.EventType():
	default:
		return nil, nil
	}
	e, err := events.Decode(env)
	if err != nil {
		return nil, err
	}
	t, id, at := env.Tenant, env.Subject, stamp(env.Time)
	one := func(q string, args ...any) []statement { return []statement{{q, args}} }
	switch e := e.(type) {
	case events.RoleCreated:
		rules, err := json.Marshal(e.Rules)
		if err != nil {
			return nil, err
		}
		return one(`INSERT INTO roles (tenant, id, name, description, managed, is_default, rules, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT DO NOTHING`, t, id, e.Name, e.Description, e.Managed, e.Default, string(rules), at), nil
	case events.RoleUpdated:
		var rules *string
		if e.Rules != nil {
			b, err := json.Marshal(*e.Rules)
			if err != nil {
				return nil, err
			}
			s := string(b)
			rules = &s
		}
		return one(`UPDATE roles SET name = COALESCE($3, name), description = COALESCE($4, description),
			is_default = COALESCE($5, is_default), rules = COALESCE($6::jsonb, rules), updated_at = $7
			WHERE tenant = $1 AND id = $2`, t, id, e.Name, e.Description, e.Default, rules, at), nil
	case events.RoleDeleted:
		return []statement{
			{`DELETE FROM roles WHERE tenant = $1 AND id = $2`, []any{t, id}},
			{`DELETE FROM bindings WHERE tenant = $1 AND role = $2`, []any{t, id}},
		}, nil
	case events.BindingCreated:
		return one(`INSERT INTO bindings (tenant, id, role, subject_kind, subject_id, scope_level, scope_target, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`, t, id, e.Role, e.SubjectKind, e.SubjectID, e.Scope.Level, e.Scope.Target, at), nil
	case events.BindingDeleted:
		return one(`DELETE FROM bindings WHERE tenant = $1 AND id = $2`, t, id), nil
	case events.GroupCreated:
		return one(`INSERT INTO groups (tenant, id, name, description, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING`, t, id, e.Name, e.Description, at), nil
	case events.GroupUpdated:
		return one(`UPDATE groups SET name = COALESCE($3, name), description = COALESCE($4, description), updated_at = $5
			WHERE tenant = $1 AND id = $2`, t, id, e.Name, e.Description, at), nil
	case events.GroupDeleted:
		return []statement{
			{`DELETE FROM groups WHERE tenant = $1 AND id = $2`, []any{t, id}},
			{`DELETE FROM group_members WHERE tenant = $1 AND group_id = $2`, []any{t, id}},
			{`DELETE FROM bindings WHERE tenant = $1 AND subject_id = $2`, []any{t, id}},
		}, nil
	case events.GroupMemberSet:
		return one(`INSERT INTO group_members (tenant, group_id, member_kind, member_id, membership) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant, group_id, member_id) DO UPDATE SET membership = EXCLUDED.membership`, t, id, e.MemberKind, e.MemberID, e.Membership), nil
	case events.GroupMemberRemoved:
		return one(`DELETE FROM group_members WHERE tenant = $1 AND group_id = $2 AND member_id = $3`, t, id, e.MemberID), nil
	case events.ServiceAccountDeleted, events.UserDeleted:
		// A user is instance-level: its bindings and memberships in every tenant go.
		return []statement{
			{`DELETE FROM bindings WHERE subject_id = $1`, []any{id}},
			{`DELETE FROM group_members WHERE member_id = $1`, []any{id}},
		}, nil
	}
	return nil, nil
}
