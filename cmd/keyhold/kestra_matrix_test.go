package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/http/kestra"
)

// The callers of the authorization matrix, in the order of its columns.
const (
	anonymous   = iota // no credentials
	stranger           // another tenant's administrator
	outsider           // a member of the tenant without the route's permission
	permitted          // a member holding exactly the route's permission
	tenantAdmin        // holds tenant-admin in the tenant, no more
	superadmin         // the instance's superadmin
	callers
)

var callerNames = [callers]string{"anonymous", "other tenant's admin", "member without the permission", "member with it", "tenant admin", "superadmin"}

// matrixCase is how one operation answers each caller. req builds the
// request (path after the tenant, body) for a caller; for writes that an
// allowed caller carries out, it makes a fresh target each time, so that
// the cells do not depend on each other.
type matrixCase struct {
	// perms are the Kestra permissions the operation needs; the permitted
	// caller holds a role of exactly these.
	perms perms
	req   func(t *testing.T, f *matrixFixture, who int) (string, any)
	want  [callers]int
}

// perms are Kestra permissions with their actions, as a role holds them.
type perms map[string][]string

func need(perm string, verbs ...string) perms { return perms{perm: verbs} }

// String names p as the key of its permitted caller; fmt sorts map keys.
func (p perms) String() string { return fmt.Sprint(map[string][]string(p)) }

// Rows of expected statuses, by who is refused how.
var (
	// Allowed to members with the permission, 403 to the others.
	allowedTo = func(ok int) [callers]int { return [callers]int{401, 403, 403, ok, ok, ok} }
	// Hidden: members without the permission get 404, as for no such thing.
	hidden = func(ok int) [callers]int { return [callers]int{401, 403, 404, ok, ok, ok} }
	// Instance-level, superadmins only: no Kestra permission grants it.
	superOnly = func(ok int) [callers]int { return [callers]int{401, 403, 403, 403, 403, ok} }
	// Every authenticated caller's own (/me).
	anyone = func(ok int) [callers]int { return [callers]int{401, ok, ok, ok, ok, ok} }
)

