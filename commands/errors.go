// Package commands holds Keyhold's write side: aggregates whose state is
// folded from events, and command handlers that validate a request, decide
// which events it produces and append them to the log.
package commands

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalid means the input is malformed or breaks a rule; nothing changed.
	ErrInvalid = errors.New("invalid input")

	// ErrNotFound means the resource does not exist, or the caller may not
	// know that it exists.
	ErrNotFound = errors.New("not found")

	// ErrForbidden means the caller is known but may not do this.
	ErrForbidden = errors.New("forbidden")

	// ErrAlreadyExists means a unique value (tenant id, username, email, ...) is taken.
	ErrAlreadyExists = errors.New("already exists")

	// ErrLimit means a count limit would be exceeded (e.g. 5 active credentials).
	ErrLimit = errors.New("limit exceeded")

	// ErrConcurrentChange means the aggregate kept changing under the
	// command and the bounded retries ran out.
	ErrConcurrentChange = errors.New("concurrent change")

	// ErrDuplicate means the log already holds this request's events (same
	// idempotency key); nothing new was appended.
	ErrDuplicate = errors.New("request already applied")

	// ErrUnavailable means the event log could not be reached or was not ready.
	ErrUnavailable = errors.New("event log unavailable")
)

// Error is a rule violation with the field it concerns and a message saying
// what to fix. It matches its Kind, and its Reason if set, with errors.Is.
type Error struct {
	Kind error
	// Field names the input at fault in domain terms, snake_case
	// ("display_name", "scope.level"), never a wire's JSON name.
	Field   string
	Message string
	// Reason is a finer sentinel (such as ErrControlCharacter), or nil.
	Reason error
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Kind, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Kind, e.Message)
}

// Unwrap returns the kind and the reason, so errors.Is(err, ErrInvalid)
// and errors.Is(err, ErrBidiControl) both work.
func (e *Error) Unwrap() []error {
	if e.Reason == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Reason}
}

func invalid(field, format string, args ...any) error {
	return &Error{Kind: ErrInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

func ruleError(kind error, field, format string, args ...any) error {
	return &Error{Kind: kind, Field: field, Message: fmt.Sprintf(format, args...)}
}

// codes are the stable slugs of the kinds, the same for every dialect.
var codes = map[error]string{
	ErrInvalid:          "invalid_input",
	ErrNotFound:         "not_found",
	ErrForbidden:        "forbidden",
	ErrAlreadyExists:    "already_exists",
	ErrLimit:            "limit_exceeded",
	ErrConcurrentChange: "concurrent_change",
	ErrDuplicate:        "duplicate_request",
	ErrUnavailable:      "unavailable",
}

// Code is the error's stable slug ("limit_exceeded"): dialects map it to
// their own wire and may rely on it not changing.
func (e *Error) Code() string {
	if c, ok := codes[e.Kind]; ok {
		return c
	}
	return "error"
}
