package kestra

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/commands"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/query"
)

// authJSON is IAMTenantAccessController.ApiAuthentication: one way a user
// signs in. Keyhold's are a password and personal API tokens.
type authJSON struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// tenantRefJSON is MeController.ApiTenant and IAMUserController.ApiTenant
// (Keyhold keeps no tenant logos).
type tenantRefJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// profileJSON is MeController.ApiProfile.
type profileJSON struct {
	Email     string `json:"email"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Username  string `json:"username"`
}

// meJSON is MeController.ApiMe.
type meJSON struct {
	ID         string          `json:"id"`
	SuperAdmin bool            `json:"superAdmin"`
	Restricted bool            `json:"restricted"`
	Profile    profileJSON     `json:"profile"`
	Auths      []authJSON      `json:"auths"`
	Tenants    []tenantRefJSON `json:"tenants"`
}

// The sign-in methods a user's auths list.
const (
	authPassword = "PASSWORD"
	authAPIToken = "API_TOKEN"
)

func tenantRefs(ts []query.TenantRef) []tenantRefJSON {
	out := make([]tenantRefJSON, len(ts))
	for i, t := range ts {
		out[i] = tenantRefJSON(t)
	}
	return out
}

func authsOf(u query.User) []authJSON {
	out := []authJSON{}
	if u.HasPassword {
		out = append(out, authJSON{Name: "password", Type: authPassword})
	}
	return out
}

func meOf(u query.User) meJSON {
	return meJSON{ID: u.ID, SuperAdmin: u.Superadmin, Restricted: u.Restricted,
		Profile: profileJSON{Email: u.Email, FirstName: u.FirstName, LastName: u.LastName, Username: u.Username},
		Auths:   authsOf(u), Tenants: tenantRefs(u.Tenants)}
}

// detailsRequest is MeController.ApiUserDetailsRequest (PATCH /me and
// PATCH /users/{id}): absent fields stay as they are.
type detailsRequest struct {
	FirstName *string `json:"firstName"`
	LastName  *string `json:"lastName"`
	Email     *string `json:"email"`
}

// passwordRequest is MeController.ApiUpdatePasswordRequest.
type passwordRequest struct {
	OldPassword string `json:"oldPassword"`
	NewPassword string `json:"newPassword"`
}

// tokenRequest is CreateApiTokenRequest.
type tokenRequest struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	MaxAge      string `json:"maxAge"`
	Extended    bool   `json:"extended"`
}

// tokenCreatedJSON is CreateApiTokenResponse: fullToken is shown here only.
type tokenCreatedJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	FullToken string `json:"fullToken"`
}

// tokenJSON is one personal API token in a list: never the token.
type tokenJSON struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	CreatedAt   time.Time  `json:"createdAt"`
	ExpiresAt   *time.Time `json:"expiresAt,omitempty"`
	LastUsedAt  *time.Time `json:"lastUsedAt,omitempty"`
}

// tokenListJSON is the body of a token list (Kestra's document says only
// "object").
type tokenListJSON struct {
	Results []tokenJSON `json:"results"`
}

// tokenName is CreateApiTokenRequest's name pattern.
var tokenName = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// isoDuration is the subset of ISO 8601 durations Kestra's maxAge takes
// (Java's Duration): days, hours, minutes and seconds. Any number of
// digits is well-formed; parseISODuration caps the value.
var isoDuration = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$`)

// longerThanAny stands for a well-formed duration beyond every lifetime
// Keyhold allows (the settings' bound is far below it): it is passed on,
// so the core refuses it with the maximum in its message, rather than
// overflowing or being called malformed.
const longerThanAny = 100 * 365 * 24 * time.Hour

// parseISODuration reads an ISO 8601 duration such as P30D or PT720H; a
// well-formed one longer than a century reads as longerThanAny.
func parseISODuration(s string) (time.Duration, bool) {
	m := isoDuration.FindStringSubmatch(s)
	if m == nil || s == "P" || s[len(s)-1] == 'T' {
		return 0, false
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.ParseInt(m[i+1], 10, 64)
		if err != nil || n > int64(longerThanAny/unit) {
			return longerThanAny, true
		}
		d += time.Duration(n) * unit
	}
	return min(d, longerThanAny), true
}

// formatISODuration writes d as Java's Duration.toString does (PT2160H).
func formatISODuration(d time.Duration) string {
	h, rest := d/time.Hour, d%time.Hour
	out := "PT"
	if h > 0 {
		out += strconv.FormatInt(int64(h), 10) + "H"
	}
	if m := rest / time.Minute; m > 0 {
		out += strconv.FormatInt(int64(m), 10) + "M"
	}
	if s := (rest % time.Minute) / time.Second; s > 0 || out == "PT" {
		out += strconv.FormatInt(int64(s), 10) + "S"
	}
	return out
}

// issueCommand reads a token request into the core's command for user.
func (req tokenRequest) issueCommand(m commands.Meta, userID string) (commands.IssueAPIToken, error) {
	if len(req.Name) > 63 || !tokenName.MatchString(req.Name) {
		return commands.IssueAPIToken{}, badBody("name", "name is required: 1 to 63 lowercase letters and digits in words joined by single dashes, such as ci-deploy")
	}
	if req.Extended {
		return commands.IssueAPIToken{}, badBody("extended", "extended cannot be true: Keyhold's API tokens keep the lifetime they were issued with")
	}
	cmd := commands.IssueAPIToken{Meta: m, UserID: userID, Name: req.Name, Description: req.Description}
	if req.MaxAge != "" {
		d, ok := parseISODuration(req.MaxAge)
		if !ok || d == 0 {
			return commands.IssueAPIToken{}, badBody("maxAge", "maxAge must be an ISO 8601 duration such as P30D or PT12H")
		}
		cmd.Lifetime = d
	}
	return cmd, nil
}