// matrix is every Kestra operation, keyed by method and path after the
// prefix, the tenant routes' aliases (/tenants/{tenant}/...) under their
// /{tenant}/... key. req gives the path after the tenant for tenant
// routes, after the prefix for instance-level ones; perms is nil for
// those, which no Kestra permission grants. TestKestraAuthorizationMatrix
// fails for a route without an entry.
var matrix = map[string]matrixCase{
	"GET /me":             {nil, fixed("/me", nil), anyone(200)},
	"PATCH /me":           {nil, fixed("/me", map[string]any{"firstName": "Matrix"}), anyone(200)},
	"PUT /me/password":    {nil, fixed("/me/password", map[string]any{"oldPassword": matrixPassword, "newPassword": matrixPassword}), anyone(200)},
	"GET /me/api-tokens":  {nil, fixed("/me/api-tokens", nil), anyone(200)},
	"POST /me/api-tokens": {nil, fixed("/me/api-tokens", map[string]any{"name": "matrix"}), anyone(200)},
	"DELETE /me/api-tokens/{tokenId}": {nil, func(t *testing.T, f *matrixFixture, who int) (string, any) {
		return "/me/api-tokens/" + f.userToken(t, f.ids[who]), nil
	}, anyone(200)},
	"GET /users": {nil, fixed("/users", nil), superOnly(200)},
	"POST /users": {nil, func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/users", map[string]any{"email": f.unique("user") + "@example.com"}
	}, superOnly(201)},
	"GET /users/{id}": {nil, func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/users/" + f.member, nil
	}, superOnly(200)},
	"PUT /users/{id}":              {nil, fixed("/users/"+matrixNoSuchID, map[string]any{"email": "nobody@example.com"}), superOnly(404)},
	"PATCH /users/{id}":            {nil, fixed("/users/"+matrixNoSuchID, map[string]any{"firstName": "x"}), superOnly(404)},
	"DELETE /users/{id}":           {nil, fixed("/users/"+matrixNoSuchID, nil), superOnly(404)},
	"PATCH /users/{id}/password":   {nil, fixed("/users/"+matrixNoSuchID+"/password", map[string]any{"password": matrixPassword}), superOnly(404)},
	"PATCH /users/{id}/superadmin": {nil, fixed("/users/"+matrixNoSuchID+"/superadmin", map[string]any{"superAdmin": false}), superOnly(404)},
	"PATCH /users/{id}/restricted": {nil, fixed("/users/"+matrixNoSuchID+"/restricted", map[string]any{"restricted": false}), superOnly(404)},
	"GET /users/{id}/api-tokens": {nil, func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/users/" + f.member + "/api-tokens", nil
	}, superOnly(200)},
	"POST /users/{id}/api-tokens": {nil, func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/users/" + f.member + "/api-tokens", map[string]any{"name": "matrix"}
	}, superOnly(200)},
	"DELETE /users/{id}/api-tokens/{tokenId}": {nil, func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/users/" + f.member + "/api-tokens/" + f.userToken(t, f.member), nil
	}, superOnly(204)},
	"POST /tenants": {nil, func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/tenants", map[string]any{"id": f.unique("t"), "name": "matrix", "deleted": false}
	}, superOnly(200)},
	"GET /tenants/search":    {nil, fixed("/tenants/search", nil), superOnly(200)},
	"GET /tenants/{id}":      {nil, fixed("/tenants/acme", nil), superOnly(200)},
	"PUT /tenants/{id}":      {nil, fixed("/tenants/nosuch", map[string]any{"id": "nosuch", "name": "x", "deleted": false}), superOnly(404)},
	"DELETE /tenants/{id}":   {nil, fixed("/tenants/nosuch", nil), superOnly(404)},
	"GET /instance":          {nil, fixed("/instance", nil), superOnly(200)},
	"PUT /instance":          {nil, fixed("/instance", map[string]any{}), superOnly(200)},
	"GET /instance/settings": {nil, fixed("/instance/settings", nil), superOnly(200)},
	"PUT /instance/settings": {nil, fixed("/instance/settings", map[string]any{}), superOnly(200)},

	"POST /{tenant}/roles": {need("ROLE", "CREATE"), func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/roles", map[string]any{"name": f.unique("role"), "permissions": map[string]any{}}
	}, allowedTo(200)},
	"GET /{tenant}/roles/search":        {need("ROLE", "READ"), fixed("/roles/search", nil), allowedTo(200)},
	"POST /{tenant}/roles/autocomplete": {need("ROLE", "READ"), fixed("/roles/autocomplete", map[string]any{"q": "v"}), allowedTo(200)},
	"POST /{tenant}/roles/ids":          {need("ROLE", "READ"), fixed("/roles/ids", map[string]any{"ids": []string{"viewer"}}), allowedTo(200)},
	"GET /{tenant}/roles/{id}":          {need("ROLE", "READ"), fixed("/roles/viewer", nil), allowedTo(200)},
	"PUT /{tenant}/roles/{id}": {need("ROLE", "UPDATE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		return "/roles/" + f.freshRole(t, who), map[string]any{"name": f.unique("role"), "permissions": map[string]any{}}
	}, allowedTo(200)},
	"DELETE /{tenant}/roles/{id}": {need("ROLE", "DELETE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		return "/roles/" + f.freshRole(t, who), nil
	}, allowedTo(204)},

	"POST /{tenant}/groups": {need("GROUP", "CREATE"), func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/groups", map[string]any{"name": f.unique("group")}
	}, allowedTo(200)},
	"GET /{tenant}/groups/search":        {need("GROUP", "READ"), fixed("/groups/search", nil), allowedTo(200)},
	"POST /{tenant}/groups/autocomplete": {need("GROUP", "READ"), fixed("/groups/autocomplete", map[string]any{"q": "g"}), allowedTo(200)},
	"POST /{tenant}/groups/ids": {need("GROUP", "READ"), func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/groups/ids", map[string]any{"ids": []string{f.group}}
	}, allowedTo(200)},
	"GET /{tenant}/groups/{id}": {need("GROUP", "READ"), func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/groups/" + f.group, nil
	}, allowedTo(200)},
	"PUT /{tenant}/groups/{id}": {need("GROUP", "UPDATE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		return "/groups/" + f.freshGroup(t, who, ""), map[string]any{"name": f.unique("group")}
	}, allowedTo(200)},
	"DELETE /{tenant}/groups/{id}": {need("GROUP", "DELETE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		return "/groups/" + f.freshGroup(t, who, ""), nil
	}, allowedTo(200)},
	"GET /{tenant}/groups/{id}/members": {need("GROUP", "READ"), func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/groups/" + f.group + "/members", nil
	}, allowedTo(200)},
	// Changing members answers with the member, without reading the group.
	"PUT /{tenant}/groups/{id}/members/membership/{userId}": {need("GROUP_MEMBERSHIP", "UPDATE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		return "/groups/" + f.freshGroup(t, who, f.member) + "/members/membership/" + f.member + "?membership=OWNER", nil
	}, allowedTo(200)},
	"PUT /{tenant}/groups/{id}/members/{userId}": {need("GROUP_MEMBERSHIP", "CREATE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		return "/groups/" + f.freshGroup(t, who, "") + "/members/" + f.member, nil
	}, allowedTo(200)},
	"DELETE /{tenant}/groups/{id}/members/{userId}": {need("GROUP_MEMBERSHIP", "DELETE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		return "/groups/" + f.freshGroup(t, who, f.member) + "/members/" + f.member, nil
	}, allowedTo(200)},
	"PUT /{tenant}/users/{id}/groups": {need("GROUP_MEMBERSHIP", "CREATE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		id, _ := f.freshUser(t, who, true)
		return "/users/" + id + "/groups", map[string]any{"groupIds": []string{f.freshGroup(t, who, "")}}
	}, allowedTo(204)},

	"POST /{tenant}/bindings": {need("BINDING", "CREATE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		return "/bindings", map[string]any{"type": "GROUP", "externalId": f.freshGroup(t, who, ""), "roleId": f.empty}
	}, allowedTo(200)},
	"POST /{tenant}/bindings/bulk": {need("BINDING", "CREATE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		return "/bindings/bulk", []map[string]any{{"type": "GROUP", "externalId": f.freshGroup(t, who, ""), "roleId": f.empty}}
	}, allowedTo(200)},
	"GET /{tenant}/bindings/search": {need("BINDING", "READ"), fixed("/bindings/search", nil), allowedTo(200)},
	"GET /{tenant}/bindings/{id}": {need("BINDING", "READ"), func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/bindings/" + f.binding, nil
	}, allowedTo(200)},
	"DELETE /{tenant}/bindings/{id}": {need("BINDING", "DELETE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		return "/bindings/" + f.freshBinding(t, who), nil
	}, allowedTo(204)},

	"GET /{tenant}/service-accounts": {need("SERVICE_ACCOUNT", "READ"), fixed("/service-accounts", nil), allowedTo(200)},
	"POST /{tenant}/service-accounts": {need("SERVICE_ACCOUNT", "CREATE"), func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/service-accounts", map[string]any{"name": f.unique("sa")}
	}, allowedTo(200)},
	"GET /{tenant}/service-accounts/{id}": {need("SERVICE_ACCOUNT", "READ"), func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/service-accounts/" + f.account, nil
	}, hidden(200)},
	"PUT /{tenant}/service-accounts/{id}": {need("SERVICE_ACCOUNT", "UPDATE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		return "/service-accounts/" + f.freshAccount(t, who), map[string]any{"name": f.unique("sa"), "description": "", "groups": []any{}}
	}, hidden(200)},
	"DELETE /{tenant}/service-accounts/{id}": {need("SERVICE_ACCOUNT", "DELETE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		return "/service-accounts/" + f.freshAccount(t, who), nil
	}, hidden(200)},
	"GET /{tenant}/service-accounts/{id}/api-tokens": {need("SERVICE_ACCOUNT", "READ"), func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/service-accounts/" + f.account + "/api-tokens", nil
	}, hidden(200)},
	"POST /{tenant}/service-accounts/{id}/api-tokens": {need("SERVICE_ACCOUNT", "CREATE"), func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/service-accounts/" + f.account + "/api-tokens", map[string]any{"name": "matrix", "maxAge": "PT1H"}
	}, hidden(200)},
	"DELETE /{tenant}/service-accounts/{id}/api-tokens/{tokenId}": {need("SERVICE_ACCOUNT", "DELETE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		return "/service-accounts/" + f.account + "/api-tokens/" + f.freshToken(t, who), nil
	}, hidden(200)},

	"POST /{tenant}/invitations": {need("INVITATION", "CREATE"), func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/invitations", map[string]any{"email": f.unique("invitee") + "@example.com"}
	}, allowedTo(201)},
	"GET /{tenant}/invitations/search":        {need("INVITATION", "READ"), fixed("/invitations/search", nil), allowedTo(200)},
	"GET /{tenant}/invitations/email/{email}": {need("INVITATION", "READ"), fixed("/invitations/email/nobody@example.com", nil), allowedTo(200)},
	"GET /{tenant}/invitations/{id}": {need("INVITATION", "READ"), func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/invitations/" + f.invitation, nil
	}, allowedTo(200)},
	"DELETE /{tenant}/invitations/{id}": {need("INVITATION", "DELETE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		return "/invitations/" + f.freshInvitation(t, who), nil
	}, allowedTo(204)},
	// An unknown invitation: registering needs no sign-in, accepting does.
	"POST /invitation/create/{invitationId}": {nil, fixed("/invitation/create/"+matrixNoSuchID, map[string]any{"firstName": "M", "lastName": "X", "password": matrixPassword}),
		[callers]int{404, 404, 404, 404, 404, 404}},
	"POST /invitation/accept/{invitationId}": {nil, fixed("/invitation/accept/"+matrixNoSuchID, nil), anyone(404)},
	"GET /me/invitations":                    {nil, fixed("/me/invitations", nil), anyone(200)},

	"GET /{tenant}/tenant-access":               {need("TENANT_ACCESS", "READ"), fixed("/tenant-access", nil), allowedTo(200)},
	"POST /{tenant}/tenant-access/autocomplete": {need("TENANT_ACCESS", "READ"), fixed("/tenant-access/autocomplete", map[string]any{"q": "m"}), allowedTo(200)},
	"POST /{tenant}/tenant-access": {need("TENANT_ACCESS", "CREATE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		_, email := f.freshUser(t, who, false)
		return "/tenant-access", map[string]any{"email": email}
	}, allowedTo(204)},
	"GET /{tenant}/tenant-access/{userId}": {need("TENANT_ACCESS", "READ"), func(t *testing.T, f *matrixFixture, _ int) (string, any) {
		return "/tenant-access/" + f.member, nil
	}, allowedTo(200)},
	"PUT /{tenant}/tenant-access/{userId}": {need("TENANT_ACCESS", "CREATE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		id, _ := f.freshUser(t, who, false)
		return "/tenant-access/" + id, nil
	}, allowedTo(201)},
	"DELETE /{tenant}/tenant-access/{userId}": {need("TENANT_ACCESS", "DELETE"), func(t *testing.T, f *matrixFixture, who int) (string, any) {
		id, _ := f.freshUser(t, who, true)
		return "/tenant-access/" + id, nil
	}, allowedTo(204)},
}

