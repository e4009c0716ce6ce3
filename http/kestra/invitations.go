package kestra

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/query"
)

// invitationRoleRequest is IAMInvitationController.ApiInvitationRole.
type invitationRoleRequest struct {
	ID         string   `json:"id"`
	Namespaces []string `json:"namespaces"`
}

// invitationRequest is IAMInvitationController.ApiInvitationCreateRequest.
type invitationRequest struct {
	Email                string                  `json:"email"`
	CreateUserIfNotExist bool                    `json:"createUserIfNotExist"`
	SuperAdmin           bool                    `json:"superAdmin"`
	Roles                []invitationRoleRequest `json:"roles"`
	Groups               []string                `json:"groups"`
}

// invitationDetail is IAMInvitationController.ApiInvitationDetail. Link
// (a secret: it holds the registration token) is only in the answers
// about one pending invitation.
type invitationDetail struct {
	ID         string         `json:"id"`
	Roles      []roleSummary  `json:"roles"`
	Groups     []groupSummary `json:"groups"`
	TenantID   string         `json:"tenantId"`
	Email      string         `json:"email"`
	Status     string         `json:"status"`
	SentAt     time.Time      `json:"sentAt"`
	ExpiredAt  time.Time      `json:"expiredAt"`
	AcceptedAt *time.Time     `json:"acceptedAt,omitempty"`
	SuperAdmin bool           `json:"superAdmin"`
	Link       string         `json:"link,omitempty"`
}

// invitationBinding is Kestra's Binding as an invitation shows what it
// will bind: no id yet.
type invitationBinding struct {
	Type        string `json:"type"`
	ExternalID  string `json:"externalId"`
	RoleID      string `json:"roleId"`
	NamespaceID string `json:"namespaceId,omitempty"`
	Deleted     bool   `json:"deleted"`
}

// myInvitation is Kestra's Invitation, as /me/invitations lists them.
type myInvitation struct {
	IsExpired  bool                `json:"isExpired"`
	Email      string              `json:"email"`
	ID         string              `json:"id"`
	Bindings   []invitationBinding `json:"bindings"`
	GroupIDs   []string            `json:"groupIds"`
	TenantID   string              `json:"tenantId"`
	Status     string              `json:"status"`
	SentAt     time.Time           `json:"sentAt"`
	ExpiredAt  time.Time           `json:"expiredAt"`
	AcceptedAt *time.Time          `json:"acceptedAt,omitempty"`
	Deleted    bool                `json:"deleted"`
	UserType   string              `json:"userType"`
	SuperAdmin bool                `json:"superAdmin"`
	// Link is never set here: the token is the proof that the invited
	// mailbox was reached, and a user can set its own email to any address
	// (PATCH /me), so showing a caller the links of the invitations to its
	// address would hand any invitation to whoever claims the address.
	Link string `json:"link,omitempty"`
}

// registerRequest is AuthController.InvitationUserRequest.
type registerRequest struct {
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Password  string `json:"password"`
}

// acceptedJSON answers an acceptance or a registration: the invitation,
// its tenant and the user who got what it grants.
type acceptedJSON struct {
	ID       string `json:"id"`
	TenantID string `json:"tenantId"`
	UserID   string `json:"userId"`
}

// Kestra's statuses are the core's, upper-cased.
func wireStatus(s string) string { return strings.ToUpper(s) }

func invitationOf(v query.Invitation) invitationDetail {
	out := invitationDetail{ID: v.ID, TenantID: v.Tenant, Email: v.Email, Status: wireStatus(v.Status), SentAt: v.SentAt,
		ExpiredAt: v.ExpiresAt, AcceptedAt: v.AcceptedAt, SuperAdmin: v.Superadmin,
		Roles: make([]roleSummary, len(v.Roles)), Groups: make([]groupSummary, len(v.Groups))}
	for i, r := range v.Roles {
		out.Roles[i] = roleSummary{ID: r.ID, Name: r.Name, IsDefault: r.Default, IsManaged: r.Managed}
	}
	for i, g := range v.Groups {
		out.Groups[i] = groupSummary{ID: g.ID, Name: g.Name}
	}
	return out
}

