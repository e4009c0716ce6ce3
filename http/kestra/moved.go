package kestra

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	khttp "github.com/keyhold/keyhold/http"
)

// instanceRoutes are the dialect's instance-level paths, relative to a
// prefix. They are mounted before the tenant routes; their first segments
// are commands.ReservedTenantIDs, so no tenant id takes them.
func (h handlers) instanceRoutes() []route {
	return []route{
		{"/me", khttp.Methods{http.MethodGet: h.me, http.MethodPatch: h.patchMe}, false},
		{"/me/password", khttp.Methods{http.MethodPut: h.putMyPassword}, false},
		{"/me/api-tokens", khttp.Methods{http.MethodGet: h.myTokens, http.MethodPost: h.createMyToken}, false},
		{"/me/api-tokens/{tokenId}", khttp.Methods{http.MethodDelete: h.deleteMyToken}, false},
		{"/users", khttp.Methods{http.MethodGet: h.searchUsers, http.MethodPost: h.createUser}, false},
		{"/users/{id}", khttp.Methods{http.MethodGet: h.getUser, http.MethodPut: h.updateUser, http.MethodPatch: h.patchUser, http.MethodDelete: h.deleteUser}, false},
		{"/users/{id}/password", khttp.Methods{http.MethodPatch: h.patchUserPassword}, false},
		{"/users/{id}/superadmin", khttp.Methods{http.MethodPatch: h.patchSuperAdmin}, false},
		{"/users/{id}/restricted", khttp.Methods{http.MethodPatch: h.patchRestricted}, false},
		{"/users/{id}/api-tokens", khttp.Methods{http.MethodGet: h.userTokens, http.MethodPost: h.createUserToken}, false},
		{"/users/{id}/api-tokens/{tokenId}", khttp.Methods{http.MethodDelete: h.deleteUserToken}, false},
		{"/tenants", khttp.Methods{http.MethodPost: h.createTenant}, false},
		{"/tenants/search", khttp.Methods{http.MethodGet: h.searchTenants}, false},
		{"/tenants/{id}", khttp.Methods{http.MethodGet: h.getTenant, http.MethodPut: h.updateTenant, http.MethodDelete: h.deleteTenant}, false},
		{"/instance", khttp.Methods{http.MethodGet: h.instanceSettings, http.MethodPut: h.putInstanceSettings}, false},
		{"/instance/settings", khttp.Methods{http.MethodGet: h.instanceSettings, http.MethodPut: h.putInstanceSettings}, false},
	}
}

// movedRoute is a path Kestra 0.24 moved or removed: any method gets 404
// in Kestra's error shape, with a message saying where to go instead.
type movedRoute struct {
	path string
	// to says where the path went; "{prefix}" is the request's prefix and
	// "{tenant}" the path's tenant.
	to string
}

// movedFirst are moved paths that must be matched before the tenant
// routes, which would take their first segment for a tenant id.
var movedFirst = []movedRoute{
	{"/cluster", "/cluster moved to {prefix}/instance in Kestra 0.24; Keyhold serves {prefix}/instance/settings"},
	{"/cluster/{rest:.*}", "/cluster moved to {prefix}/instance in Kestra 0.24; Keyhold serves {prefix}/instance/settings"},
	{"/tenants/{tenant}/invitations", "the superadmin routes under /tenants/{tenant}/invitations were removed in Kestra 0.24: use {prefix}/{tenant}/invitations"},
	{"/tenants/{tenant}/invitations/{rest:.*}", "the superadmin routes under /tenants/{tenant}/invitations were removed in Kestra 0.24: use {prefix}/{tenant}/invitations"},
	{"/tenants/{tenant}/namespaces", "the superadmin routes under /tenants/{tenant}/namespaces were removed in Kestra 0.24: use {prefix}/{tenant}/namespaces"},
	{"/tenants/{tenant}/namespaces/{rest:.*}", "the superadmin routes under /tenants/{tenant}/namespaces were removed in Kestra 0.24: use {prefix}/{tenant}/namespaces"},
	{"/tenants/{tenant}/bindings", "the superadmin routes under /tenants/{tenant}/bindings were removed in Kestra 0.24: use {prefix}/{tenant}/bindings"},
	{"/tenants/{tenant}/bindings/{rest:.*}", "the superadmin routes under /tenants/{tenant}/bindings were removed in Kestra 0.24: use {prefix}/{tenant}/bindings"},
}

// movedLast are moved paths under a tenant, matched after the tenant
// routes (PUT /{tenant}/users/{id}/groups stays).
var movedLast = []movedRoute{
	{"/{tenant}/me", "/{tenant}/me moved to {prefix}/me in Kestra 0.24"},
	{"/{tenant}/me/{rest:.*}", "/{tenant}/me moved to {prefix}/me in Kestra 0.24"},
	{"/{tenant}/users", usersRemoved},
	{"/{tenant}/users/{rest:.*}", usersRemoved},
}

const usersRemoved = "the /{tenant}/users routes were removed in Kestra 0.24: use {prefix}/users (superadmins), {prefix}/{tenant}/tenant-access for tenant access, {prefix}/{tenant}/service-accounts for service accounts"

// handler answers the moved path under prefix: a fallback (no endpoint)
// whose message says where the path went.
func (m movedRoute) handler(prefix string) http.Handler {
	msg := strings.ReplaceAll(m.to, "{prefix}", prefix)
	return khttp.Fallback{OnErr: func(w http.ResponseWriter, r *http.Request, status int, _, _ string) {
		out := msg
		if t := pathTenant(r); t != "" {
			out = strings.ReplaceAll(out, "{tenant}", t)
		}
		writeError(w, r, status, "", out)
	}}
}

// registerMoved mounts routes under prefix on r, unauthenticated: where a
// path went is no secret.
func registerMoved(r *mux.Router, prefix string, routes []movedRoute) {
	s := r.PathPrefix(prefix).Subrouter()
	for _, m := range routes {
		s.Handle(m.path, m.handler(prefix))
	}
}