// Values the instance-level requests use.
const (
	matrixPassword = "a long enough password for the matrix"
	matrixNoSuchID = "01m8xksbk34yhjaxftq8ek86fd"
)

func fixed(path string, body any) func(*testing.T, *matrixFixture, int) (string, any) {
	return func(*testing.T, *matrixFixture, int) (string, any) { return path, body }
}

// matrixFixture is the tenant the matrix runs in, with its callers and the
// things the reads name.
type matrixFixture struct {
	h      *harness
	tokens [callers]string
	ids    [callers]string // the callers' user ids
	// byPermission holds the permitted caller's token for each
	// permission and verb.
	byPermission map[string]string
	group        string // a group bound to viewer
	binding      string // that binding
	account      string // a service account
	member       string // a user with access and no role
	empty        string // a role without rules, that anyone may bind
	invitation   string // a pending invitation
	n            atomic.Int64
}

func (f *matrixFixture) unique(kind string) string {
	return fmt.Sprintf("matrix-%s-%d", kind, f.n.Add(1))
}

// allowed reports whether who carries writes out, so that its request
// needs a target of its own.
func allowed(who int) bool { return who >= permitted }

// userToken issues a personal API token for user and returns its id.
func (f *matrixFixture) userToken(t *testing.T, user string) string {
	t.Helper()
	if user == "" {
		return matrixNoSuchID
	}
	res, err := f.h.srv.cmds.IssueAPIToken.Handle(context.Background(), commands.IssueAPIToken{Meta: commands.Meta{Caller: auth.System()}, UserID: user})
	f.h.applied(t, res.Sequence, err, "issue token")
	f.h.remember(res.Token, "matrix personal token")
	return res.TokenID
}

