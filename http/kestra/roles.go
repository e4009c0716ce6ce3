package kestra

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/commands"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/query"
)

// roleSummary is ApiRoleSummary: search and autocomplete items.
type roleSummary struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	IsDefault bool   `json:"isDefault"`
	IsManaged bool   `json:"isManaged"`
}

// roleDetail is IAMRoleController.ApiRoleDetail.
type roleDetail struct {
	ID          string              `json:"id"`
	Name        string              `json:"name"`
	Description string              `json:"description"`
	Permissions map[string][]string `json:"permissions"`
	IsDefault   bool                `json:"isDefault"`
	IsManaged   bool                `json:"isManaged"`
}

// roleFull is Kestra's Role, which /roles/ids answers with; deleted is
// always false (deleted roles are gone).
type roleFull struct {
	roleDetail
	Deleted bool `json:"deleted"`
}

// roleView is a role as both the commands and the queries give it.
type roleView struct {
	id, name, description string
	managed, isDefault    bool
	rules                 []authz.Rule
}

func viewOfQuery(r query.Role) roleView {
	return roleView{id: r.ID, name: r.Name, description: r.Description, managed: r.Managed, isDefault: r.Default, rules: r.Rules}
}

func viewOfCommand(r *commands.Role) roleView {
	return roleView{id: r.ID(), name: r.Name(), description: r.Description(), managed: r.Managed(), isDefault: r.Default(), rules: r.Rules()}
}

func (v roleView) summary() roleSummary {
	return roleSummary{ID: v.id, Name: v.name, IsDefault: v.isDefault, IsManaged: v.managed}
}

func (v roleView) detail() roleDetail {
	return roleDetail{ID: v.id, Name: v.name, Description: v.description, Permissions: permissionsOf(v.rules), IsDefault: v.isDefault, IsManaged: v.managed}
}

// roleRequest is IAMRoleController.ApiRoleCreateOrUpdateRequest.
type roleRequest struct {
	Name        string               `json:"name"`
	Description string               `json:"description"`
	Permissions *map[string][]string `json:"permissions"`
	IsDefault   bool                 `json:"isDefault"`
	refused
}

// input checks the body and turns it into the core's role content.
func (req roleRequest) input() (commands.RoleInput, error) {
	if err := req.check(); err != nil {
		return commands.RoleInput{}, err
	}
	if req.Permissions == nil {
		return commands.RoleInput{}, badBody("permissions", "permissions is required: an object of permission to actions, such as {\"FLOW\": [\"READ\"]}")
	}
	rules, err := rulesOf(*req.Permissions)
	if err != nil {
		return commands.RoleInput{}, err
	}
	return commands.RoleInput{Name: req.Name, Description: req.Description, Default: req.IsDefault, Rules: rules}, nil
}

func (h handlers) createRole(w http.ResponseWriter, r *http.Request) {
	var req roleRequest
	if _, err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	in, err := req.input()
	if err != nil {
		h.fail(w, r, err)
		return
	}
	res, err := h.cmds.CreateRole.Handle(r.Context(), commands.CreateRole{Meta: meta(r), RoleInput: in})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, res.Sequence)
	khttp.WriteJSON(w, http.StatusOK, viewOfCommand(res.Role).detail())
}

func (h handlers) updateRole(w http.ResponseWriter, r *http.Request) {
	var req roleRequest
	if _, err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	in, err := req.input()
	if err != nil {
		h.fail(w, r, err)
		return
	}
	res, err := h.cmds.UpdateRole.Handle(r.Context(), commands.UpdateRole{Meta: meta(r), ID: mux.Vars(r)["id"], RoleInput: in})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, res.Sequence)
	khttp.WriteJSON(w, http.StatusOK, viewOfCommand(res.Role).detail())
}

func (h handlers) deleteRole(w http.ResponseWriter, r *http.Request) {
	if err := noQuery(r); err != nil {
		h.fail(w, r, err)
		return
	}
	seq, err := h.cmds.DeleteRole.Handle(r.Context(), commands.DeleteRole{Meta: meta(r), ID: mux.Vars(r)["id"]})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, seq)
	w.WriteHeader(http.StatusNoContent)
}

func (h handlers) getRole(w http.ResponseWriter, r *http.Request) {
	if err := noQuery(r); err != nil {
		h.fail(w, r, err)
		return
	}
	role, err := h.q.Role(r.Context(), caller(r), mux.Vars(r)["id"])
	if err != nil {
		h.fail(w, r, err)
		return
	}
	khttp.WriteJSON(w, http.StatusOK, viewOfQuery(role).detail())
}

func (h handlers) searchRoles(w http.ResponseWriter, r *http.Request) {
	s, _, err := search(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items, total, err := h.q.SearchRoles(r.Context(), caller(r), s)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := paged[roleSummary]{Results: make([]roleSummary, len(items)), Total: total}
	for i, role := range items {
		out.Results[i] = viewOfQuery(role).summary()
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}

func (h handlers) autocompleteRoles(w http.ResponseWriter, r *http.Request) {
	var req autocompleteRequest
	if _, err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	text := ""
	if req.Q != nil {
		text = *req.Q
	}
	items, err := h.q.AutocompleteRoles(r.Context(), caller(r), text, req.IDs)
	if err != nil {
		h.fail(w, r, inBody(err))
		return
	}
	out := make([]roleSummary, len(items))
	for i, role := range items {
		out[i] = viewOfQuery(role).summary()
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}

func (h handlers) rolesByIDs(w http.ResponseWriter, r *http.Request) {
	var req idsRequest
	if _, err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	items, err := h.q.RolesByIDs(r.Context(), caller(r), req.IDs)
	if err != nil {
		h.fail(w, r, inBody(err))
		return
	}
	out := make([]roleFull, len(items))
	for i, role := range items {
		out[i] = roleFull{roleDetail: viewOfQuery(role).detail()}
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}
