package k0rdent

import (
	"fmt"
	"net/http"

	"github.com/keyhold/keyhold/commands"
	khttp "github.com/keyhold/keyhold/http"
)

// The tenant's settings are a Keyhold extension: the draft names an
// org-level policy for credential lifetimes and scope levels but no
// operation to read or change it. Scope levels here are Keyhold's (tenant,
// namespace), which the draft's organization and folder/project map to.

type settingsJSON struct {
	CredentialDefaultLifetimeDays int      `json:"credentialDefaultLifetimeDays"`
	CredentialMaxLifetimeDays     int      `json:"credentialMaxLifetimeDays"`
	ScopeLevels                   []string `json:"scopeLevels"`
}

func (h handlers) getSettings(w http.ResponseWriter, r *http.Request) {
	if _, err := khttp.Query(r); err != nil {
		h.fail(w, r, err)
		return
	}
	t, err := h.q.TenantSettings(r.Context(), caller(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	khttp.WriteJSON(w, http.StatusOK, settingsJSON{
		CredentialDefaultLifetimeDays: int(t.CredentialDefaultLifetime / 86400),
		CredentialMaxLifetimeDays:     int(t.CredentialMaxLifetime / 86400),
		ScopeLevels:                   t.ScopeLevels,
	})
}

type settingsRequest struct {
	CredentialDefaultLifetimeDays *int      `json:"credentialDefaultLifetimeDays"`
	CredentialMaxLifetimeDays     *int      `json:"credentialMaxLifetimeDays"`
	ScopeLevels                   *[]string `json:"scopeLevels"`
}

// maxSettingDays is the longest credential lifetime a tenant may set, in
// days (commands.MaxCredentialLifetimeSetting).
const maxSettingDays = int(commands.MaxCredentialLifetimeSetting / 86400)

// days converts a lifetime in whole days to seconds, refusing values the
// conversion could overflow or the command would refuse in other units.
func days(field string, d *int) (*int64, error) {
	if d == nil {
		return nil, nil
	}
	if *d < 1 || *d > maxSettingDays {
		return nil, khttp.BadField(field, fmt.Sprintf("must be between 1 and %d days", maxSettingDays))
	}
	s := int64(*d) * 86400
	return &s, nil
}

func (h handlers) updateSettings(w http.ResponseWriter, r *http.Request) {
	p := caller(r)
	if err := h.cmds.ChangeTenantSettings.Authorize(commands.ChangeTenantSettings{Meta: meta(r), Tenant: p.Tenant}); err != nil {
		h.fail(w, r, err)
		return
	}
	var req settingsRequest
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	def, err := days("credentialDefaultLifetimeDays", req.CredentialDefaultLifetimeDays)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	max, err := days("credentialMaxLifetimeDays", req.CredentialMaxLifetimeDays)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	res, err := h.cmds.ChangeTenantSettings.Handle(r.Context(), commands.ChangeTenantSettings{
		Meta: meta(r), Tenant: p.Tenant, CredentialDefaultLifetime: def, CredentialMaxLifetime: max, ScopeLevels: req.ScopeLevels,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, res.Sequence)
	t := res.Tenant
	khttp.WriteJSON(w, http.StatusOK, settingsJSON{
		CredentialDefaultLifetimeDays: int(t.DefaultLifetime().Hours() / 24),
		CredentialMaxLifetimeDays:     int(t.MaxLifetime().Hours() / 24),
		ScopeLevels:                   t.ScopeLevels(),
	})
}
