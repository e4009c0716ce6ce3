package privacy_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
	privacyhttp "github.com/keyhold/keyhold/http/privacy"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/privacy"
	"github.com/keyhold/keyhold/projections"
)

// tokens authenticates fixed tokens as fixed principals: the tests are
// about the erase endpoint, not about how tokens are verified.
type tokens map[string]auth.Principal

func (ts tokens) Authenticate(_ context.Context, token, _ string) (auth.Principal, error) {
	if p, ok := ts[token]; ok {
		return p, nil
	}
	return auth.Principal{}, errors.New("unknown token")
}

func TestErase(t *testing.T) {
	ctx := context.Background()
	st, _ := testenv.Store(t)
	personal := privacy.NewMemory()
	cmds, err := commands.New(st, commands.WithPersonalData(personal))
	testenv.Must(t, err, "commands")
	sys := commands.Meta{Caller: auth.System()}
	res, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "ann", Email: "ann@acme.test"})
	testenv.Must(t, err, "create")
	id := res.User.ID()

	superadmin := auth.System()
	superadmin.Tenant = "acme"
	principals := tokens{
		"super":  superadmin,
		"viewer": {ID: "01jviewer00000000000000000", Kind: auth.KindUser, Tenant: "acme", Bindings: []auth.Binding{{Role: "viewer", Tenant: "acme", Scope: events.Scope{Level: events.ScopeTenant, Target: "acme"}}}},
	}
	kit, err := khttp.NewKit(principals, projections.NewProgress(), nil, time.Second, nil)
	testenv.Must(t, err, "kit")
	router, err := khttp.NewRouter(khttp.Config{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
	testenv.Must(t, err, "router")
	privacyhttp.Register(router, kit, cmds)
	ts := httptest.NewServer(router)
	t.Cleanup(ts.Close)

	for _, tc := range []struct {
		name, method, token, path string
		want                      int
	}{
		{"no credential", http.MethodDelete, "", id, http.StatusUnauthorized},
		{"not a superadmin", http.MethodDelete, "viewer", id, http.StatusForbidden},
		{"not a superadmin, unknown id", http.MethodDelete, "viewer", events.NewID(), http.StatusForbidden},
		{"bad id", http.MethodDelete, "super", "a.b", http.StatusBadRequest},
		{"unknown id", http.MethodDelete, "super", events.NewID(), http.StatusNotFound},
		{"query parameter", http.MethodDelete, "super", id + "?force=1", http.StatusBadRequest},
		{"GET", http.MethodGet, "super", id, http.StatusMethodNotAllowed},
		{"erase", http.MethodDelete, "super", id, http.StatusNoContent},
		{"again", http.MethodDelete, "super", id, http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, ts.URL+"/v1/privacy/principals/"+tc.path, nil)
			testenv.Must(t, err, "request")
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			testenv.Must(t, err, "do")
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want >= 400 && tc.want != http.StatusMethodNotAllowed {
				var p struct {
					Status int `json:"status"`
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" || json.NewDecoder(resp.Body).Decode(&p) != nil || p.Status != tc.want {
					t.Fatalf("not a problem+json body (%s)", ct)
				}
			}
		})
	}
	if _, err := cmds.UpdateUser.Handle(ctx, commands.UpdateUser{Meta: sys, UserID: id, FirstName: ptr("x")}); !errors.Is(err, commands.ErrInvalid) {
		t.Fatalf("update after the erase: %v, want ErrInvalid (erased)", err)
	}
}

func ptr(s string) *string { return &s }
