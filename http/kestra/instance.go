package kestra

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/mail"
	"github.com/keyhold/keyhold/query"
)

// instanceSettingsJSON is the instance's IAM settings, a Keyhold
// extension (Kestra's /instance routes are about its cluster): the
// default and maximum lifetimes of personal API tokens; the credential
// lifetimes and service-account scope levels a tenant created from now
// on starts with (each tenant then keeps its own); and, read only, how
// mail is sent. Durations are ISO 8601 like CreateApiTokenRequest's
// maxAge.
type instanceSettingsJSON struct {
	APITokenDefaultLifetime   string           `json:"apiTokenDefaultLifetime"`
	APITokenMaxLifetime       string           `json:"apiTokenMaxLifetime"`
	CredentialDefaultLifetime string           `json:"credentialDefaultLifetime"`
	CredentialMaxLifetime     string           `json:"credentialMaxLifetime"`
	ServiceAccountScopeLevels []string         `json:"serviceAccountScopeLevels"`
	Mail                      mailSettingsJSON `json:"mail"`
}

// mailSettingsJSON is how mail is sent, set by the server's flags and
// environment, never the SMTP password.
type mailSettingsJSON struct {
	Transport string `json:"transport"`
	Server    string `json:"server,omitempty"`
	StartTLS  string `json:"starttls,omitempty"`
	From      string `json:"from"`
	PublicURL string `json:"publicUrl"`
}

// instanceSettingsRequest changes the settings given; absent ones stay.
// Mail settings are the server's flags: a body naming mail is refused.
type instanceSettingsRequest struct {
	APITokenDefaultLifetime   *string   `json:"apiTokenDefaultLifetime"`
	APITokenMaxLifetime       *string   `json:"apiTokenMaxLifetime"`
	CredentialDefaultLifetime *string   `json:"credentialDefaultLifetime"`
	CredentialMaxLifetime     *string   `json:"credentialMaxLifetime"`
	ServiceAccountScopeLevels *[]string `json:"serviceAccountScopeLevels"`
}

func (h handlers) instanceSettingsOf(s query.InstanceSettings) instanceSettingsJSON {
	levels := make([]string, len(s.ScopeLevels))
	for i, l := range s.ScopeLevels {
		levels[i] = strings.ToUpper(l)
	}
	slices.Sort(levels)
	m := h.mail
	return instanceSettingsJSON{
		APITokenDefaultLifetime: formatISODuration(s.APITokenDefaultLifetime), APITokenMaxLifetime: formatISODuration(s.APITokenMaxLifetime),
		CredentialDefaultLifetime: formatISODuration(s.CredentialDefaultLifetime), CredentialMaxLifetime: formatISODuration(s.CredentialMaxLifetime),
		ServiceAccountScopeLevels: levels,
		Mail:                      mailSettingsJSON{Transport: strings.ToUpper(m.Transport), Server: m.Server, StartTLS: strings.ToUpper(m.StartTLS), From: m.From, PublicURL: m.PublicURL},
	}
}

func (h handlers) instanceSettings(w http.ResponseWriter, r *http.Request) {
	read(h, w, r, func() (any, error) {
		s, err := h.q.InstanceSettings(r.Context(), caller(r), commands.InstanceDefaults())
		if err != nil {
			return nil, err
		}
		return h.instanceSettingsOf(s), nil
	})
}

func (h handlers) putInstanceSettings(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(req instanceSettingsRequest) (uint64, answer, error) {
		cmd := commands.ChangeInstanceSettings{Meta: meta(r)}
		for _, f := range []struct {
			field string
			in    *string
			out   **time.Duration
		}{
			{"apiTokenDefaultLifetime", req.APITokenDefaultLifetime, &cmd.APITokenDefaultLifetime},
			{"apiTokenMaxLifetime", req.APITokenMaxLifetime, &cmd.APITokenMaxLifetime},
			{"credentialDefaultLifetime", req.CredentialDefaultLifetime, &cmd.CredentialDefaultLifetime},
			{"credentialMaxLifetime", req.CredentialMaxLifetime, &cmd.CredentialMaxLifetime},
		} {
			if f.in == nil {
				continue
			}
			d, ok := parseISODuration(*f.in)
			if !ok {
				return 0, nil, badBody(f.field, f.field+" must be an ISO 8601 duration such as P90D or PT2160H")
			}
			*f.out = &d
		}
		if req.ServiceAccountScopeLevels != nil {
			levels := make([]string, len(*req.ServiceAccountScopeLevels))
			for i, l := range *req.ServiceAccountScopeLevels {
				if l != strings.ToUpper(l) {
					return 0, nil, badBody("serviceAccountScopeLevels", "serviceAccountScopeLevels holds TENANT and NAMESPACE (upper case)")
				}
				levels[i] = strings.ToLower(l)
			}
			cmd.ScopeLevels = &levels
		}
		res, err := h.cmds.ChangeInstance.Handle(r.Context(), cmd)
		if err != nil {
			return 0, nil, err
		}
		return res.Sequence, withJSON(http.StatusOK, h.instanceSettingsOf(res.Instance.View())), nil
	})
}

// Option configures Register.
type Option func(*handlers)

// WithMail shows s, how the server sends mail, in the instance's
// settings (read only).
func WithMail(s mail.Settings) Option { return func(h *handlers) { h.mail = s } }
