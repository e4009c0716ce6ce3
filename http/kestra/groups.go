package kestra

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/query"
)

// groupSummary is ApiGroupSummary: search, autocomplete and ids items.
type groupSummary struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// groupDetailOf maps a group, read or just written (commands.Group.View).
func groupDetailOf(g query.Group) groupDetail {
	return groupDetail{ID: g.ID, Name: g.Name, Description: g.Description}
}

// groupDetail is IAMGroupController.ApiGroupDetail.
type groupDetail struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// membershipJSON is IAMGroupController.ApiGroupMembership.
type membershipJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	External   bool   `json:"external"`
	Membership string `json:"membership"`
}

// memberJSON is IAMGroupController.ApiGroupMember.
type memberJSON struct {
	ID          string           `json:"id"`
	Username    string           `json:"username"`
	DisplayName string           `json:"displayName"`
	Groups      []membershipJSON `json:"groups"`
}

// Kestra's memberships are the core's, upper-cased.
func wireMembership(m string) string { return strings.ToUpper(m) }

func memberOf(m query.Member) memberJSON {
	out := memberJSON{ID: m.ID, Username: m.Username, DisplayName: m.DisplayName, Groups: make([]membershipJSON, len(m.Groups))}
	for i, g := range m.Groups {
		// Keyhold has no groups synchronised from an identity provider.
		out.Groups[i] = membershipJSON{ID: g.GroupID, Name: g.GroupName, Membership: wireMembership(g.Membership)}
	}
	return out
}

// groupCreateRequest is IAMGroupController.ApiCreateGroupRequest.
type groupCreateRequest struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	MembersID   []string `json:"membersId"`
	refused
}

// groupUpdateRequest is IAMGroupController.ApiUpdateGroupRequest.
type groupUpdateRequest struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	refused
}

// principal returns the kind of the user or service account id names in
// the caller's tenant; an unknown one is a 404 naming field.
func (h handlers) principal(ctx context.Context, r *http.Request, id, field string) (string, error) {
	kind, err := h.q.PrincipalKind(ctx, caller(r), id)
	if errors.Is(err, query.ErrNotFound) {
		return "", &commands.Error{Kind: commands.ErrNotFound, Field: field, Message: "no user or service account " + id + " in this tenant"}
	}
	return kind, err
}

func (h handlers) createGroup(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(req groupCreateRequest) (uint64, answer, error) {
		if err := req.check(); err != nil {
			return 0, nil, err
		}
		// Members are looked up first, for their kind and so that an
		// unknown one is named by its field.
		members := make([]commands.Member, len(req.MembersID))
		for i, id := range req.MembersID {
			kind, err := h.principal(r.Context(), r, id, "membersId")
			if err != nil {
				return 0, nil, err
			}
			members[i] = commands.Member{Kind: kind, ID: id}
		}
		res, err := h.cmds.CreateGroup.Handle(r.Context(), commands.CreateGroup{Meta: meta(r), Members: members,
			GroupInput: commands.GroupInput{Name: req.Name, Description: req.Description}})
		if err != nil {
			return 0, nil, renamed(err, "members", "membersId")
		}
		return res.Sequence, withJSON(http.StatusOK, groupDetailOf(res.Group.View())), nil
	})
}

func (h handlers) updateGroup(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(req groupUpdateRequest) (uint64, answer, error) {
		if err := req.check(); err != nil {
			return 0, nil, err
		}
		res, err := h.cmds.UpdateGroup.Handle(r.Context(), commands.UpdateGroup{Meta: meta(r), ID: mux.Vars(r)["id"],
			GroupInput: commands.GroupInput{Name: req.Name, Description: req.Description}})
		if err != nil {
			return 0, nil, err
		}
		return res.Sequence, withJSON(http.StatusOK, groupDetailOf(res.Group.View())), nil
	})
}

func (h handlers) deleteGroup(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(noBody) (uint64, answer, error) {
		seq, err := h.cmds.DeleteGroup.Handle(r.Context(), commands.DeleteGroup{Meta: meta(r), ID: mux.Vars(r)["id"]})
		// Kestra answers a deleted group with 200 and no body.
		return seq, withStatus(http.StatusOK), err
	})
}

func (h handlers) getGroup(w http.ResponseWriter, r *http.Request) {
	read(h, w, r, func() (any, error) {
		g, err := h.q.Group(r.Context(), caller(r), mux.Vars(r)["id"])
		if err != nil {
			return nil, err
		}
		return groupDetailOf(g), nil
	})
}

func summaries(items []query.Group) []groupSummary {
	out := make([]groupSummary, len(items))
	for i, g := range items {
		out[i] = groupSummary{ID: g.ID, Name: g.Name}
	}
	return out
}

