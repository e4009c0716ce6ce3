package kestra

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/commands"
	khttp "github.com/keyhold/keyhold/http"
)

// Service accounts' API tokens take the request and answer the shapes of
// users' tokens (me.go): CreateApiTokenRequest, CreateApiTokenResponse,
// and a list of metadata without the tokens.

func (h handlers) createServiceAccountToken(w http.ResponseWriter, r *http.Request) {
	cmd := commands.IssueServiceAccountToken{Meta: meta(r), ServiceAccountID: mux.Vars(r)["id"]}
	if err := h.cmds.IssueServiceAccountToken.Authorize(cmd); err != nil {
		h.fail(w, r, err)
		return
	}
	write(h, w, r, func(req tokenRequest) (uint64, answer, error) {
		// The same checks as a user's token: name, extended, maxAge.
		user, err := req.issueCommand(cmd.Meta, "")
		if err != nil {
			return 0, nil, err
		}
		cmd.Name, cmd.Description, cmd.Lifetime = user.Name, user.Description, user.Lifetime
		res, err := h.cmds.IssueServiceAccountToken.Handle(r.Context(), cmd)
		if err != nil {
			return 0, nil, renamed(err, "lifetime", "maxAge")
		}
		// A keyed request's recorded answer keeps the token out.
		khttp.SecretFields(r, "fullToken")
		if res.Replayed {
			khttp.MarkReplayed(w)
		}
		return res.Sequence, withJSON(http.StatusOK, tokenCreatedJSON{ID: res.TokenID, Name: res.Name, FullToken: res.Token}), nil
	})
}

func (h handlers) listServiceAccountTokens(w http.ResponseWriter, r *http.Request) {
	read(h, w, r, func() (any, error) {
		items, err := h.q.ServiceAccountTokens(r.Context(), caller(r), mux.Vars(r)["id"])
		if err != nil {
			return nil, err
		}
		return tokenListOf(items), nil
	})
}

func (h handlers) deleteServiceAccountToken(w http.ResponseWriter, r *http.Request) {
	write(h, w, r, func(noBody) (uint64, answer, error) {
		seq, err := h.cmds.RevokeServiceAccountToken.Handle(r.Context(), commands.RevokeServiceAccountToken{Meta: meta(r),
			ServiceAccountID: mux.Vars(r)["id"], TokenID: mux.Vars(r)["tokenId"]})
		// Kestra's document answers a deletion with 200 and a JSON object.
		return seq, withJSON(http.StatusOK, struct{}{}), err
	})
}
