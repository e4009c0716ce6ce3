package k0rdent

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/segmentio/encoding/json"

	"github.com/keyhold/keyhold/commands"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/query"
)

// errorJSON is the draft's Error envelope: {"error": {code, message, details}}.
type errorJSON struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	// Code is the HTTP status code, as the draft declares it.
	Code    int           `json:"code"`
	Message string        `json:"message"`
	Details []errorDetail `json:"details"`
	// RequestID is a Keyhold extension: the X-Request-Id to quote.
	RequestID string `json:"requestId,omitempty"`
}

// errorDetail names one input at fault. The draft leaves the shape of a
// detail open; Keyhold's has the field (a body field in camelCase, a query
// parameter, a path variable or a header) and what to fix about it.
type errorDetail struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// WriteError writes an error in the draft's envelope. It is the dialect's
// khttp.ErrorWriter: detail says what to fix and must never hold a secret;
// field, when set, names the input at fault and becomes the one detail.
func WriteError(w http.ResponseWriter, r *http.Request, status int, field, detail string) {
	body := errorBody{Code: status, Message: detail, Details: []errorDetail{}, RequestID: khttp.RequestID(r.Context())}
	if field != "" {
		body.Details = append(body.Details, errorDetail{Field: field, Message: detail})
		if !strings.HasPrefix(detail, field) && !strings.HasPrefix(detail, `"`+field+`"`) {
			body.Message = field + ": " + detail
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorJSON{Error: body})
}

// notFound answers paths under the prefix that name no resource.
func notFound(w http.ResponseWriter, r *http.Request) {
	WriteError(w, r, http.StatusNotFound, "", "no such endpoint: "+r.Method+" "+r.URL.Path)
}

// unprocessable are the domain fields whose rule violations the draft
// answers with 422 rather than 400: the input is well-formed but names a
// role that does not exist or is not the caller's to give, a lifetime
// beyond the tenant's policy, or a scope level the policy forbids.
var unprocessable = map[string]bool{"roles": true, "expires_at": true, "scope.level": true}

// fail maps an error to a response: the dialect's one place for it.
func (h handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, field, detail := h.classify(r, err)
	WriteError(w, r, status, field, detail)
}

func (h handlers) classify(r *http.Request, err error) (status int, field, detail string) {
	var ce *commands.Error
	var fe *khttp.FieldError
	var qe *query.FieldError
	domainField := ""
	detail = err.Error()
	switch {
	case errors.As(err, &ce):
		domainField, field, detail = ce.Field, wireField(ce.Field), ce.Message
	case errors.As(err, &fe):
		field, detail = fe.Field, fe.Message
	case errors.As(err, &qe):
		// The query names its paging inputs its own way (cursor, limit).
		field = wireQueryField(qe.Field)
		detail = strings.Replace(qe.Message, qe.Field, field, 1)
	case errors.Is(err, khttp.ErrBadRequest):
		detail = strings.TrimPrefix(detail, khttp.ErrBadRequest.Error()+": ")
	}
	status = http.StatusInternalServerError
	switch {
	case errors.Is(err, khttp.ErrBodyTooLarge):
		status = http.StatusRequestEntityTooLarge
	case errors.Is(err, commands.ErrInvalid) && unprocessable[domainField]:
		status = http.StatusUnprocessableEntity
	case errors.Is(err, khttp.ErrBadRequest), errors.Is(err, commands.ErrInvalid), errors.Is(err, query.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, commands.ErrNotFound), errors.Is(err, query.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, commands.ErrForbidden) && domainField == "roles":
		// Scope-down: the caller may act, but not give this role (the
		// draft's 422 "role not held by the calling administrator").
		status = http.StatusUnprocessableEntity
	case errors.Is(err, commands.ErrForbidden), errors.Is(err, query.ErrForbidden):
		status = http.StatusForbidden
	case errors.Is(err, commands.ErrAlreadyExists), errors.Is(err, commands.ErrLimit),
		errors.Is(err, commands.ErrConcurrentChange), errors.Is(err, commands.ErrDuplicate):
		status = http.StatusConflict
	case errors.Is(err, query.ErrBusy):
		status = http.StatusServiceUnavailable
		detail = "too many reads at once; retry shortly"
	case errors.Is(err, commands.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
		detail = "the event log is unavailable; retry later"
	}
	if status == http.StatusInternalServerError {
		h.log.Error("request failed", "request_id", khttp.RequestID(r.Context()), "err", err)
		field, detail = "", "internal error; quote the request id when reporting it"
	}
	return status, field, detail
}
