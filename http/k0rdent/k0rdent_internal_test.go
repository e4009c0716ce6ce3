package k0rdent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/query"
)

// TestErrorMapping checks the dialect's one mapping from errors to the
// draft's status codes and to its camelCase field names.
func TestErrorMapping(t *testing.T) {
	h := handlers{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tc := range []struct {
		name   string
		err    error
		status int
		field  string
	}{
		{"malformed body", fmt.Errorf("%w: unexpected end of JSON input", khttp.ErrBadRequest), 400, ""},
		{"body too large", fmt.Errorf("%w: %w", khttp.ErrBadRequest, khttp.ErrBodyTooLarge), 413, ""},
		{"dialect field", khttp.BadField("scopeId", "is required"), 400, "scopeId"},
		{"text rule", &commands.Error{Kind: commands.ErrInvalid, Field: "display_name", Message: "must not be blank", Reason: commands.ErrBlank}, 400, "displayName"},
		{"scope target", &commands.Error{Kind: commands.ErrInvalid, Field: "scope.target", Message: "must be a namespace"}, 400, "scopeId"},
		{"unknown role", &commands.Error{Kind: commands.ErrInvalid, Field: "roles", Message: `unknown role "root"`}, 422, "roles"},
		{"lifetime beyond policy", &commands.Error{Kind: commands.ErrInvalid, Field: "expires_at", Message: "too late"}, 422, "expiresAt"},
		{"scope level policy", &commands.Error{Kind: commands.ErrInvalid, Field: "scope.level", Message: "not allowed"}, 422, "scope"},
		{"scope-down", &commands.Error{Kind: commands.ErrForbidden, Field: "roles", Message: `you cannot assign role "auditor"`}, 422, "roles"},
		{"not an administrator", &commands.Error{Kind: commands.ErrForbidden, Message: "only tenant administrators"}, 403, ""},
		{"list forbidden", fmt.Errorf("%w: only tenant administrators can list", query.ErrForbidden), 403, ""},
		{"not found", &commands.Error{Kind: commands.ErrNotFound, Message: "service account not found"}, 404, ""},
		{"query not found", fmt.Errorf("%w: credential", query.ErrNotFound), 404, ""},
		{"credential limit", &commands.Error{Kind: commands.ErrLimit, Message: "5 active credentials"}, 409, ""},
		{"concurrent change", &commands.Error{Kind: commands.ErrConcurrentChange, Message: "kept changing"}, 409, ""},
		{"already applied", commands.ErrDuplicate, 409, ""},
		{"bad page token", &query.FieldError{Field: "cursor", Message: "cursor is not one this API returned"}, 400, "pageToken"},
		{"bad page size", &query.FieldError{Field: "limit", Message: "limit must be between 1 and 500"}, 400, "pageSize"},
		{"log unavailable", fmt.Errorf("append: %w", commands.ErrUnavailable), 503, ""},
		{"deadline", context.DeadlineExceeded, 503, ""},
		{"busy", query.ErrBusy, 503, ""},
		{"anything else", errors.New("disk on fire"), 500, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, Base, nil)
			status, field, detail := h.classify(r, tc.err)
			if status != tc.status || field != tc.field {
				t.Errorf("classify = %d %q (%s), want %d %q", status, field, detail, tc.status, tc.field)
			}
			if status == 500 && detail != "internal error; quote the request id when reporting it" {
				t.Errorf("500 detail %q tells more than it should", detail)
			}
			if field == "pageToken" || field == "pageSize" {
				if want := field + " "; len(detail) < len(want) || detail[:len(want)] != want {
					t.Errorf("detail %q does not name %s", detail, field)
				}
			}
		})
	}
}

