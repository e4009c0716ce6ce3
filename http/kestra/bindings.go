package kestra

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/query"
)

// Kestra binding types. SERVICE_ACCOUNT is accepted on input; Kestra's
// document lists only USER and GROUP, and shows a service account's
// binding as a USER binding whose user has type SERVICE_ACCOUNT.
const (
	typeUser           = "USER"
	typeGroup          = "GROUP"
	typeServiceAccount = "SERVICE_ACCOUNT"
)

// idName is IAMBindingController.ApiRole and ApiBindingGroup.
type idName struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// bindingUser is IAMBindingController.ApiBindingUser.
type bindingUser struct {
	ID          string `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"displayName"`
	Type        string `json:"type"` // STANDARD or SERVICE_ACCOUNT
}

// bindingJSON is IAMBindingController.ApiBindingDetail; absent (null)
// fields are left out, as Kestra does.
type bindingJSON struct {
	ID        string       `json:"id"`
	Type      string       `json:"type"`
	Namespace *string      `json:"namespace,omitempty"`
	Role      idName       `json:"role"`
	Group     *idName      `json:"group,omitempty"`
	User      *bindingUser `json:"user,omitempty"`
}

func bindingOf(b query.Binding) bindingJSON {
	out := bindingJSON{ID: b.ID, Type: typeUser, Role: idName{ID: b.Role, Name: b.RoleName}}
	if b.ScopeLevel == events.ScopeNamespace {
		ns := b.ScopeTarget
		out.Namespace = &ns
	}
	switch b.SubjectKind {
	case events.SubjectGroup:
		out.Type = typeGroup
		out.Group = &idName{ID: b.SubjectID, Name: b.SubjectName}
	case events.SubjectServiceAccount:
		out.User = &bindingUser{ID: b.SubjectID, Username: b.SubjectName, DisplayName: b.SubjectDisplayName, Type: "SERVICE_ACCOUNT"}
	default:
		out.User = &bindingUser{ID: b.SubjectID, Username: b.SubjectName, DisplayName: b.SubjectDisplayName, Type: "STANDARD"}
	}
	return out
}

// bindingRequest is IAMBindingController.ApiCreateBindingRequest.
type bindingRequest struct {
	Type        *string `json:"type"`
	ExternalID  *string `json:"externalId"`
	RoleID      *string `json:"roleId"`
	NamespaceID *string `json:"namespaceId"`
}

// command checks the body's required fields and turns it into the core's
// binding; prefix names the item of a bulk request in errors.
func (h handlers) bindingCommand(ctx context.Context, r *http.Request, req bindingRequest, prefix string) (commands.CreateBinding, error) {
	var cmd commands.CreateBinding
	for _, f := range []struct {
		name string
		v    *string
	}{{"type", req.Type}, {"externalId", req.ExternalID}, {"roleId", req.RoleID}} {
		if f.v == nil || *f.v == "" {
			return cmd, badBody(prefix+f.name, f.name+" is required")
		}
	}
	cmd = commands.CreateBinding{Meta: meta(r), Role: *req.RoleID, SubjectID: *req.ExternalID}
	switch *req.Type {
	case typeGroup:
		cmd.SubjectKind = events.SubjectGroup
	case typeServiceAccount:
		cmd.SubjectKind = events.SubjectServiceAccount
	case typeUser:
		// Kestra's users include service accounts: the id tells which.
		kind, err := h.q.PrincipalKind(ctx, caller(r), *req.ExternalID)
		if errors.Is(err, query.ErrNotFound) {
			kind, err = events.SubjectUser, nil // the command names what is wrong
		}
		if err != nil {
			return cmd, err
		}
		cmd.SubjectKind = kind
	default:
		return cmd, badBody(prefix+"type", "type must be USER, GROUP or SERVICE_ACCOUNT")
	}
	if req.NamespaceID != nil && *req.NamespaceID != "" {
		cmd.Scope = events.Scope{Level: events.ScopeNamespace, Target: *req.NamespaceID}
	}
	return cmd, nil
}

// bindingsOf maps bindings, read or just written.
func bindingsOf(bs []query.Binding) []bindingJSON {
	out := make([]bindingJSON, len(bs))
	for i, b := range bs {
		out[i] = bindingOf(b)
	}
	return out
}

func (h handlers) createBinding(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(req bindingRequest) (uint64, answer, error) {
		cmd, err := h.bindingCommand(r.Context(), r, req, "")
		if err != nil {
			return 0, nil, err
		}
		res, err := h.cmds.CreateBinding.Handle(r.Context(), cmd)
		if err != nil {
			return 0, nil, err
		}
		return res.Sequence, h.withBindings([]string{res.Binding.ID()}, func(bs []query.Binding) any { return bindingOf(bs[0]) }), nil
	})
}

func (h handlers) createBindings(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(req items[bindingRequest]) (uint64, answer, error) {
		cmd := commands.CreateBindings{Meta: meta(r), Bindings: make([]commands.CreateBinding, len(req.Items))}
		for i, item := range req.Items {
			b, err := h.bindingCommand(r.Context(), r, item, "["+strconv.Itoa(i)+"].")
			if err != nil {
				return 0, nil, err
			}
			cmd.Bindings[i] = b
		}
		res, err := h.cmds.CreateBindings.Handle(r.Context(), cmd)
		if err != nil {
			return 0, nil, err
		}
		ids := make([]string, len(res.Bindings))
		for i, b := range res.Bindings {
			ids[i] = b.ID()
		}
		return res.Sequence, h.withBindings(ids, func(bs []query.Binding) any { return bindingsOf(bs) }), nil
	})
}

// withBindings answers with the bindings ids as the read side has them,
// in the shape body gives them. Creating bindings does not take reading
// bindings.
func (h handlers) withBindings(ids []string, body func([]query.Binding) any) answer {
	return func(w http.ResponseWriter, r *http.Request) {
		bs, err := h.q.WrittenBindings(r.Context(), caller(r), ids)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		khttp.WriteJSON(w, http.StatusOK, body(bs))
	}
}

func (h handlers) searchBindings(w http.ResponseWriter, r *http.Request) {
	s, qs, err := search(r, "type", "id", "namespace")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f := query.BindingFilter{SubjectID: qs.Get("id"), Namespace: qs.Get("namespace")}
	switch qs.Get("type") {
	case "":
	case typeUser:
		f.SubjectKinds = []string{events.SubjectUser, events.SubjectServiceAccount}
	case typeGroup:
		f.SubjectKinds = []string{events.SubjectGroup}
	case typeServiceAccount:
		f.SubjectKinds = []string{events.SubjectServiceAccount}
	default:
		h.fail(w, r, khttp.BadField("type", "must be USER, GROUP or SERVICE_ACCOUNT"))
		return
	}
	items, total, err := h.q.SearchBindings(r.Context(), caller(r), f, s)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := paged[bindingJSON]{Results: make([]bindingJSON, len(items)), Total: total}
	for i, b := range items {
		out.Results[i] = bindingOf(b)
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}

func (h handlers) getBinding(w http.ResponseWriter, r *http.Request) {
	read(h, w, r, func() (any, error) {
		b, err := h.q.Binding(r.Context(), caller(r), mux.Vars(r)["id"])
		if err != nil {
			return nil, err
		}
		return bindingOf(b), nil
	})
}

func (h handlers) deleteBinding(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(noBody) (uint64, answer, error) {
		seq, err := h.cmds.DeleteBinding.Handle(r.Context(), commands.DeleteBinding{Meta: meta(r), ID: mux.Vars(r)["id"]})
		return seq, withStatus(http.StatusNoContent), err
	})
}