func (f *matrixFixture) freshRole(t *testing.T, who int) string {
	t.Helper()
	if !allowed(who) {
		return "viewer"
	}
	return f.h.role(t, "acme", f.unique("role"), "iam.roles.list")
}

// freshGroup returns a new group (with member, when given) for a caller
// who changes it, and the shared group for others.
func (f *matrixFixture) freshGroup(t *testing.T, who int, member string) string {
	t.Helper()
	if !allowed(who) {
		return f.group
	}
	ctx := context.Background()
	g, err := f.h.srv.cmds.CreateGroup.Handle(ctx, commands.CreateGroup{Meta: operatorIn("acme"), GroupInput: commands.GroupInput{Name: f.unique("group")}})
	f.h.applied(t, g.Sequence, err, "create group")
	if member != "" {
		res, err := f.h.srv.cmds.SetGroupMember.Handle(ctx, commands.SetGroupMember{Meta: operatorIn("acme"), GroupID: g.Group.ID(), MemberKind: events.SubjectUser, MemberID: member})
		f.h.applied(t, res.Sequence, err, "add member")
	}
	return g.Group.ID()
}

func (f *matrixFixture) freshBinding(t *testing.T, who int) string {
	t.Helper()
	if !allowed(who) {
		return f.binding
	}
	res, err := f.h.srv.cmds.CreateBinding.Handle(context.Background(), commands.CreateBinding{Meta: operatorIn("acme"), Role: f.empty,
		SubjectKind: events.SubjectGroup, SubjectID: f.freshGroup(t, who, "")})
	f.h.applied(t, res.Sequence, err, "create binding")
	return res.Binding.ID()
}