func (h handlers) searchGroups(w http.ResponseWriter, r *http.Request) {
	s, _, err := search(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items, total, err := h.q.SearchGroups(r.Context(), caller(r), s)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	khttp.WriteJSON(w, http.StatusOK, paged[groupSummary]{Results: summaries(items), Total: total})
}

func (h handlers) autocompleteGroups(w http.ResponseWriter, r *http.Request) {
	var req autocompleteRequest
	if _, err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	text := ""
	if req.Q != nil {
		text = *req.Q
	}
	items, err := h.q.AutocompleteGroups(r.Context(), caller(r), text, req.IDs)
	if err != nil {
		h.fail(w, r, inBody(err))
		return
	}
	khttp.WriteJSON(w, http.StatusOK, summaries(items))
}

func (h handlers) groupsByIDs(w http.ResponseWriter, r *http.Request) {
	var req idsRequest
	if _, err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	items, err := h.q.GroupsByIDs(r.Context(), caller(r), req.IDs)
	if err != nil {
		h.fail(w, r, inBody(err))
		return
	}
	khttp.WriteJSON(w, http.StatusOK, summaries(items))
}

func (h handlers) groupMembers(w http.ResponseWriter, r *http.Request) {
	s, _, err := search(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items, total, err := h.q.GroupMembers(r.Context(), caller(r), mux.Vars(r)["id"], s)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := paged[memberJSON]{Results: make([]memberJSON, len(items)), Total: total}
	for i, m := range items {
		out.Results[i] = memberOf(m)
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}

// setMember records a membership of the path's userId in the path's
// group, as require allows, and answers with the member as it is now.
func (h handlers) setMember(w http.ResponseWriter, r *http.Request, membership string, require commands.Presence) {
	groupID, userID := mux.Vars(r)["id"], mux.Vars(r)["userId"]
	kind, err := h.principal(r.Context(), r, userID, "userId")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	res, err := h.cmds.SetGroupMember.Handle(r.Context(), commands.SetGroupMember{Meta: meta(r), GroupID: groupID, MemberKind: kind, MemberID: userID,
		Membership: membership, Require: require})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, res.Sequence)
	h.withMember(userID)(w, r)
}

// withMember answers a membership change with the member and its groups.
func (h handlers) withMember(id string) answer {
	return func(w http.ResponseWriter, r *http.Request) {
		m, err := h.q.WrittenMember(r.Context(), caller(r), id)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		khttp.WriteJSON(w, http.StatusOK, memberOf(m))
	}
}

func (h handlers) addMember(w http.ResponseWriter, r *http.Request) {
	if err := noQuery(r); err != nil {
		h.fail(w, r, err)
		return
	}
	h.setMember(w, r, events.MembershipMember, commands.NewMember)
}

func (h handlers) setMembership(w http.ResponseWriter, r *http.Request) {
	qs, err := khttp.Query(r, "membership")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var membership string
	switch qs.Get("membership") {
	case "OWNER":
		membership = events.MembershipOwner
	case "MEMBER":
		membership = events.MembershipMember
	default:
		h.fail(w, r, khttp.BadField("membership", "must be OWNER or MEMBER"))
		return
	}
	h.setMember(w, r, membership, commands.ExistingMember)
}

func (h handlers) removeMember(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(noBody) (uint64, answer, error) {
		groupID, userID := mux.Vars(r)["id"], mux.Vars(r)["userId"]
		if _, err := h.principal(r.Context(), r, userID, "userId"); err != nil {
			return 0, nil, err
		}
		seq, err := h.cmds.RemoveGroupMember.Handle(r.Context(), commands.RemoveGroupMember{Meta: meta(r), GroupID: groupID, MemberID: userID})
		// The member as it is now: without this group.
		return seq, h.withMember(userID), err
	})
}

// userGroupsRequest is IAMUserGroupController.ApiUpdateUserGroupsRequest.
type userGroupsRequest struct {
	GroupIDs []string `json:"groupIds"`
}

// setUserGroups makes the groups of the tenant a user (or service
// account) belongs to exactly those listed: it joins the new ones (as a
// member) and leaves the others, in one command.
func (h handlers) setUserGroups(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(req userGroupsRequest) (uint64, answer, error) {
		id := mux.Vars(r)["id"]
		kind, err := h.principal(r.Context(), r, id, "id")
		if err != nil {
			return 0, nil, err
		}
		var want []string
		for _, g := range req.GroupIDs {
			if !slices.Contains(want, g) {
				want = append(want, g)
			}
		}
		if err := h.q.GroupsExist(r.Context(), caller(r), want); err != nil {
			return 0, nil, err
		}
		had, err := h.q.MemberGroups(r.Context(), caller(r), id)
		if err != nil {
			return 0, nil, err
		}
		seq, err := h.setGroups(r, kind, id, groupIDs(had), want)
		if err != nil {
			return 0, nil, err
		}
		return seq, withStatus(http.StatusNoContent), nil
	})
}

// setGroups moves principal id (of kind) into the groups only in want
// and out of those only in had, in one command; it returns the sequence
// written (0 when nothing changed).
func (h handlers) setGroups(r *http.Request, kind, id string, had, want []string) (uint64, error) {
	join, leave := groupChanges(had, want)
	if len(join) == 0 && len(leave) == 0 {
		return 0, nil
	}
	return h.cmds.SetMemberGroups.Handle(r.Context(), commands.SetMemberGroups{Meta: stepMeta(r, "groups"), MemberKind: kind, MemberID: id, Join: join, Leave: leave})
}