// link returns the address of the page that takes up invitation id of
// tenant (auth.InvitationLink) under this server's origin as the client
// reached it.
func (h handlers) link(r *http.Request, tenant, id string) (string, error) {
	token, err := h.cmds.InvitationToken(tenant, id)
	if err != nil {
		return "", err
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return auth.InvitationLink(scheme+"://"+r.Host, token), nil
}

// withLink is the detail of v with its link when v is pending.
func (h handlers) withLink(r *http.Request, v query.Invitation) (invitationDetail, error) {
	out := invitationOf(v)
	if v.Status != query.InvitationPending {
		return out, nil
	}
	var err error
	out.Link, err = h.link(r, v.Tenant, v.ID)
	return out, err
}

// registerInvitations adds the invitation routes that name no tenant
// under prefix: accepting (signed in), registering from an invitation
// (no authentication: the token is the proof) and the caller's own
// invitations. They must come before the tenant routes, whose
// /{tenant}/invitations would take /me/invitations.
func (h handlers) registerInvitations(r *mux.Router, prefix string) {
	open := r.PathPrefix(prefix + "/invitation/create/").Subrouter()
	open.Use(khttp.ErrorsAs(writeError))
	for _, rt := range h.openInvitationRoutes() {
		open.Handle(strings.TrimPrefix(rt.path, "/invitation/create"), rt.methods.With(writeError))
	}

	s := r.PathPrefix(prefix).Subrouter()
	s.Use(khttp.ErrorsAs(writeError), h.kit.Authenticated(writeError), h.kit.Idempotent(writeError))
	for _, rt := range h.signedInInvitationRoutes() {
		s.Handle(rt.path, rt.methods.With(writeError))
	}
}

// openInvitationRoutes need no authentication; signedInInvitationRoutes
// any signed-in caller. Paths are relative to a prefix.
func (h handlers) openInvitationRoutes() []route {
	return []route{{"/invitation/create/{invitationId}", khttp.Methods{http.MethodPost: h.registerFromInvitation}, false}}
}

func (h handlers) signedInInvitationRoutes() []route {
	return []route{
		{"/invitation/accept/{invitationId}", khttp.Methods{http.MethodPost: h.acceptInvitation}, false},
		{"/me/invitations", khttp.Methods{http.MethodGet: h.myInvitations}, false},
	}
}

func (h handlers) createInvitation(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(req invitationRequest) (uint64, answer, error) {
		cmd := commands.CreateInvitation{Meta: meta(r), Email: req.Email, Groups: req.Groups, Superadmin: req.SuperAdmin, CreateUser: req.CreateUserIfNotExist}
		for _, role := range req.Roles {
			cmd.Roles = append(cmd.Roles, events.InvitationRole{Role: role.ID, Namespaces: role.Namespaces})
		}
		res, err := h.cmds.CreateInvitation.Handle(r.Context(), cmd)
		if err != nil {
			return 0, nil, err
		}
		return res.Sequence, h.withInvitation(res.Invitation.ID()), nil
	})
}

// withInvitation answers a new invitation: 201 with it as the read side
// has it, its link included.
func (h handlers) withInvitation(id string) answer {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := h.q.GetInvitation(r.Context(), caller(r), id)
		if errors.Is(err, query.ErrForbidden) {
			// Inviting does not need reading invitations: the caller learns
			// the id of what it made, no more (Kestra's 201 has no body).
			w.Header().Set("Location", r.URL.Path+"/"+id)
			khttp.WriteJSON(w, http.StatusCreated, struct {
				ID string `json:"id"`
			}{id})
			return
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		out, err := h.withLink(r, v)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		khttp.SecretFields(r, "link")
		w.Header().Set("Location", r.URL.Path+"/"+v.ID)
		khttp.WriteJSON(w, http.StatusCreated, out)
	}
}