func (f *matrixFixture) freshAccount(t *testing.T, who int) string {
	t.Helper()
	if !allowed(who) {
		return f.account
	}
	res, err := f.h.srv.cmds.CreateServiceAccount.Handle(context.Background(), commands.CreateServiceAccount{Meta: operatorIn("acme"), DisplayName: f.unique("sa"), Scope: events.Scope{Level: events.ScopeTenant}})
	f.h.applied(t, res.Sequence, err, "create service account")
	return res.ServiceAccount.ID()
}

func (f *matrixFixture) freshToken(t *testing.T, who int) string {
	t.Helper()
	res, err := f.h.srv.cmds.IssueServiceAccountToken.Handle(context.Background(), commands.IssueServiceAccountToken{Meta: operatorIn("acme"), ServiceAccountID: f.account, Name: "matrix"})
	f.h.applied(t, res.Sequence, err, "issue token")
	f.h.remember(res.Token, "matrix token")
	return res.TokenID
}

// freshUser makes a user, with access to acme or without, and returns
// its id and email.
func (f *matrixFixture) freshUser(t *testing.T, who int, access bool) (string, string) {
	t.Helper()
	if !allowed(who) {
		return f.member, "nobody@acme.example"
	}
	name := f.unique("user")
	var tenants []string
	if access {
		tenants = []string{"acme"}
	}
	res, err := f.h.srv.cmds.CreateUser.Handle(context.Background(), commands.CreateUser{Meta: commands.Meta{Caller: auth.System()}, Username: name, Email: name + "@acme.example", Tenants: tenants})
	f.h.applied(t, res.Sequence, err, "create user")
	return res.User.ID(), name + "@acme.example"
}

