// Package privacy serves the erasure of personal data:
// DELETE /v1/privacy/principals/{id} erases a user's personal data for
// good (crypto-shredding). Superadmins only; errors are problem+json.
package privacy

import (
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/commands"
	khttp "github.com/keyhold/keyhold/http"
)

// PrincipalPath is the erase endpoint; {id} is the user id.
const PrincipalPath = "/v1/privacy/principals/{id}"

// Register adds the erase route to r.
func Register(r *mux.Router, kit *khttp.Kit, cmds *commands.Commands) {
	s := r.Path(PrincipalPath).Subrouter()
	s.Use(kit.Authenticated(khttp.WriteProblem))
	s.Handle("", khttp.Methods{http.MethodDelete: func(w http.ResponseWriter, req *http.Request) {
		if _, err := khttp.Query(req); err != nil {
			khttp.WriteProblem(w, req, http.StatusBadRequest, "", err.Error())
			return
		}
		caller, _ := khttp.PrincipalFrom(req.Context())
		res, err := cmds.ErasePersonalData.Handle(req.Context(), commands.ErasePersonalData{
			Meta:        commands.Meta{Caller: caller, RequestID: khttp.RequestID(req.Context())},
			PrincipalID: mux.Vars(req)["id"],
		})
		if err != nil {
			writeError(w, req, err)
			return
		}
		// Replayable responses may hold what was just erased.
		p := res.Erased
		if err := kit.RedactReplays(req.Context(), p.Username, p.Email, p.FirstName, p.LastName, p.DisplayName); err != nil {
			khttp.WriteProblem(w, req, http.StatusInternalServerError, "", "the personal data is erased, but replayable responses holding it could not be scrubbed; they expire within 24 hours")
			return
		}
		kit.AwaitRead(req.Context(), w, res.Sequence)
		w.WriteHeader(http.StatusNoContent)
	}})
}

// writeError maps the command's error kinds to problem responses; the
// authorization check comes before the id is looked up, so a caller who
// may not erase learns nothing about which ids exist.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ce *commands.Error
	field, msg := "", err.Error()
	if errors.As(err, &ce) {
		field, msg = ce.Field, ce.Message
	}
	switch {
	case errors.Is(err, commands.ErrForbidden):
		khttp.WriteProblem(w, r, http.StatusForbidden, "", "only a superadmin may erase personal data")
	case errors.Is(err, commands.ErrInvalid):
		khttp.WriteProblem(w, r, http.StatusBadRequest, field, msg)
	case errors.Is(err, commands.ErrNotFound):
		khttp.WriteProblem(w, r, http.StatusNotFound, "", "no such user")
	case errors.Is(err, commands.ErrConcurrentChange):
		khttp.WriteProblem(w, r, http.StatusConflict, "", "the user changed concurrently; retry")
	case errors.Is(err, commands.ErrUnavailable):
		w.Header().Set("Retry-After", "1")
		khttp.WriteProblem(w, r, http.StatusServiceUnavailable, "", "the erase could not complete; retry (it is idempotent)")
	default:
		khttp.WriteProblem(w, r, http.StatusInternalServerError, "", "the erase failed")
	}
}
