package decision_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/http/decision"
	"github.com/keyhold/keyhold/projections"
	"github.com/keyhold/keyhold/query"
)

// tokens authenticates fixed tokens as principals of the directory: these
// tests are about the decision endpoints, not token verification.
type tokens map[string]auth.Principal

func (ts tokens) Authenticate(_ context.Context, token, _ string) (auth.Principal, error) {
	if p, ok := ts[token]; ok {
		return p, nil
	}
	return auth.Principal{}, errors.New("unknown token")
}

// server serves the decision routes over a directory that holds acme's
// managed roles, an administrator and a viewer, and beta's administrator.
func server(t *testing.T) (*httptest.Server, map[string]string) {
	t.Helper()
	dir := query.NewDirectory()
	seq := uint64(0)
	apply := func(tenant, subject string, e events.Event) {
		seq++
		env := events.New(tenant, subject, events.System, "", e)
		env.Sequence = seq
		dir.Apply(env)
	}
	ids := map[string]string{"admin": "01admin", "viewer": "01viewer", "beta": "01beta"}
	for _, tenant := range []string{"acme", "beta"} {
		apply(tenant, tenant, events.TenantCreated{Name: tenant})
		for _, r := range authz.ManagedRoles(tenant) {
			apply(tenant, r.ID, events.RoleCreated{Name: r.Name, Managed: true, Rules: auth.EventRules(r.Rules)})
		}
	}
	account := func(tenant, id, role string) auth.Principal {
		apply(tenant, id, events.ServiceAccountCreated{ClientID: "khc-" + id, Scope: events.Scope{Level: events.ScopeTenant, Target: tenant}, Roles: []string{role}, Status: "active"})
		p, ok := query.NewDecisions(dir).Principal(id, tenant)
		if !ok {
			t.Fatalf("account %s not in the directory", id)
		}
		return p
	}
	ts := tokens{
		"admin":  account("acme", ids["admin"], authz.RoleTenantAdmin),
		"viewer": account("acme", ids["viewer"], authz.RoleViewer),
		"beta":   account("beta", ids["beta"], authz.RoleTenantAdmin),
	}
	kit, err := khttp.NewKit(ts, projections.NewProgress(), nil, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	decision.Register(r, kit, query.NewDecisions(dir))
	s := httptest.NewServer(r)
	t.Cleanup(s.Close)
	return s, ids
}

func post(t *testing.T, s *httptest.Server, path, token string, body any) (int, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func TestCheck(t *testing.T) {
	s, ids := server(t)
	create := authz.ServiceAccountsCreate
	tests := []struct {
		name    string
		token   string
		body    map[string]any
		status  int
		allowed bool
		field   string
	}{
		{"the caller itself", "admin", map[string]any{"action": create}, 200, true, ""},
		{"another principal of the tenant", "admin", map[string]any{"principalId": ids["viewer"], "action": create}, 200, false, ""},
		{"the viewer's own rule", "viewer", map[string]any{"action": authz.RolesList, "scope": "team.app"}, 200, true, ""},
		{"another tenant's principal is unknown", "admin", map[string]any{"principalId": ids["beta"], "action": create}, 200, false, ""},
		{"another tenant", "admin", map[string]any{"tenant": "beta", "action": create}, 403, false, "tenant"},
		{"a wildcard action", "admin", map[string]any{"action": "iam.*"}, 400, false, "action"},
		{"a bad scope", "admin", map[string]any{"action": create, "scope": "a..b"}, 400, false, "scope"},
		{"id and token", "admin", map[string]any{"action": create, "principalId": "x", "token": "y"}, 400, false, "token"},
		{"an unknown field", "admin", map[string]any{"action": create, "x": 1}, 400, false, "x"},
		{"no credentials", "", map[string]any{"action": create}, 401, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := post(t, s, decision.CheckPath, tt.token, tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %v", status, tt.status, out)
			}
			if status == 200 && (out["allowed"] != tt.allowed || out["reason"] == "") {
				t.Fatalf("answer %v, want allowed=%v with a reason", out, tt.allowed)
			}
			if tt.field != "" && out["field"] != tt.field {
				t.Fatalf("field %v, want %s", out["field"], tt.field)
			}
		})
	}
}

func TestBulk(t *testing.T) {
	s, _ := server(t)
	checks := []map[string]any{{"action": authz.RolesList}, {"action": authz.ServiceAccountsCreate}, {"action": authz.RolesGet, "scope": "team"}}
	status, out := post(t, s, decision.BulkPath, "viewer", map[string]any{"checks": checks})
	results, _ := out["results"].([]any)
	if status != 200 || len(results) != 3 {
		t.Fatalf("status %d: %v", status, out)
	}
	for i, want := range []bool{true, false, true} {
		if got := results[i].(map[string]any)["allowed"]; got != want {
			t.Errorf("result %d: allowed %v, want %v", i, got, want)
		}
	}
	many := make([]map[string]any, query.MaxChecks+1)
	for i := range many {
		many[i] = map[string]any{"action": authz.RolesList}
	}
	if status, out := post(t, s, decision.BulkPath, "viewer", map[string]any{"checks": many}); status != 400 || out["field"] != "checks" {
		t.Fatalf("too many checks: %d %v", status, out)
	}
}
