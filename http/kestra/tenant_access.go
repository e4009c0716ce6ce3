package kestra

import (
	"net/http"
	"slices"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/query"
)

// userTypes maps Kestra's UserType onto the core's principal kinds.
var userTypes = map[string]string{"STANDARD": events.SubjectUser, "SERVICE_ACCOUNT": events.SubjectServiceAccount}

// accessGroup is IAMTenantAccessController.ApiGroup.
type accessGroup struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	External bool   `json:"external"`
}

// userAccessJSON is IAMTenantAccessController.ApiUserTenantAccess.
type userAccessJSON struct {
	ID          string        `json:"id"`
	Username    string        `json:"username"`
	DisplayName string        `json:"displayName"`
	Description string        `json:"description"`
	Groups      []accessGroup `json:"groups"`
	// Auths lists how a user signs in, as /users does: a password, if
	// it has one.
	Auths []authJSON `json:"auths"`
}

// userPermission is IAMTenantAccessController.ApiUserPermission.
type userPermission struct {
	Permission string   `json:"permission"`
	Actions    []string `json:"actions"`
}

// roleAssignment is IAMTenantAccessController.ApiRoleAssignment.
type roleAssignment struct {
	ID          string           `json:"id"`
	Name        string           `json:"name"`
	Namespace   string           `json:"namespace"`
	Origin      string           `json:"origin"`
	SourceID    string           `json:"sourceId"`
	Permissions []userPermission `json:"permissions"`
}

// tenantAccessJSON is IAMTenantAccessController.ApiTenantAccess.
type tenantAccessJSON struct {
	TenantID    string           `json:"tenantId"`
	UserID      string           `json:"userId"`
	Username    string           `json:"username"`
	DisplayName string           `json:"displayName"`
	Groups      []accessGroup    `json:"groups"`
	Roles       []roleAssignment `json:"roles"`
	SuperAdmin  bool             `json:"superAdmin"`
}

// createAccessRequest is IAMTenantAccessController.ApiCreateTenantAccessRequest.
type createAccessRequest struct {
	Email string `json:"email"`
}

// userAutocompleteRequest is IAMTenantAccessController.UserApiAutocomplete.
type userAutocompleteRequest struct {
	Q        *string  `json:"q"`
	IDs      []string `json:"ids"`
	Username *string  `json:"username"`
}

func accessGroups(ms []query.Membership) []accessGroup {
	out := make([]accessGroup, len(ms))
	for i, m := range ms {
		out[i] = accessGroup{ID: m.GroupID, Name: m.GroupName}
	}
	return out
}

func userAccessOf(m query.TenantMember) userAccessJSON {
	return userAccessJSON{ID: m.ID, Username: m.Username, DisplayName: m.DisplayName, Description: m.Description,
		Groups: accessGroups(m.Groups), Auths: authsOf(query.User{HasPassword: m.HasPassword})}
}

// origins are Kestra's RoleOrigin values for the core's.
var origins = map[string]string{"binding": "BINDING", "group": "GROUP"}

func tenantAccessOf(tenant string, a query.TenantUserAccess) tenantAccessJSON {
	out := tenantAccessJSON{TenantID: tenant, UserID: a.User.ID, Username: a.User.Username, DisplayName: a.User.DisplayName,
		Groups: accessGroups(a.User.Groups), Roles: make([]roleAssignment, len(a.Roles)), SuperAdmin: a.User.Superadmin}
	for i, r := range a.Roles {
		perms := permissionsOf(r.Rules)
		ra := roleAssignment{ID: r.Role, Name: r.RoleName, Origin: origins[r.Origin], SourceID: r.SourceID, Permissions: []userPermission{}}
		if r.ScopeLevel == events.ScopeNamespace {
			ra.Namespace = r.ScopeTarget
		}
		for _, p := range Permissions {
			if vs, ok := perms[p]; ok {
				ra.Permissions = append(ra.Permissions, userPermission{Permission: p, Actions: slices.Clone(vs)})
			}
		}
		out.Roles[i] = ra
	}
	return out
}

func (h handlers) searchTenantAccess(w http.ResponseWriter, r *http.Request) {
	s, qs, err := search(r, "type")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	kind := ""
	if t := qs.Get("type"); t != "" {
		var ok bool
		if kind, ok = userTypes[t]; !ok {
			h.fail(w, r, khttp.BadField("type", "type must be STANDARD or SERVICE_ACCOUNT"))
			return
		}
	}
	items, total, err := h.q.SearchTenantAccess(r.Context(), caller(r), kind, s)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := paged[userAccessJSON]{Results: make([]userAccessJSON, len(items)), Total: total}
	for i, m := range items {
		out.Results[i] = userAccessOf(m)
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}

func (h handlers) autocompleteTenantAccess(w http.ResponseWriter, r *http.Request) {
	var req userAutocompleteRequest
	if _, err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	text := ""
	switch {
	case req.Q != nil:
		text = *req.Q
	case req.Username != nil:
		text = *req.Username
	}
	items, err := h.q.AutocompleteTenantAccess(r.Context(), caller(r), text, req.IDs)
	if err != nil {
		h.fail(w, r, inBody(err))
		return
	}
	out := make([]userAccessJSON, len(items))
	for i, m := range items {
		out[i] = userAccessOf(m)
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}

// createTenantAccess grants access to the user with the body's email:
// 204, 404 for no such user, 409 for one who has access already.
func (h handlers) createTenantAccess(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(req createAccessRequest) (uint64, answer, error) {
		if req.Email == "" {
			return 0, nil, badBody("email", "email is required")
		}
		res, err := h.cmds.SetTenantAccess.Handle(r.Context(), commands.SetTenantAccess{Meta: meta(r), Email: req.Email,
			Tenant: caller(r).Tenant, Grant: true, Strict: true})
		return res.Sequence, withStatus(http.StatusNoContent), err
	})
}

func (h handlers) getTenantAccess(w http.ResponseWriter, r *http.Request) {
	read(h, w, r, func() (any, error) {
		a, err := h.q.TenantAccess(r.Context(), caller(r), mux.Vars(r)["userId"])
		if err != nil {
			return nil, err
		}
		return tenantAccessOf(caller(r).Tenant, a), nil
	})
}

// putTenantAccess grants access to the user with the path's id: 201,
// also when the user had it already (PUT is idempotent).
func (h handlers) putTenantAccess(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(noBody) (uint64, answer, error) {
		res, err := h.cmds.SetTenantAccess.Handle(r.Context(), commands.SetTenantAccess{Meta: meta(r), UserID: mux.Vars(r)["userId"],
			Tenant: caller(r).Tenant, Grant: true})
		return res.Sequence, withStatus(http.StatusCreated), err
	})
}

// deleteTenantAccess revokes the access of the user with the path's id:
// 204, 404 for a user without it.
func (h handlers) deleteTenantAccess(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(noBody) (uint64, answer, error) {
		res, err := h.cmds.SetTenantAccess.Handle(r.Context(), commands.SetTenantAccess{Meta: meta(r), UserID: mux.Vars(r)["userId"],
			Tenant: caller(r).Tenant, Grant: false, Strict: true})
		return res.Sequence, withStatus(http.StatusNoContent), err
	})
}
