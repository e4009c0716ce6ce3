package kestra

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	khttp "github.com/keyhold/keyhold/http"
)

// seenWaiter records the sequence a write waited for.
type seenWaiter struct{ seq uint64 }

func (s *seenWaiter) Wait(_ context.Context, seq uint64, _ ...string) error {
	s.seq = seq
	return nil
}

type noAuth struct{}

func (noAuth) Authenticate(context.Context, string, string) (auth.Principal, error) {
	return auth.Principal{}, nil
}

type nameRequest struct {
	Name string `json:"name"`
}

// A write reads its request as its route declares, answers only once the
// read side has its sequence, and answers a refused request with the
// error alone.
func TestWrite(t *testing.T) {
	refused := &commands.Error{Kind: commands.ErrNotFound, Message: "no such thing"}
	tests := []struct {
		name   string
		target string
		body   string
		route  func(h handlers, w http.ResponseWriter, r *http.Request, got *string)
		status int
		got    string // what the route's do saw; "" when it must not run
		waited uint64
	}{
		{"object body", "/x", `{"name":"a"}`, func(h handlers, w http.ResponseWriter, r *http.Request, got *string) {
			write(h, w, r, func(req nameRequest) (uint64, answer, error) {
				*got = req.Name
				return 7, withStatus(http.StatusCreated), nil
			})
		}, http.StatusCreated, "a", 7},
		{"unknown field in the body", "/x", `{"nom":"a"}`, func(h handlers, w http.ResponseWriter, r *http.Request, got *string) {
			write(h, w, r, func(req nameRequest) (uint64, answer, error) {
				*got = "ran"
				return 7, withStatus(http.StatusCreated), nil
			})
		}, http.StatusUnprocessableEntity, "", 0},
		{"array body", "/x", `[{"name":"a"},{"name":"b"}]`, func(h handlers, w http.ResponseWriter, r *http.Request, got *string) {
			write(h, w, r, func(req items[nameRequest]) (uint64, answer, error) {
				*got = req.Items[0].Name + req.Items[1].Name
				return 8, withJSON(http.StatusOK, struct{}{}), nil
			})
		}, http.StatusOK, "ab", 8},
		{"object where an array is due", "/x", `{"name":"a"}`, func(h handlers, w http.ResponseWriter, r *http.Request, got *string) {
			write(h, w, r, func(req items[nameRequest]) (uint64, answer, error) {
				*got = "ran"
				return 8, withStatus(http.StatusOK), nil
			})
		}, http.StatusUnprocessableEntity, "", 0},
		{"no body", "/x", "", func(h handlers, w http.ResponseWriter, r *http.Request, got *string) {
			write(h, w, r, func(noBody) (uint64, answer, error) {
				*got = "ran"
				return 9, withStatus(http.StatusNoContent), nil
			})
		}, http.StatusNoContent, "ran", 9},
		{"query parameter where none is taken", "/x?force=true", "", func(h handlers, w http.ResponseWriter, r *http.Request, got *string) {
			write(h, w, r, func(noBody) (uint64, answer, error) {
				*got = "ran"
				return 9, withStatus(http.StatusNoContent), nil
			})
		}, http.StatusBadRequest, "", 0},
		{"refused by the command", "/x", "", func(h handlers, w http.ResponseWriter, r *http.Request, got *string) {
			write(h, w, r, func(noBody) (uint64, answer, error) {
				*got = "ran"
				return 9, withStatus(http.StatusNoContent), refused
			})
		}, http.StatusNotFound, "ran", 0},
		{"read", "/x", "", func(h handlers, w http.ResponseWriter, r *http.Request, got *string) {
			read(h, w, r, func() (any, error) {
				*got = "ran"
				return nameRequest{Name: "a"}, nil
			})
		}, http.StatusOK, "ran", 0},
		{"read with a query parameter", "/x?fields=all", "", func(h handlers, w http.ResponseWriter, r *http.Request, got *string) {
			read(h, w, r, func() (any, error) {
				*got = "ran"
				return nameRequest{}, nil
			})
		}, http.StatusBadRequest, "", 0},
		{"read of nothing", "/x", "", func(h handlers, w http.ResponseWriter, r *http.Request, got *string) {
			read(h, w, r, func() (any, error) {
				*got = "ran"
				return nil, refused
			})
		}, http.StatusNotFound, "ran", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			waiter := &seenWaiter{}
			kit, err := khttp.NewKit(noAuth{}, waiter, nil, time.Second, nil)
			if err != nil {
				t.Fatal(err)
			}
			h := handlers{kit: kit, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			rec := httptest.NewRecorder()
			var body io.Reader = http.NoBody
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			r := httptest.NewRequest(http.MethodPost, tt.target, body)
			r.Header.Set("Content-Type", "application/json")
			var got string
			tt.route(h, rec, r, &got)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if got != tt.got {
				t.Errorf("the route saw %q, want %q", got, tt.got)
			}
			if waiter.seq != tt.waited {
				t.Errorf("waited for %d, want %d", waiter.seq, tt.waited)
			}
			if seq := rec.Header().Get(khttp.SequenceHeader); (seq != "") != (tt.waited != 0) {
				t.Errorf("%s: %q, want it only after a write", khttp.SequenceHeader, seq)
			}
		})
	}
}
