package events

// Rule is one rule of a role as the log stores it: an effect ("allow" or
// "deny"), action patterns and optional resource patterns (authz.Rule).
type Rule struct {
	Effect    string   `json:"effect"`
	Actions   []string `json:"actions"`
	Resources []string `json:"resources,omitempty"`
}

// Rule effects.
const (
	EffectAllow = "allow"
	EffectDeny  = "deny"
)

// RoleCreated adds a role to a tenant. Aggregate: role in its tenant; the
// name is claimed unique per tenant in the same batch. Managed roles are
// built in: seeded by Keyhold and changed only by it.
type RoleCreated struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Managed     bool   `json:"managed,omitempty"`
	// Default roles are granted to new members of the tenant.
	Default bool   `json:"default,omitempty"`
	Rules   []Rule `json:"rules"`
}

// EventType implements Event.
func (RoleCreated) EventType() string { return "iam.role.created" }

// RoleUpdated changes a role; nil fields are unchanged. Every binding of
// the role follows at once.
type RoleUpdated struct {
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
	Default     *bool   `json:"default,omitempty"`
	Rules       *[]Rule `json:"rules,omitempty"`
}

// EventType implements Event.
func (RoleUpdated) EventType() string { return "iam.role.updated" }

// RoleDeleted removes a role with every binding of it; its name is
// released in the same batch.
type RoleDeleted struct{}

// EventType implements Event.
func (RoleDeleted) EventType() string { return "iam.role.deleted" }

// Subject kinds of a binding.
const (
	SubjectUser           = "user"
	SubjectServiceAccount = "service_account"
	SubjectGroup          = "group"
)

// BindingCreated grants a role of the tenant to a user, a service account
// or a group at a scope within the tenant. Aggregate: binding in its
// tenant. Service accounts' own role lists (ServiceAccountCreated.Roles)
// are bindings too, at the account's scope, recorded on the account.
type BindingCreated struct {
	Role        string `json:"role"`
	SubjectKind string `json:"subject_kind"`
	SubjectID   string `json:"subject_id"`
	Scope       Scope  `json:"scope"`
}

// EventType implements Event.
func (BindingCreated) EventType() string { return "iam.binding.created" }

// BindingDeleted removes a binding.
type BindingDeleted struct{}

// EventType implements Event.
func (BindingDeleted) EventType() string { return "iam.binding.deleted" }

// AccessTokensInvalidated ends every access token issued to a service
// account before it, decided by the command that took a right away
// (disabling the account, removing a role). Aggregate: service_account.
type AccessTokensInvalidated struct {
	Reason string `json:"reason"`
}

// EventType implements Event.
func (AccessTokensInvalidated) EventType() string {
	return "iam.service_account.access_tokens_invalidated"
}

// Group memberships.
const (
	MembershipMember = "member"
	MembershipOwner  = "owner"
)

// GroupCreated adds a group of principals to a tenant. Aggregate: group in
// its tenant; the name is claimed unique per tenant in the same batch.
// Roles bound to the group (BindingCreated with SubjectGroup) hold for
// every member.
type GroupCreated struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// EventType implements Event.
func (GroupCreated) EventType() string { return "iam.group.created" }

// GroupUpdated changes a group; nil fields are unchanged.
type GroupUpdated struct {
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
}

// EventType implements Event.
func (GroupUpdated) EventType() string { return "iam.group.updated" }

// GroupDeleted removes a group with its memberships and bindings; its name
// is released in the same batch.
type GroupDeleted struct{}

// EventType implements Event.
func (GroupDeleted) EventType() string { return "iam.group.deleted" }

// GroupMemberSet adds a user or service account of the tenant to a group,
// or changes its membership (owners manage the group's members).
type GroupMemberSet struct {
	MemberKind string `json:"member_kind"`
	MemberID   string `json:"member_id"`
	Membership string `json:"membership"`
}

// EventType implements Event.
func (GroupMemberSet) EventType() string { return "iam.group.member_set" }

// GroupMemberRemoved takes a member out of a group.
type GroupMemberRemoved struct {
	MemberID string `json:"member_id"`
}

// EventType implements Event.
func (GroupMemberRemoved) EventType() string { return "iam.group.member_removed" }