// user makes a user with access to tenant, bound to roles there, and
// returns its id and a personal API token.
func (f *matrixFixture) user(t *testing.T, tenant string, roles ...string) (string, string) {
	t.Helper()
	ctx := context.Background()
	name := f.unique("user")
	res, err := f.h.srv.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: commands.Meta{Caller: auth.System()}, Username: name, Email: name + "@" + tenant + ".example", Tenants: []string{tenant}})
	f.h.applied(t, res.Sequence, err, "create user")
	for _, r := range roles {
		f.h.bindAsOperator(t, tenant, r, events.SubjectUser, res.User.ID(), events.Scope{})
	}
	tok, err := f.h.srv.cmds.IssueAPIToken.Handle(ctx, commands.IssueAPIToken{Meta: commands.Meta{Caller: auth.System()}, UserID: res.User.ID()})
	f.h.applied(t, tok.Sequence, err, "issue token")
	f.h.remember(tok.Token, "API token of "+name)
	return res.User.ID(), tok.Token
}

func newMatrixFixture(t *testing.T, h *harness) *matrixFixture {
	t.Helper()
	f := &matrixFixture{h: h, byPermission: map[string]string{}}
	ctx := context.Background()
	boot := h.bootstrap(t, "acme")
	f.ids[superadmin], f.tokens[superadmin] = boot.userID, boot.token
	h.bootstrap(t, "other")
	f.ids[stranger], f.tokens[stranger] = f.user(t, "other", "tenant-admin")
	f.ids[tenantAdmin], f.tokens[tenantAdmin] = f.user(t, "acme", "tenant-admin")
	f.ids[outsider], f.tokens[outsider] = f.user(t, "acme")
	f.member = f.ids[outsider]
	// Instance-level routes have no permission: the permitted caller is
	// the outsider there.
	f.ids[permitted] = f.ids[outsider]
	k := newKestraAPI(t, h, "acme", "/api/v1")
	for _, c := range matrix {
		if c.perms == nil {
			continue
		}
		key := c.perms.String()
		if _, ok := f.byPermission[key]; ok {
			continue
		}
		// The role is made through Kestra's permissions, as a client would.
		r := k.ok(t, http.MethodPost, "/roles", f.tokens[superadmin], map[string]any{"name": f.unique("perm"), "permissions": c.perms}, http.StatusOK)
		_, f.byPermission[key] = f.user(t, "acme", r.object(t)["id"].(string))
	}
	empty, err := h.srv.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: operatorIn("acme"), RoleInput: commands.RoleInput{Name: "empty"}})
	h.applied(t, empty.Sequence, err, "create empty role")
	f.empty = empty.Role.ID()
	g, err := h.srv.cmds.CreateGroup.Handle(ctx, commands.CreateGroup{Meta: operatorIn("acme"), GroupInput: commands.GroupInput{Name: "matrix-group"}})
	h.applied(t, g.Sequence, err, "create group")
	f.group = g.Group.ID()
	b, err := h.srv.cmds.CreateBinding.Handle(ctx, commands.CreateBinding{Meta: operatorIn("acme"), Role: "viewer", SubjectKind: events.SubjectGroup, SubjectID: f.group})
	h.applied(t, b.Sequence, err, "create binding")
	f.binding = b.Binding.ID()
	sa, err := h.srv.cmds.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: operatorIn("acme"), DisplayName: "matrix-sa", Scope: events.Scope{Level: events.ScopeTenant}})
	h.applied(t, sa.Sequence, err, "create service account")
	f.account = sa.ServiceAccount.ID()
	f.invitation = f.freshInvitation(t, superadmin)
	return f
}

