package projections

import (
	_ "embed"
	"encoding/json"

	"github.com/keyhold/keyhold/events"
)

// rbac.sql holds the tables of roles, bindings, groups and members; they
// are part of the IAM projection, written in its batches.
//
//go:embed rbac.sql
var rbacSchema string

// rbacStatements plans what one event changes in the RBAC tables; events
// of other kinds (except deletions of principals, whose bindings and
// memberships go with them) plan nothing. Rules marshal without error:
// they hold strings only.
func rbacStatements(env events.Envelope, e events.Event) []statement {
	t, id, at := env.Tenant, env.Subject, stamp(env.Time)
	num := int64(env.Sequence)
	one := func(q string, args ...any) []statement { return []statement{{q, args}} }
	switch e := e.(type) {
	case events.RoleCreated:
		rules, _ := json.Marshal(e.Rules)
		return one(`INSERT INTO roles (tenant, id, num, name, description, managed, is_default, rules, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT DO NOTHING`, t, id, num, e.Name, e.Description, e.Managed, e.Default, string(rules), at)
	case events.RoleUpdated:
		var rules *string
		if e.Rules != nil {
			b, _ := json.Marshal(*e.Rules)
			s := string(b)
			rules = &s
		}
		return one(`UPDATE roles SET name = COALESCE($3, name), description = COALESCE($4, description),
			is_default = COALESCE($5, is_default), rules = COALESCE($6::jsonb, rules), updated_at = $7
			WHERE tenant = $1 AND id = $2`, t, id, e.Name, e.Description, e.Default, rules, at)
	case events.RoleDeleted:
		return []statement{
			{`DELETE FROM roles WHERE tenant = $1 AND id = $2`, []any{t, id}},
			{`DELETE FROM bindings WHERE tenant = $1 AND role = $2`, []any{t, id}},
		}
	case events.BindingCreated:
		return one(`INSERT INTO bindings (tenant, id, role, subject_kind, subject_id, scope_level, scope_target, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`, t, id, e.Role, e.SubjectKind, e.SubjectID, e.Scope.Level, e.Scope.Target, at)
	case events.BindingDeleted:
		return one(`DELETE FROM bindings WHERE tenant = $1 AND id = $2`, t, id)
	case events.GroupCreated:
		return one(`INSERT INTO groups (tenant, id, num, name, description, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT DO NOTHING`, t, id, num, e.Name, e.Description, at)
	case events.GroupUpdated:
		return one(`UPDATE groups SET name = COALESCE($3, name), description = COALESCE($4, description), updated_at = $5
			WHERE tenant = $1 AND id = $2`, t, id, e.Name, e.Description, at)
	case events.GroupDeleted:
		return []statement{
			{`DELETE FROM groups WHERE tenant = $1 AND id = $2`, []any{t, id}},
			{`DELETE FROM group_members WHERE tenant = $1 AND group_id = $2`, []any{t, id}},
			{`DELETE FROM bindings WHERE tenant = $1 AND subject_id = $2`, []any{t, id}},
		}
	case events.GroupMemberSet:
		return one(`INSERT INTO group_members (tenant, group_id, member_kind, member_id, membership) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant, group_id, member_id) DO UPDATE SET membership = EXCLUDED.membership`, t, id, e.MemberKind, e.MemberID, e.Membership)
	case events.GroupMemberRemoved:
		return one(`DELETE FROM group_members WHERE tenant = $1 AND group_id = $2 AND member_id = $3`, t, id, e.MemberID)
	case events.ServiceAccountDeleted, events.UserDeleted:
		// A user is instance-level: its bindings and memberships in every tenant go.
		return []statement{
			{`DELETE FROM bindings WHERE subject_id = $1`, []any{id}},
			{`DELETE FROM group_members WHERE member_id = $1`, []any{id}},
		}
	}
	return nil
}
