package kestra

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/commands"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/query"
)

// userAuthJSON is IAMUserController.ApiUserAuth.
type userAuthJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// userGroupJSON is IAMUserController.ApiGroup.
type userGroupJSON struct {
	ID       string `json:"id"`
	TenantID string `json:"tenantId"`
}

// userJSON is IAMUserController.ApiUser.
type userJSON struct {
	ID          string          `json:"id"`
	Username    string          `json:"username"`
	DisplayName string          `json:"displayName"`
	FirstName   string          `json:"firstName"`
	LastName    string          `json:"lastName"`
	Email       string          `json:"email"`
	Tenants     []tenantRefJSON `json:"tenants"`
	Auths       []userAuthJSON  `json:"auths"`
	Groups      []userGroupJSON `json:"groups"`
	SuperAdmin  bool            `json:"superAdmin"`
	Restricted  bool            `json:"restricted"`
}

// userSummaryJSON is IAMUserController.ApiUserSummary.
type userSummaryJSON struct {
	ID          string          `json:"id"`
	Username    string          `json:"username"`
	DisplayName string          `json:"displayName"`
	Tenants     []tenantRefJSON `json:"tenants"`
	Auths       []userAuthJSON  `json:"auths"`
	SuperAdmin  bool            `json:"superAdmin"`
}

func userAuths(u query.User) []userAuthJSON {
	out := []userAuthJSON{}
	for _, a := range authsOf(u) {
		out = append(out, userAuthJSON{ID: a.Name, Name: a.Name, Type: a.Type})
	}
	return out
}

func userOf(u query.User) userJSON {
	out := userJSON{ID: u.ID, Username: u.Username, DisplayName: u.ShownName(), FirstName: u.FirstName, LastName: u.LastName, Email: u.Email,
		Tenants: tenantRefs(u.Tenants), Auths: userAuths(u), Groups: make([]userGroupJSON, len(u.Groups)), SuperAdmin: u.Superadmin, Restricted: u.Restricted}
	for i, g := range u.Groups {
		out.Groups[i] = userGroupJSON{ID: g.ID, TenantID: g.Tenant}
	}
	return out
}

// userRequest is IAMUserController.ApiCreateOrUpdateUserRequest.
type userRequest struct {
	Tenants    []string `json:"tenants"`
	Groups     []string `json:"groups"`
	FirstName  string   `json:"firstName"`
	LastName   string   `json:"lastName"`
	Email      string   `json:"email"`
	Password   string   `json:"password"`
	SuperAdmin bool     `json:"superAdmin"`
	Restricted bool     `json:"restricted"`
}

// check refuses what the dialect cannot do: group ids alone do not say
// which tenant's group is meant, so memberships go through the tenant.
func (req userRequest) check() error {
	if len(req.Groups) > 0 {
		return badBody("groups", "groups must be empty: set a user's groups in a tenant with PUT /api/v1/{tenant}/users/{id}/groups")
	}
	return nil
}

func (h handlers) searchUsers(w http.ResponseWriter, r *http.Request) {
	s, _, err := search(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items, total, err := h.q.SearchUsers(r.Context(), caller(r), s)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := paged[userSummaryJSON]{Results: make([]userSummaryJSON, len(items)), Total: total}
	for i, u := range items {
		out.Results[i] = userSummaryJSON{ID: u.ID, Username: u.Username, DisplayName: u.ShownName(), Tenants: tenantRefs(u.Tenants), Auths: userAuths(u), SuperAdmin: u.Superadmin}
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}

// withUser answers with user id as the read side has it.
func (h handlers) withUser(id string, status int) answer {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := h.q.User(r.Context(), caller(r), id)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		khttp.WriteJSON(w, status, userOf(u))
	}
}

func (h handlers) createUser(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(req userRequest) (uint64, answer, error) {
		if err := req.check(); err != nil {
			return 0, nil, err
		}
		res, err := h.cmds.CreateUser.Handle(r.Context(), commands.CreateUser{Meta: meta(r), Email: req.Email, FirstName: req.FirstName, LastName: req.LastName,
			Password: req.Password, Superadmin: req.SuperAdmin, Restricted: req.Restricted, Tenants: req.Tenants})
		if err != nil {
			return 0, nil, err
		}
		w.Header().Set("Location", r.URL.Path+"/"+res.User.ID())
		return res.Sequence, h.withUser(res.User.ID(), http.StatusCreated), nil
	})
}

func (h handlers) getUser(w http.ResponseWriter, r *http.Request) {
	read(h, w, r, func() (any, error) {
		u, err := h.q.User(r.Context(), caller(r), mux.Vars(r)["id"])
		if err != nil {
			return nil, err
		}
		return userOf(u), nil
	})
}

