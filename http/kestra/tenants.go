package kestra

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/commands"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/query"
)

// tenantJSON is Kestra's Tenant with the fields Keyhold keeps; deleted is
// always false (deleted tenants are gone).
type tenantJSON struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
}

// tenantRequest is Kestra's Tenant as a request body. Its storage, secret
// and worker-group fields are Kestra's own, not IAM: a body holding one
// is refused as an unknown field.
type tenantRequest struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
}

func (req tenantRequest) check() error {
	if req.Deleted {
		return badBody("deleted", "deleted cannot be true: delete a tenant with DELETE /api/v1/tenants/{id}")
	}
	return nil
}

func tenantOf(t query.Tenant) tenantJSON { return tenantJSON{ID: t.ID, Name: t.Name} }

func (h handlers) createTenant(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(req tenantRequest) (uint64, answer, error) {
		if err := req.check(); err != nil {
			return 0, nil, err
		}
		res, err := h.cmds.CreateTenant.Handle(r.Context(), commands.CreateTenant{Meta: meta(r), TenantID: req.ID, Name: req.Name})
		if err != nil {
			return 0, nil, renamed(err, "tenant", "id")
		}
		return res.Sequence, withJSON(http.StatusOK, tenantJSON{ID: res.Tenant.ID(), Name: res.Tenant.Name()}), nil
	})
}

func (h handlers) searchTenants(w http.ResponseWriter, r *http.Request) {
	s, _, err := search(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items, total, err := h.q.SearchTenants(r.Context(), caller(r), s)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := paged[tenantJSON]{Results: make([]tenantJSON, len(items)), Total: total}
	for i, t := range items {
		out.Results[i] = tenantOf(t)
	}
	khttp.WriteJSON(w, http.StatusOK, out)
}

func (h handlers) getTenant(w http.ResponseWriter, r *http.Request) {
	read(h, w, r, func() (any, error) {
		t, err := h.q.Tenant(r.Context(), caller(r), mux.Vars(r)["id"])
		if err != nil {
			return nil, err
		}
		return tenantOf(t), nil
	})
}

func (h handlers) updateTenant(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	write(h, w, r, func(req tenantRequest) (uint64, answer, error) {
		if err := req.check(); err != nil {
			return 0, nil, err
		}
		if req.ID != "" && req.ID != id {
			return 0, nil, badBody("id", "id cannot change: it must be the path's tenant id or left out")
		}
		res, err := h.cmds.UpdateTenant.Handle(r.Context(), commands.UpdateTenant{Meta: meta(r), TenantID: id, Name: req.Name})
		if err != nil {
			return 0, nil, err
		}
		return res.Sequence, withJSON(http.StatusOK, tenantJSON{ID: res.Tenant.ID(), Name: res.Tenant.Name()}), nil
	})
}

func (h handlers) deleteTenant(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(noBody) (uint64, answer, error) {
		res, err := h.cmds.DeleteTenant.Handle(r.Context(), commands.DeleteTenant{Meta: meta(r), TenantID: mux.Vars(r)["id"]})
		return res.Sequence, withStatus(http.StatusNoContent), err
	})
}
