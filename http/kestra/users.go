package kestra

import (
	"net/http"
	"slices"
	"strconv"

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

// answerUser waits for the read side to reach seq and answers user id.
func (h handlers) answerUser(w http.ResponseWriter, r *http.Request, id string, seq uint64, status int) {
	h.kit.AwaitRead(r.Context(), w, seq)
	u, err := h.q.User(r.Context(), caller(r), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	khttp.WriteJSON(w, status, userOf(u))
}

func (h handlers) createUser(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if _, err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := req.check(); err != nil {
		h.fail(w, r, err)
		return
	}
	res, err := h.cmds.CreateUser.Handle(r.Context(), commands.CreateUser{Meta: meta(r), Email: req.Email, FirstName: req.FirstName, LastName: req.LastName,
		Password: req.Password, Superadmin: req.SuperAdmin, Restricted: req.Restricted, Tenants: req.Tenants})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", r.URL.Path+"/"+res.User.ID())
	h.answerUser(w, r, res.User.ID(), res.Sequence, http.StatusCreated)
}

func (h handlers) getUser(w http.ResponseWriter, r *http.Request) {
	if err := noQuery(r); err != nil {
		h.fail(w, r, err)
		return
	}
	u, err := h.q.User(r.Context(), caller(r), mux.Vars(r)["id"])
	if err != nil {
		h.fail(w, r, err)
		return
	}
	khttp.WriteJSON(w, http.StatusOK, userOf(u))
}

// updateUser replaces a user's email, names, flags and tenants, and its
// password when one is given. It is several commands, each keyed by its
// step, after the user was read (404 for an unknown one); a refused step
// stops the request there, and the steps before it stay.
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
	before, err := h.q.User(r.Context(), caller(r), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var seq uint64
	step := func(s uint64, err error) bool {
		if err != nil {
			h.fail(w, r, err)
			return false
		}
		seq = max(seq, s)
		return true
	}
	res, err := h.cmds.UpdateUser.Handle(r.Context(), commands.UpdateUser{Meta: stepMeta(r, "update"), UserID: id, Email: &req.Email, FirstName: &req.FirstName, LastName: &req.LastName})
	if !step(res.Sequence, err) {
		return
	}
	if req.Password != "" {
		res, err = h.cmds.SetPassword.Handle(r.Context(), commands.SetPassword{Meta: stepMeta(r, "password"), UserID: id, Password: req.Password})
		if !step(res.Sequence, err) {
			return
		}
	}
	res, err = h.cmds.SetSuperadmin.Handle(r.Context(), commands.SetSuperadmin{Meta: stepMeta(r, "superadmin"), UserID: id, Superadmin: req.SuperAdmin})
	if !step(res.Sequence, err) {
		return
	}
	res, err = h.cmds.SetRestricted.Handle(r.Context(), commands.SetRestricted{Meta: stepMeta(r, "restricted"), UserID: id, Restricted: req.Restricted})
	if !step(res.Sequence, err) {
		return
	}
	for i, t := range req.Tenants {
		res, err = h.cmds.SetTenantAccess.Handle(r.Context(), commands.SetTenantAccess{Meta: stepMeta(r, "grant "+t), UserID: id, Tenant: t, Grant: true})
		if !step(res.Sequence, renamed(err, "tenant", "tenants["+strconv.Itoa(i)+"]")) {
			return
		}
	}
	for _, t := range before.Tenants {
		if slices.Contains(req.Tenants, t.ID) {
			continue
		}
		res, err = h.cmds.SetTenantAccess.Handle(r.Context(), commands.SetTenantAccess{Meta: stepMeta(r, "revoke "+t.ID), UserID: id, Tenant: t.ID})
		if !step(res.Sequence, err) {
			return
		}
	}
	h.answerUser(w, r, id, seq, http.StatusOK)
}

func (h handlers) patchUser(w http.ResponseWriter, r *http.Request) {
	id, ok := h.userOnly(w, r)
	if !ok {
		return
	}
	var req detailsRequest
	if _, err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	res, err := h.cmds.UpdateUser.Handle(r.Context(), commands.UpdateUser{Meta: meta(r), UserID: id, FirstName: req.FirstName, LastName: req.LastName, Email: req.Email})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.answerUser(w, r, id, res.Sequence, http.StatusOK)
}

func (h handlers) deleteUser(w http.ResponseWriter, r *http.Request) {
	if err := noQuery(r); err != nil {
		h.fail(w, r, err)
		return
	}
	res, err := h.cmds.DeleteUser.Handle(r.Context(), commands.DeleteUser{Meta: meta(r), UserID: mux.Vars(r)["id"]})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, res.Sequence)
	w.WriteHeader(http.StatusNoContent)
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
	var req userPasswordRequest
	if _, err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	res, err := h.cmds.SetPassword.Handle(r.Context(), commands.SetPassword{Meta: meta(r), UserID: id, Password: req.Password})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, res.Sequence)
	// Kestra's document gives this operation an object body.
	khttp.WriteJSON(w, http.StatusOK, struct{}{})
}

// superAdminRequest is IAMUserController.ApiPatchSuperAdminRequest.
type superAdminRequest struct {
	SuperAdmin *bool `json:"superAdmin"`
}

func (h handlers) patchSuperAdmin(w http.ResponseWriter, r *http.Request) {
	var req superAdminRequest
	h.patchUserFlag(w, r, &req, "superAdmin", func() *bool { return req.SuperAdmin }, func(id string, v bool) (uint64, error) {
		res, err := h.cmds.SetSuperadmin.Handle(r.Context(), commands.SetSuperadmin{Meta: meta(r), UserID: id, Superadmin: v})
		return res.Sequence, err
	})
}

// restrictedRequest is IAMUserController.ApiPatchRestrictedRequest.
type restrictedRequest struct {
	Restricted *bool `json:"restricted"`
}

func (h handlers) patchRestricted(w http.ResponseWriter, r *http.Request) {
	var req restrictedRequest
	h.patchUserFlag(w, r, &req, "restricted", func() *bool { return req.Restricted }, func(id string, v bool) (uint64, error) {
		res, err := h.cmds.SetRestricted.Handle(r.Context(), commands.SetRestricted{Meta: meta(r), UserID: id, Restricted: v})
		return res.Sequence, err
	})
}

// patchUserFlag decodes req, a body of one required boolean (field, read
// back by flag), sets it on the path's user with set and answers the user.
func (h handlers) patchUserFlag(w http.ResponseWriter, r *http.Request, req any, field string, flag func() *bool, set func(id string, v bool) (uint64, error)) {
	if _, err := decode(w, r, req); err != nil {
		h.fail(w, r, err)
		return
	}
	v := flag()
	if v == nil {
		h.fail(w, r, badBody(field, field+" is required"))
		return
	}
	id := mux.Vars(r)["id"]
	seq, err := set(id, *v)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.answerUser(w, r, id, seq, http.StatusOK)
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
	seq, err := h.revokeToken(r, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, seq)
	w.WriteHeader(http.StatusNoContent)
}
