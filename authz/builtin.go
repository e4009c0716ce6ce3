package authz

// Actions of Keyhold's own IAM API, in the {service}.{resource}.{verb}
// form every dialect's vocabulary is translated into. Requests at a tenant
// or a node of it, except the instance actions.
const (
	ServiceAccountsList   = "iam.serviceAccounts.list"
	ServiceAccountsGet    = "iam.serviceAccounts.get"
	ServiceAccountsCreate = "iam.serviceAccounts.create"
	ServiceAccountsUpdate = "iam.serviceAccounts.update"
	ServiceAccountsDelete = "iam.serviceAccounts.delete"

	CredentialsList   = "iam.serviceAccountCredentials.list"
	CredentialsGet    = "iam.serviceAccountCredentials.get"
	CredentialsCreate = "iam.serviceAccountCredentials.create"
	CredentialsDelete = "iam.serviceAccountCredentials.delete"

	// SettingsGet and SettingsUpdate concern a tenant's credential and
	// scope policy.
	SettingsGet    = "iam.settings.get"
	SettingsUpdate = "iam.settings.update"

	RolesList   = "iam.roles.list"
	RolesGet    = "iam.roles.get"
	RolesCreate = "iam.roles.create"
	RolesUpdate = "iam.roles.update"
	RolesDelete = "iam.roles.delete"

	GroupsList   = "iam.groups.list"
	GroupsGet    = "iam.groups.get"
	GroupsCreate = "iam.groups.create"
	GroupsUpdate = "iam.groups.update"
	GroupsDelete = "iam.groups.delete"
	// Adding, changing and removing group members (a group's owners may
	// too, for their group).
	GroupMembersCreate = "iam.groupMembers.create"
	GroupMembersUpdate = "iam.groupMembers.update"
	GroupMembersDelete = "iam.groupMembers.delete"

	// Invitations into the tenant: reading them, inviting (granting what
	// the invitation names needs the rights to grant it too), withdrawing.
	InvitationsList   = "iam.invitations.list"
	InvitationsGet    = "iam.invitations.get"
	InvitationsCreate = "iam.invitations.create"
	InvitationsDelete = "iam.invitations.delete"

	BindingsList   = "iam.bindings.list"
	BindingsCreate = "iam.bindings.create"
	BindingsDelete = "iam.bindings.delete"

	// Tenant access: which users may act in a tenant at all. Granting
	// and revoking it concern one tenant, so tenant administrators may.
	TenantAccessList   = "iam.tenantAccess.list"
	TenantAccessGet    = "iam.tenantAccess.get"
	TenantAccessCreate = "iam.tenantAccess.create"
	TenantAccessUpdate = "iam.tenantAccess.update"
	TenantAccessDelete = "iam.tenantAccess.delete"

	// TokensIntrospect lets a resource server introspect tokens of its
	// tenant (RFC 7662).
	TokensIntrospect = "iam.tokens.introspect"

	// AuditEventsList reads a tenant's audit trail.
	AuditEventsList = "audit.events.list"

	// Instance actions: users and tenants are instance-level, so only
	// superadmins (or an instance-level grant) reach them.
	UsersList     = "iam.users.list"
	UsersGet      = "iam.users.get"
	UsersCreate   = "iam.users.create"
	UsersUpdate   = "iam.users.update"
	UsersDelete   = "iam.users.delete"
	TenantsCreate = "iam.tenants.create"
	TenantsList   = "iam.tenants.list"
	TenantsGet    = "iam.tenants.get"
	TenantsUpdate = "iam.tenants.update"
	TenantsDelete = "iam.tenants.delete"
	// InstanceGet reads instance-level settings.
	InstanceGet = "iam.instance.get"
	// InstanceUpdate changes instance-level settings.
	InstanceUpdate = "iam.instance.update"
	// PersonalDataErase destroys a user's personal data (its data key).
	PersonalDataErase = "iam.personalData.erase"
)

// Ids (and names) of the managed roles seeded in every tenant.
const (
	RoleTenantAdmin  = "tenant-admin"
	RoleAuditor      = "auditor"
	RoleViewer       = "viewer"
	RoleIntrospector = "token-introspector"
)

// ManagedRoles returns the built-in roles of tenant, as seeded when it is
// created (and into tenants created before a role existed). A role's id
// is its name. tenant-admin holds everything the others hold, so an
// administrator may grant any of them, and every action a Kestra
// permission maps to (kestra.* for those outside IAM), so it may do
// everything in its tenant's Kestra API.
func ManagedRoles(tenant string) []Role {
	allow := func(actions ...string) Rule { return Rule{Effect: Allow, Actions: actions} }
	return []Role{
		{ID: RoleTenantAdmin, Tenant: tenant, Name: RoleTenantAdmin, Managed: true, Rules: []Rule{
			allow("iam.serviceAccounts.*", "iam.serviceAccountCredentials.*", "iam.settings.*", "iam.roles.*", "iam.bindings.*",
				"iam.groups.*", "iam.groupMembers.*", "iam.invitations.*", "iam.tenantAccess.*", "kestra.*",
				TokensIntrospect, AuditEventsList),
		}},
		{ID: RoleAuditor, Tenant: tenant, Name: RoleAuditor, Managed: true, Rules: []Rule{allow(AuditEventsList)}},
		{ID: RoleViewer, Tenant: tenant, Name: RoleViewer, Managed: true, Rules: []Rule{allow(RolesList, RolesGet)}},
		{ID: RoleIntrospector, Tenant: tenant, Name: RoleIntrospector, Managed: true, Rules: []Rule{allow(TokensIntrospect)}},
	}
}

// RoleKey is the model-wide id of the role with id in tenant: role ids are
// unique per tenant only (every tenant has a "tenant-admin").
func RoleKey(tenant, id string) string { return tenant + "/" + id }
