package kestra

import (
	"net/http"
	"time"

	"github.com/keyhold/keyhold/commands"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/query"
)

// instanceSettingsJSON is the instance's IAM settings, a Keyhold
// extension (Kestra's /instance routes are about its cluster): the
// default and maximum lifetimes of personal API tokens, as ISO 8601
// durations like CreateApiTokenRequest's maxAge.
type instanceSettingsJSON struct {
	APITokenDefaultLifetime string `json:"apiTokenDefaultLifetime"`
	APITokenMaxLifetime     string `json:"apiTokenMaxLifetime"`
}

// instanceSettingsRequest changes the settings given; absent ones stay.
type instanceSettingsRequest struct {
	APITokenDefaultLifetime *string `json:"apiTokenDefaultLifetime"`
	APITokenMaxLifetime     *string `json:"apiTokenMaxLifetime"`
}

func instanceSettingsOf(def, maxi time.Duration) instanceSettingsJSON {
	return instanceSettingsJSON{APITokenDefaultLifetime: formatISODuration(def), APITokenMaxLifetime: formatISODuration(maxi)}
}

var instanceDefaults = query.InstanceSettings{APITokenDefaultLifetime: commands.DefaultAPITokenLifetime, APITokenMaxLifetime: commands.MaxAPITokenLifetime}

func (h handlers) instanceSettings(w http.ResponseWriter, r *http.Request) {
	if err := noQuery(r); err != nil {
		h.fail(w, r, err)
		return
	}
	s, err := h.q.InstanceSettings(r.Context(), caller(r), instanceDefaults)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	khttp.WriteJSON(w, http.StatusOK, instanceSettingsOf(s.APITokenDefaultLifetime, s.APITokenMaxLifetime))
}

func (h handlers) putInstanceSettings(w http.ResponseWriter, r *http.Request) {
	var req instanceSettingsRequest
	if _, err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	cmd := commands.ChangeInstanceSettings{Meta: meta(r)}
	for _, f := range []struct {
		field string
		in    *string
		out   **time.Duration
	}{{"apiTokenDefaultLifetime", req.APITokenDefaultLifetime, &cmd.APITokenDefaultLifetime}, {"apiTokenMaxLifetime", req.APITokenMaxLifetime, &cmd.APITokenMaxLifetime}} {
		if f.in == nil {
			continue
		}
		d, ok := parseISODuration(*f.in)
		if !ok {
			h.fail(w, r, badBody(f.field, f.field+" must be an ISO 8601 duration such as P90D or PT2160H"))
			return
		}
		*f.out = &d
	}
	res, err := h.cmds.ChangeInstance.Handle(r.Context(), cmd)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, res.Sequence)
	in := res.Instance
	khttp.WriteJSON(w, http.StatusOK, instanceSettingsOf(in.APITokenDefaultLifetime(), in.APITokenMaxLifetime()))
}