// freshInvitation invites a new email to acme for a caller who deletes
// it, and returns the shared invitation for others.
func (f *matrixFixture) freshInvitation(t *testing.T, who int) string {
	t.Helper()
	if !allowed(who) && f.invitation != "" {
		return f.invitation
	}
	res, err := f.h.srv.cmds.CreateInvitation.Handle(context.Background(), commands.CreateInvitation{Meta: operatorIn("acme"), Email: f.unique("invitee") + "@example.com"})
	f.h.applied(t, res.Sequence, err, "invite")
	return res.Invitation.ID()
}

// TestKestraAuthorizationMatrix sends every Kestra operation, under every
// prefix and alias, as each kind of caller, and checks the status against
// the matrix: the one table of who may do what in the dialect.
func TestKestraAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	f := newMatrixFixture(t, h)
	seen := map[string]bool{}
	for _, rt := range kestra.Routes() {
		key, ok := matrixKey(rt)
		if !ok {
			t.Errorf("%s %s: not under a prefix and tenant", rt.Method, rt.Path)
			continue
		}
		c, ok := matrix[key]
		if !ok {
			t.Errorf("%s %s has no entry %q in the authorization matrix: add one", rt.Method, rt.Path, key)
			continue
		}
		seen[key] = true
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			t.Parallel()
			for who := range callers {
				path, body := c.req(t, f, who)
				token := f.tokens[who]
				switch {
				case who == permitted && c.perms != nil:
					token = f.byPermission[c.perms.String()]
				case who == permitted:
					token = f.tokens[outsider] // no permission grants it
				}
				base := prefixOf(rt.Path)
				if rest := matrixRest(rt.Path); rest != "" {
					base = strings.Replace(rt.Path[:len(rt.Path)-len(rest)], "{tenant}", "acme", 1)
				}
				full := base + path
				r := h.do(t, rt.Method, full, token, body)
				if r.Status != c.want[who] {
					t.Errorf("%s: status %d, want %d; body %s", callerNames[who], r.Status, c.want[who], r.Body)
				}
			}
		})
	}
	for key := range matrix {
		if !seen[key] {
			t.Errorf("matrix entry %q matches no route", key)
		}
	}
	t.Cleanup(func() { h.assertNoSecretsStored(t) })
}

// matrixKey is a route's key in the matrix: its method and its path after
// the prefix, with /{tenant} for the tenant base of either form.
func matrixKey(rt kestra.Route) (string, bool) {
	if rest := matrixRest(rt.Path); rest != "" {
		return rt.Method + " /{tenant}" + rest, true
	}
	prefix := prefixOf(rt.Path)
	if prefix == "" {
		return "", false
	}
	return rt.Method + " " + strings.TrimPrefix(rt.Path, prefix), true
}

// prefixOf is the dialect prefix path starts with, or "".
func prefixOf(path string) string {
	for _, p := range kestra.Prefixes {
		if strings.HasPrefix(path, p+"/") {
			return p
		}
	}
	return ""
}

// matrixRest is the part of path after "{tenant}".
func matrixRest(path string) string {
	_, rest, ok := strings.Cut(path, "{tenant}")
	if !ok {
		return ""
	}
	return rest
}