func (h handlers) searchInvitations(w http.ResponseWriter, r *http.Request) {
	s, qs, err := search(r, "email", "status")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f := query.InvitationFilter{Email: qs.Get("email")}
	if st := qs.Get("status"); st != "" {
		f.Status = strings.ToLower(st)
		if wireStatus(f.Status) != st {
			h.fail(w, r, khttp.BadField("status", "must be PENDING, ACCEPTED or EXPIRED"))
			return
		}
	}
	items, total, err := h.q.SearchInvitations(r.Context(), caller(r), s, f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := paged[invitationDetail]{Results: make([]invitationDetail, len(items)), Total: total}
	for i, v := range items {
		out.Results[i] = invitationOf(v)
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}

func (h handlers) invitationsByEmail(w http.ResponseWriter, r *http.Request) {
	if err := noQuery(r); err != nil {
		h.fail(w, r, err)
		return
	}
	// The router matches escaped paths: an address may come as ann%40example.com.
	email, err := url.PathUnescape(mux.Vars(r)["email"])
	if err != nil {
		h.fail(w, r, khttp.BadField("email", "must be an email address, escaped as a path segment"))
		return
	}
	items, err := h.q.InvitationsByEmail(r.Context(), caller(r), email)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]invitationDetail, len(items))
	for i, v := range items {
		out[i] = invitationOf(v)
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}

func (h handlers) getInvitation(w http.ResponseWriter, r *http.Request) {
	read(h, w, r, func() (any, error) {
		v, err := h.q.GetInvitation(r.Context(), caller(r), mux.Vars(r)["id"])
		if err != nil {
			return nil, err
		}
		return h.withLink(r, v)
	})
}

func (h handlers) deleteInvitation(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(noBody) (uint64, answer, error) {
		res, err := h.cmds.DeleteInvitation.Handle(r.Context(), commands.DeleteInvitation{Meta: meta(r), ID: mux.Vars(r)["id"]})
		if err != nil {
			return 0, nil, err
		}
		// The deletion erased the address: recorded answers of keyed
		// requests must not keep it for their retention either.
		if err := h.kit.RedactReplays(r.Context(), res.Invitation.Email()); err != nil {
			return 0, nil, err
		}
		return res.Sequence, withStatus(http.StatusNoContent), nil
	})
}

func (h handlers) acceptInvitation(w http.ResponseWriter, r *http.Request) {
	if err := noQuery(r); err != nil {
		h.fail(w, r, err)
		return
	}
	res, err := h.cmds.AcceptInvitation.Handle(r.Context(), commands.AcceptInvitation{Meta: meta(r), Token: mux.Vars(r)["invitationId"]})
	h.accepted(w, r, res, err)
}

func (h handlers) registerFromInvitation(w http.ResponseWriter, r *http.Request) {
	var req registerRequest
	if _, err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	res, err := h.cmds.RegisterFromInvitation.Handle(r.Context(), commands.RegisterFromInvitation{
		Meta:  commands.Meta{RequestID: khttp.RequestID(r.Context())},
		Token: mux.Vars(r)["invitationId"], FirstName: req.FirstName, LastName: req.LastName, Password: req.Password,
	})
	h.accepted(w, r, res, err)
}

func (h handlers) accepted(w http.ResponseWriter, r *http.Request, res commands.InvitationResult, err error) {
	if err != nil && res.Sequence == 0 {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, res.Sequence)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	inv := res.Invitation
	khttp.WriteJSON(w, http.StatusOK, acceptedJSON{ID: inv.ID(), TenantID: inv.Tenant(), UserID: res.UserID})
}

func (h handlers) myInvitations(w http.ResponseWriter, r *http.Request) {
	if err := noQuery(r); err != nil {
		h.fail(w, r, err)
		return
	}
	p := caller(r)
	items, err := h.q.MyInvitations(r.Context(), p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]myInvitation, len(items))
	for i, v := range items {
		m := myInvitation{IsExpired: v.Status == query.InvitationExpired, Email: v.Email, ID: v.ID, TenantID: v.Tenant,
			Status: wireStatus(v.Status), SentAt: v.SentAt, ExpiredAt: v.ExpiresAt, AcceptedAt: v.AcceptedAt,
			UserType: "STANDARD", SuperAdmin: v.Superadmin, Bindings: []invitationBinding{}, GroupIDs: make([]string, len(v.Groups))}
		for _, role := range v.Roles {
			if len(role.Namespaces) == 0 {
				m.Bindings = append(m.Bindings, invitationBinding{Type: "USER", ExternalID: p.ID, RoleID: role.ID})
			}
			for _, ns := range role.Namespaces {
				m.Bindings = append(m.Bindings, invitationBinding{Type: "USER", ExternalID: p.ID, RoleID: role.ID, NamespaceID: ns})
			}
		}
		for j, g := range v.Groups {
			m.GroupIDs[j] = g.ID
		}
		out[i] = m
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}