// renamed reports a core error about field from as one about field to:
// the same core field has another name in some bodies (the new password
// is "newPassword" in PUT /me/password, "password" elsewhere); an item
// of a list keeps its index (members[1] -> membersId[1]).
func renamed(err error, from, to string) error {
	var ce *commands.Error
	if errors.As(err, &ce) && (ce.Field == from || strings.HasPrefix(ce.Field, from+"[")) {
		c := *ce
		c.Field = to + strings.TrimPrefix(ce.Field, from)
		return &c
	}
	return err
}

func (h handlers) me(w http.ResponseWriter, r *http.Request) {
	read(h, w, r, func() (any, error) {
		u, err := h.q.Me(r.Context(), caller(r))
		if err != nil {
			return nil, err
		}
		return meOf(u), nil
	})
}

// withMe answers with the caller's ApiMe as the read side has it.
func (h handlers) withMe() answer {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := h.q.Me(r.Context(), caller(r))
		if err != nil {
			h.fail(w, r, err)
			return
		}
		khttp.WriteJSON(w, http.StatusOK, meOf(u))
	}
}

func (h handlers) patchMe(w http.ResponseWriter, r *http.Request) {
	if _, err := h.q.Me(r.Context(), caller(r)); err != nil {
		h.fail(w, r, err)
		return
	}
	write(h, w, r, func(req detailsRequest) (uint64, answer, error) {
		res, err := h.cmds.UpdateUser.Handle(r.Context(), commands.UpdateUser{Meta: meta(r), UserID: caller(r).ID,
			FirstName: req.FirstName, LastName: req.LastName, Email: req.Email})
		return res.Sequence, h.withMe(), err
	})
}

func (h handlers) putMyPassword(w http.ResponseWriter, r *http.Request) {
	if _, err := h.q.Me(r.Context(), caller(r)); err != nil {
		h.fail(w, r, err)
		return
	}
	write(h, w, r, func(req passwordRequest) (uint64, answer, error) {
		res, err := h.cmds.SetPassword.Handle(r.Context(), commands.SetPassword{Meta: meta(r), UserID: caller(r).ID,
			Password: req.NewPassword, OldPassword: req.OldPassword})
		return res.Sequence, h.withMe(), renamed(err, "password", "newPassword")
	})
}

func (h handlers) myTokens(w http.ResponseWriter, r *http.Request) {
	if _, err := h.q.Me(r.Context(), caller(r)); err != nil {
		h.fail(w, r, err)
		return
	}
	h.listTokens(w, r, caller(r).ID)
}

func (h handlers) createMyToken(w http.ResponseWriter, r *http.Request) {
	if _, err := h.q.Me(r.Context(), caller(r)); err != nil {
		h.fail(w, r, err)
		return
	}
	h.createToken(w, r, caller(r).ID, http.StatusOK)
}

func (h handlers) deleteMyToken(w http.ResponseWriter, r *http.Request) {
	if _, err := h.q.Me(r.Context(), caller(r)); err != nil {
		h.fail(w, r, err)
		return
	}
	write(h, w, r, func(noBody) (uint64, answer, error) {
		seq, err := h.revokeToken(r, caller(r).ID)
		// Kestra's document gives this operation an object body.
		return seq, withJSON(http.StatusOK, struct{}{}), err
	})
}

// listTokens answers a user's live tokens (never the tokens themselves).
func (h handlers) listTokens(w http.ResponseWriter, r *http.Request, userID string) {
	read(h, w, r, func() (any, error) {
		list, err := h.q.APITokens(r.Context(), caller(r), userID)
		if err != nil {
			return nil, err
		}
		return tokenListOf(list), nil
	})
}

// tokenListOf is the list of a user's or a service account's tokens.
func tokenListOf(list []query.APIToken) tokenListJSON {
	out := tokenListJSON{Results: make([]tokenJSON, len(list))}
	for i, t := range list {
		out.Results[i] = tokenJSON{ID: t.ID, Name: t.Name, Description: t.Description, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt}
	}
	return out
}

// createToken issues a token to userID and answers it, shown this once.
func (h handlers) createToken(w http.ResponseWriter, r *http.Request, userID string, status int) {
	write(h, w, r, func(req tokenRequest) (uint64, answer, error) {
		cmd, err := req.issueCommand(meta(r), userID)
		if err != nil {
			return 0, nil, err
		}
		res, err := h.cmds.IssueAPIToken.Handle(r.Context(), cmd)
		if err != nil {
			return 0, nil, renamed(err, "lifetime", "maxAge")
		}
		khttp.SecretFields(r, "fullToken")
		return res.Sequence, withJSON(status, tokenCreatedJSON{ID: res.TokenID, Name: req.Name, FullToken: res.Token}), nil
	})
}

// revokeToken revokes the path's {tokenId} of userID; the route refuses
// query parameters (write with noBody).
func (h handlers) revokeToken(r *http.Request, userID string) (uint64, error) {
	id := mux.Vars(r)["tokenId"]
	res, err := h.cmds.RevokeAPITokens.Handle(r.Context(), commands.RevokeAPITokens{Meta: meta(r), UserID: userID, TokenID: id})
	var ce *commands.Error
	if errors.As(err, &ce) && ce.Field == "token" {
		// Not an id the core could have made: no such token.
		return 0, fmt.Errorf("%w: API token %s", query.ErrNotFound, strconv.Quote(id))
	}
	return res.Sequence, err
}
