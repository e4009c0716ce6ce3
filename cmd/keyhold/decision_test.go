package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/authz"
)

type decisionResp struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

func TestDecisionAPI(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	o := h.bootstrap(t, "other")
	ops, opsToken := h.principal(t, a.token, "ops", authz.RoleTenantAdmin)
	viewer, viewerToken := h.principal(t, a.token, "viewer", authz.RoleViewer)
	stranger, _ := h.principalIn(t, "other", o.token, "stranger", authz.RoleTenantAdmin)
	both := h.createSA(t, a.token, tenantSA("both", authz.RoleTenantAdmin, authz.RoleViewer))
	c := h.createCredential(t, a.token, both.ID, nil)
	narrowed := h.accessToken(t, both.ClientID, *c.ClientSecret, authz.RoleViewer)

	ask := func(t *testing.T, token string, body map[string]any) decisionResp {
		t.Helper()
		r := h.do(t, http.MethodPost, "/v1/authz/check", token, body)
		expectStatus(t, r, http.StatusOK, "check")
		var d decisionResp
		r.decode(t, &d)
		return d
	}
	create := authz.ServiceAccountsCreate
	tests := []struct {
		name    string
		token   string
		body    map[string]any
		allowed bool
		reason  string // part of the reason
	}{
		{"the caller itself", opsToken, map[string]any{"action": create}, true, `role "tenant-admin"`},
		{"a node of the tenant", opsToken, map[string]any{"action": create, "scope": "team.app"}, true, "tenant acme"},
		{"another principal by id", opsToken, map[string]any{"principalId": viewer.ID, "action": create}, false, "no role grants"},
		{"viewer's own rule", opsToken, map[string]any{"principalId": viewer.ID, "action": authz.RolesList}, true, `role "viewer"`},
		{"by token", opsToken, map[string]any{"token": viewerToken, "action": authz.RolesGet}, true, `role "viewer"`},
		{"an invalid token", opsToken, map[string]any{"token": "khat_nope", "action": authz.RolesGet}, false, "not valid"},
		{"another tenant's principal is unknown here", opsToken, map[string]any{"principalId": stranger.ID, "action": create}, false, "no such principal"},
		{"a user by id", opsToken, map[string]any{"principalId": a.userID, "action": create}, true, "superadmin"},
		{"a token narrowed to viewer keeps viewer's rules", opsToken, map[string]any{"token": narrowed, "action": authz.RolesGet}, true, `role "viewer"`},
		{"a token narrowed to viewer loses tenant-admin's", opsToken, map[string]any{"token": narrowed, "action": create}, false, "no role grants"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ask(t, tt.token, tt.body)
			if d.Allowed != tt.allowed || !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("got %+v, want allowed=%v with reason containing %q", d, tt.allowed, tt.reason)
			}
		})
	}

	t.Run("bulk answers in order", func(t *testing.T) {
		r := h.do(t, http.MethodPost, "/v1/authz/check/bulk", viewerToken, map[string]any{"checks": []map[string]any{
			{"action": authz.RolesList}, {"action": create}, {"action": authz.RolesGet, "scope": "team"},
		}})
		expectStatus(t, r, http.StatusOK, "bulk")
		var body struct{ Results []decisionResp }
		r.decode(t, &body)
		if len(body.Results) != 3 || !body.Results[0].Allowed || body.Results[1].Allowed || !body.Results[2].Allowed {
			t.Fatalf("results %+v", body.Results)
		}
	})
	t.Run("a write's effect is decided at once", func(t *testing.T) {
		expectStatus(t, h.do(t, http.MethodPatch, saBase+"/"+viewer.ID, a.token, map[string]any{"roles": []string{authz.RoleTenantAdmin}}), http.StatusOK, "grant")
		if d := ask(t, opsToken, map[string]any{"principalId": viewer.ID, "action": create}); !d.Allowed {
			t.Fatalf("after the grant: %+v", d)
		}
	})

	many := make([]map[string]any, 101)
	for i := range many {
		many[i] = map[string]any{"action": create}
	}
	bad := []struct {
		name, path string
		body       any
		status     int
		field      string
	}{
		{"another tenant", "/v1/authz/check", map[string]any{"tenant": "other", "action": create}, 403, "tenant"},
		{"a wildcard action", "/v1/authz/check", map[string]any{"action": "iam.*"}, 400, "action"},
		{"no action", "/v1/authz/check", map[string]any{"scope": "team"}, 400, "action"},
		{"a bad scope", "/v1/authz/check", map[string]any{"action": create, "scope": "Team..x"}, 400, "scope"},
		{"id and token", "/v1/authz/check", map[string]any{"action": create, "principalId": viewer.ID, "token": viewerToken}, 400, "token"},
		{"an unknown field", "/v1/authz/check", map[string]any{"action": create, "dryRun": true}, 400, "dryRun"},
		{"too many checks", "/v1/authz/check/bulk", map[string]any{"checks": many}, 400, "checks"},
		{"no checks", "/v1/authz/check/bulk", map[string]any{"checks": []any{}}, 400, "checks"},
		{"a bad check in bulk", "/v1/authz/check/bulk", map[string]any{"checks": []map[string]any{{"action": create}, {"action": ""}}}, 400, "checks[1].action"},
		{"a query parameter", "/v1/authz/check?tenant=acme", map[string]any{"action": create}, 400, "tenant"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			p := checkProblem(t, h.do(t, http.MethodPost, tt.path, opsToken, tt.body), tt.status)
			if p["field"] != tt.field {
				t.Fatalf("field %v, want %s (%v)", p["field"], tt.field, p["detail"])
			}
		})
	}
	t.Run("needs a credential", func(t *testing.T) {
		r := h.do(t, http.MethodPost, "/v1/authz/check", "", map[string]any{"action": create})
		expectStatus(t, r, http.StatusUnauthorized, "anonymous")
		if r := h.do(t, http.MethodGet, "/v1/authz/check", opsToken, nil); r.Status != http.StatusMethodNotAllowed {
			t.Fatal(fmt.Sprint("GET: ", r.Status))
		}
	})
	if d := ask(t, opsToken, map[string]any{"principalId": ops.ID, "action": create}); !d.Allowed {
		t.Fatalf("ops by id: %+v", d)
	}
}

// The decision API finds a service account by its chosen id too.
func TestDecisionAPIResolvesChosenIDs(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	body := tenantSA("named", authz.RoleTenantAdmin)
	body["id"] = "ci-runner"
	h.createSA(t, a.token, body)
	r := h.do(t, http.MethodPost, "/v1/authz/check", a.token, map[string]any{"principalId": "ci-runner", "action": authz.ServiceAccountsCreate})
	expectStatus(t, r, http.StatusOK, "check")
	var d decisionResp
	r.decode(t, &d)
	if !d.Allowed || !strings.Contains(d.Reason, "tenant-admin") {
		t.Fatalf("by chosen id: %+v", d)
	}
}
