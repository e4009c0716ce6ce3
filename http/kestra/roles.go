package kestra

import (
	"net/http"

	"github.com/gorilla/mux"

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

// summaryOf maps a role to a search or autocomplete item.
func summaryOf(r query.Role) roleSummary {
	return roleSummary{ID: r.ID, Name: r.Name, IsDefault: r.Default, IsManaged: r.Managed}
}

// detailOf maps a role, read or just written (commands.Role.View).
func detailOf(r query.Role) roleDetail {
	return roleDetail{ID: r.ID, Name: r.Name, Description: r.Description, Permissions: permissionsOf(r.Rules), IsDefault: r.Default, IsManaged: r.Managed}
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
	write(h, w, r, func(req roleRequest) (uint64, answer, error) {
		in, err := req.input()
		if err != nil {
			return 0, nil, err
		}
		res, err := h.cmds.CreateRole.Handle(r.Context(), commands.CreateRole{Meta: meta(r), RoleInput: in})
		if err != nil {
			return 0, nil, err
		}
		return res.Sequence, withJSON(http.StatusOK, detailOf(res.Role.View())), nil
	})
}

func (h handlers) updateRole(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(req roleRequest) (uint64, answer, error) {
		in, err := req.input()
		if err != nil {
			return 0, nil, err
		}
		res, err := h.cmds.UpdateRole.Handle(r.Context(), commands.UpdateRole{Meta: meta(r), ID: mux.Vars(r)["id"], RoleInput: in})
		if err != nil {
			return 0, nil, err
		}
		return res.Sequence, withJSON(http.StatusOK, detailOf(res.Role.View())), nil
	})
}

func (h handlers) deleteRole(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(noBody) (uint64, answer, error) {
		seq, err := h.cmds.DeleteRole.Handle(r.Context(), commands.DeleteRole{Meta: meta(r), ID: mux.Vars(r)["id"]})
		return seq, withStatus(http.StatusNoContent), err
	})
}

func (h handlers) getRole(w http.ResponseWriter, r *http.Request) {
	read(h, w, r, func() (any, error) {
		role, err := h.q.Role(r.Context(), caller(r), mux.Vars(r)["id"])
		if err != nil {
			return nil, err
		}
		return detailOf(role), nil
	})
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
		out.Results[i] = summaryOf(role)
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
		out[i] = summaryOf(role)
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
		out[i] = roleFull{roleDetail: detailOf(role)}
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}
