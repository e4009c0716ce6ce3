package kestra

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/query"
)

// A Kestra service account's name: lowercase words of letters and digits
// joined by single dashes, at most 63 characters. It is the core's
// display name, which the k0rdent API shows as displayName.
var saName = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

const maxSAName = 63

// groupRef is IAMServiceAccountController.ApiGroup.
type groupRef struct {
	ID string `json:"id"`
}

// serviceAccountJSON is IAMServiceAccountController.ApiServiceAccountResponse.
type serviceAccountJSON struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Groups      []groupRef `json:"groups"`
	SuperAdmin  bool       `json:"superAdmin"`
}

// serviceAccountRequest is IAMServiceAccountController.ApiServiceAccountRequest.
type serviceAccountRequest struct {
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Groups      []groupRef `json:"groups"`
	SuperAdmin  bool       `json:"superAdmin"`
}

// check validates what only this dialect asks of a service account: the
// name's pattern and no superadmin flag. It returns the group ids, each
// once.
func (req serviceAccountRequest) check() ([]string, error) {
	if len(req.Name) > maxSAName || !saName.MatchString(req.Name) {
		return nil, badBody("name", "name must be 1 to 63 lowercase letters and digits in words joined by single dashes, such as ci-deployer")
	}
	if req.SuperAdmin {
		return nil, badBody("superAdmin", "superAdmin cannot be true: Keyhold's service accounts act within their tenant only")
	}
	var ids []string
	for i, g := range req.Groups {
		if g.ID == "" {
			return nil, badBody("groups["+strconv.Itoa(i)+"].id", "id is required")
		}
		if !slices.Contains(ids, g.ID) {
			ids = append(ids, g.ID)
		}
	}
	return ids, nil
}

func serviceAccountOf(id, name, description string, groups []string) serviceAccountJSON {
	out := serviceAccountJSON{ID: id, Name: name, Description: description, Groups: make([]groupRef, len(groups))}
	for i, g := range groups {
		out.Groups[i] = groupRef{ID: g}
	}
	return out
}

func groupIDs(ms []query.Membership) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.GroupID
	}
	return out
}

// checkGroups makes sure every group exists before anything is written:
// Kestra answers an unknown group with 404.
func (h handlers) checkGroups(ctx context.Context, r *http.Request, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return h.q.GroupsExist(ctx, caller(r), ids)
}

func (h handlers) listServiceAccounts(w http.ResponseWriter, r *http.Request) {
	s, _, err := search(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items, total, err := h.q.SearchServiceAccounts(r.Context(), caller(r), s)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ids := make([]string, len(items))
	for i, sa := range items {
		ids[i] = sa.ID
	}
	groups, err := h.q.ServiceAccountGroups(r.Context(), caller(r), ids...)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := paged[serviceAccountJSON]{Results: make([]serviceAccountJSON, len(items)), Total: total}
	for i, sa := range items {
		out.Results[i] = serviceAccountOf(sa.ID, sa.DisplayName, sa.Description, groupIDs(groups[sa.ID]))
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}

func (h handlers) createServiceAccount(w http.ResponseWriter, r *http.Request) {
	if err := h.cmds.CreateServiceAccount.Authorize(commands.CreateServiceAccount{Meta: meta(r)}); err != nil {
		h.fail(w, r, err)
		return
	}
	write(h, w, r, func(req serviceAccountRequest) (uint64, answer, error) {
		groups, err := req.check()
		if err != nil {
			return 0, nil, err
		}
		if err := h.checkGroups(r.Context(), r, groups); err != nil {
			return 0, nil, err
		}
		res, err := h.cmds.CreateServiceAccount.Handle(r.Context(), commands.CreateServiceAccount{
			Meta: meta(r), DisplayName: req.Name, Description: req.Description, Scope: events.Scope{Level: events.ScopeTenant}, Groups: groups,
		})
		if err != nil {
			return 0, nil, err
		}
		sa := res.ServiceAccount
		return res.Sequence, withJSON(http.StatusOK, serviceAccountOf(sa.ID(), sa.DisplayName(), sa.Description(), groups)), nil
	})
}

// groupChanges returns the groups to join and to leave to go from had to
// want.
func groupChanges(had, want []string) (join, leave []string) {
	for _, g := range want {
		if !slices.Contains(had, g) {
			join = append(join, g)
		}
	}
	for _, g := range had {
		if !slices.Contains(want, g) {
			leave = append(leave, g)
		}
	}
	return join, leave
}

func (h handlers) getServiceAccount(w http.ResponseWriter, r *http.Request) {
	read(h, w, r, func() (any, error) {
		id := mux.Vars(r)["id"]
		sa, err := h.q.ServiceAccount(r.Context(), caller(r), id)
		if err != nil {
			return nil, err
		}
		groups, err := h.q.ServiceAccountGroups(r.Context(), caller(r), id)
		if err != nil {
			return nil, err
		}
		return serviceAccountOf(sa.ID, sa.DisplayName, sa.Description, groupIDs(groups[id])), nil
	})
}

func (h handlers) updateServiceAccount(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if err := h.cmds.UpdateServiceAccount.Authorize(commands.UpdateServiceAccount{Meta: meta(r), ID: id}); err != nil {
		h.fail(w, r, err)
		return
	}
	write(h, w, r, func(req serviceAccountRequest) (uint64, answer, error) {
		groups, err := req.check()
		if err != nil {
			return 0, nil, err
		}
		// An unknown account has no groups; the update below refuses it
		// before any membership is written.
		if err := h.checkGroups(r.Context(), r, groups); err != nil {
			return 0, nil, err
		}
		had, err := h.q.ServiceAccountGroups(r.Context(), caller(r), id)
		if err != nil {
			return 0, nil, err
		}
		// PUT replaces the name and the description; the k0rdent fields
		// (scope, roles, status) stay as they are.
		join, leave := groupChanges(groupIDs(had[id]), groups)
		res, err := h.cmds.UpdateServiceAccount.Handle(r.Context(), commands.UpdateServiceAccount{Meta: meta(r), ID: id,
			DisplayName: &req.Name, Description: &req.Description, JoinGroups: join, LeaveGroups: leave})
		if err != nil {
			return 0, nil, err
		}
		sa := res.ServiceAccount
		return res.Sequence, withJSON(http.StatusOK, serviceAccountOf(sa.ID(), sa.DisplayName(), sa.Description(), groups)), nil
	})
}

func (h handlers) deleteServiceAccount(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(noBody) (uint64, answer, error) {
		seq, err := h.cmds.DeleteServiceAccount.Handle(r.Context(), commands.DeleteServiceAccount{Meta: meta(r), ID: mux.Vars(r)["id"]})
		// Kestra answers a deleted service account with 200 and no body.
		return seq, withStatus(http.StatusOK), err
	})
}