// updateUser replaces a user's email, names, flags and tenants, and its
// password when one is given, in one command: a refused part changes
// nothing.
func (h handlers) updateUser(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	var req userRequest
	if _, err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := req.check(); err != nil {
		h.fail(w, r, err)
		return
	}
	res, err := h.cmds.ReplaceUser.Handle(r.Context(), commands.ReplaceUser{Meta: stepMeta(r, "replace"), UserID: id,
		Email: &req.Email, FirstName: &req.FirstName, LastName: &req.LastName, Password: req.Password,
		Superadmin: req.SuperAdmin, Restricted: req.Restricted, Tenants: req.Tenants})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, res.Sequence)
	h.withUser(id, http.StatusOK)(w, r)
}

func (h handlers) patchUser(w http.ResponseWriter, r *http.Request) {
	id, ok := h.userOnly(w, r)
	if !ok {
		return
	}
	write(h, w, r, func(req detailsRequest) (uint64, answer, error) {
		res, err := h.cmds.UpdateUser.Handle(r.Context(), commands.UpdateUser{Meta: meta(r), UserID: id, FirstName: req.FirstName, LastName: req.LastName, Email: req.Email})
		return res.Sequence, h.withUser(id, http.StatusOK), err
	})
}

func (h handlers) deleteUser(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(noBody) (uint64, answer, error) {
		res, err := h.cmds.DeleteUser.Handle(r.Context(), commands.DeleteUser{Meta: meta(r), UserID: mux.Vars(r)["id"]})
		return res.Sequence, withStatus(http.StatusNoContent), err
	})
}

// userPasswordRequest is IAMUserController.ApiPatchUserPasswordRequest.
type userPasswordRequest struct {
	Password string `json:"password"`
}

func (h handlers) patchUserPassword(w http.ResponseWriter, r *http.Request) {
	id, ok := h.userOnly(w, r)
	if !ok {
		return
	}
	write(h, w, r, func(req userPasswordRequest) (uint64, answer, error) {
		res, err := h.cmds.SetPassword.Handle(r.Context(), commands.SetPassword{Meta: meta(r), UserID: id, Password: req.Password})
		// Kestra's document gives this operation an object body.
		return res.Sequence, withJSON(http.StatusOK, struct{}{}), err
	})
}

// superAdminRequest is IAMUserController.ApiPatchSuperAdminRequest.
type superAdminRequest struct {
	SuperAdmin *bool `json:"superAdmin"`
}

func (h handlers) patchSuperAdmin(w http.ResponseWriter, r *http.Request) {
	patchUserFlag(h, w, r, "superAdmin", func(req superAdminRequest) *bool { return req.SuperAdmin }, func(id string, v bool) (uint64, error) {
		res, err := h.cmds.SetSuperadmin.Handle(r.Context(), commands.SetSuperadmin{Meta: meta(r), UserID: id, Superadmin: v})
		return res.Sequence, err
	})
}

// restrictedRequest is IAMUserController.ApiPatchRestrictedRequest.
type restrictedRequest struct {
	Restricted *bool `json:"restricted"`
}

func (h handlers) patchRestricted(w http.ResponseWriter, r *http.Request) {
	patchUserFlag(h, w, r, "restricted", func(req restrictedRequest) *bool { return req.Restricted }, func(id string, v bool) (uint64, error) {
		res, err := h.cmds.SetRestricted.Handle(r.Context(), commands.SetRestricted{Meta: meta(r), UserID: id, Restricted: v})
		return res.Sequence, err
	})
}

// patchUserFlag decodes a Req, a body of one required boolean (field,
// read by flag), sets it on the path's user with set and answers the user.
func patchUserFlag[Req any](h handlers, w http.ResponseWriter, r *http.Request, field string, flag func(Req) *bool, set func(id string, v bool) (uint64, error)) {
	write(h, w, r, func(req Req) (uint64, answer, error) {
		v := flag(req)
		if v == nil {
			return 0, nil, badBody(field, field+" is required")
		}
		id := mux.Vars(r)["id"]
		seq, err := set(id, *v)
		return seq, h.withUser(id, http.StatusOK), err
	})
}

// userOnly answers 403 unless the caller may manage the path's user
// (superadmins only, even on themselves: /me is the user's own), and 404
// for an unknown user, before a route that the core would also let the
// user itself take does anything.
func (h handlers) userOnly(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := mux.Vars(r)["id"]
	if _, err := h.q.User(r.Context(), caller(r), id); err != nil {
		h.fail(w, r, err)
		return "", false
	}
	return id, true
}

func (h handlers) userTokens(w http.ResponseWriter, r *http.Request) {
	if id, ok := h.userOnly(w, r); ok {
		h.listTokens(w, r, id)
	}
}

func (h handlers) createUserToken(w http.ResponseWriter, r *http.Request) {
	if id, ok := h.userOnly(w, r); ok {
		h.createToken(w, r, id, http.StatusOK)
	}
}

func (h handlers) deleteUserToken(w http.ResponseWriter, r *http.Request) {
	id, ok := h.userOnly(w, r)
	if !ok {
		return
	}
	write(h, w, r, func(noBody) (uint64, answer, error) {
		seq, err := h.revokeToken(r, id)
		return seq, withStatus(http.StatusNoContent), err
	})
}