// TestWriteError checks the envelope: code, message, details naming the
// field, the request id, and the content type.
func TestWriteError(t *testing.T) {
	for _, tc := range []struct {
		name, field, detail, message string
		details                      int
	}{
		{"no field", "", "no such endpoint", "no such endpoint", 0},
		{"field not in the detail", "roles", `unknown role "root"`, `roles: unknown role "root"`, 1},
		{"detail starting with the field", "pageSize", "pageSize must be a whole number", "pageSize must be a whole number", 1},
		{"detail starting with the quoted field", "roles", `"roles" must be an array`, `"roles" must be an array`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			WriteError(w, httptest.NewRequest(http.MethodGet, Base, nil), http.StatusUnprocessableEntity, tc.field, tc.detail)
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if w.Code != http.StatusUnprocessableEntity {
				t.Errorf("status %d", w.Code)
			}
			var body struct {
				Error struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
					Details []struct {
						Field   string `json:"field"`
						Message string `json:"message"`
					} `json:"details"`
				} `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("%s: %v", w.Body, err)
			}
			e := body.Error
			if e.Code != http.StatusUnprocessableEntity || e.Message != tc.message || len(e.Details) != tc.details || e.Details == nil {
				t.Fatalf("envelope %s", w.Body)
			}
			if tc.details == 1 && (e.Details[0].Field != tc.field || e.Details[0].Message != tc.detail) {
				t.Errorf("detail %+v", e.Details[0])
			}
		})
	}
}

func TestScopeMapping(t *testing.T) {
	for _, tc := range []struct {
		domain         events.Scope
		scope, scopeID string
	}{
		{events.Scope{Level: events.ScopeTenant, Target: "acme"}, "organization", "acme"},
		{events.Scope{Level: events.ScopeNamespace, Target: "eng", Kind: events.NodeFolder}, "folder", "eng"},
		{events.Scope{Level: events.ScopeNamespace, Target: "eng.ml", Kind: events.NodeProject}, "project", "eng.ml"},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			if s, id := wireScope(tc.domain); s != tc.scope || id != tc.scopeID {
				t.Errorf("wireScope(%+v) = %q %q", tc.domain, s, id)
			}
			if got := domainScope(tc.scope, tc.scopeID); got != tc.domain {
				t.Errorf("domainScope(%q, %q) = %+v, want %+v", tc.scope, tc.scopeID, got, tc.domain)
			}
		})
	}
	// A namespace recorded before nodes had kinds reads as a folder.
	if s, id := wireScope(events.Scope{Level: events.ScopeNamespace, Target: "team.app"}); s != "folder" || id != "team.app" {
		t.Errorf("kindless namespace = %q %q", s, id)
	}
}

func TestUID(t *testing.T) {
	id := events.NewID()
	uid := uidOf(id)
	if len(uid) != 36 || uid[8] != '-' || uid[13] != '-' || uid[18] != '-' || uid[23] != '-' {
		t.Fatalf("uidOf(%q) = %q, not in UUID notation", id, uid)
	}
	if uidOf(id) != uid {
		t.Error("uid is not stable")
	}
	if other := uidOf(events.NewID()); other == uid {
		t.Error("two ids, one uid")
	}
	// The same bits in UUID notation, whichever case the id is written in.
	for _, id := range []string{"01arz3ndektsv4rrffq69g5fav", "01ARZ3NDEKTSV4RRFFQ69G5FAV"} {
		if got := uidOf(id); got != "01563e3a-b5d3-d676-4c61-efb99302bd5b" {
			t.Errorf("uidOf(%q) = %q", id, got)
		}
	}
	if got := uidOf("not-an-id"); got != "" {
		t.Errorf("uidOf(malformed) = %q", got)
	}
}

func TestPageOf(t *testing.T) {
	for _, tc := range []struct {
		query string
		limit int
		ok    bool
	}{
		{"", 0, true},
		{"pageSize=1", 1, true},
		{"pageSize=500", 500, true},
		{"pageSize=0", 0, false},
		{"pageSize=501", 0, false},
		{"pageSize=", 0, false},
		{"pageSize=ten", 0, false},
	} {
		t.Run(tc.query, func(t *testing.T) {
			qs, _ := url.ParseQuery(tc.query)
			p, err := pageOf(qs)
			if (err == nil) != tc.ok || (tc.ok && p.Limit != tc.limit) {
				t.Errorf("pageOf(%q) = %+v, %v", tc.query, p, err)
			}
			var fe *khttp.FieldError
			if err != nil && (!errors.As(err, &fe) || fe.Field != "pageSize") {
				t.Errorf("error %v does not name pageSize", err)
			}
		})
	}
}
