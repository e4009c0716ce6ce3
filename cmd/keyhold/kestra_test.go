package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/http/kestra"
)

// Exact key sets of the Kestra 0.24 shapes.
var (
	kestraRoleSummary   = []string{"id", "isDefault", "isManaged", "name"}
	kestraRoleDetail    = []string{"description", "id", "isDefault", "isManaged", "name", "permissions"}
	kestraRoleFull      = []string{"deleted", "description", "id", "isDefault", "isManaged", "name", "permissions"}
	kestraGroupSummary  = []string{"id", "name"}
	kestraGroupDetail   = []string{"description", "id", "name"}
	kestraMember        = []string{"displayName", "groups", "id", "username"}
	kestraMembership    = []string{"external", "id", "membership", "name"}
	kestraSA            = []string{"description", "groups", "id", "name", "superAdmin"}
	kestraPage          = []string{"results", "total"}
	kestraUserBinding   = []string{"id", "role", "type", "user"}
	kestraBindingUser   = []string{"displayName", "id", "type", "username"}
	kestraStatusAllowed = []int{http.StatusOK, http.StatusCreated, http.StatusNoContent}
)

// kestraAPI calls the Kestra dialect of h for one tenant and records the
// exchanges, which are checked against Kestra's document when the test
// ends (validateKestra).
type kestraAPI struct {
	h      *harness
	tenant string
	prefix string
	rec    *kestraRecorder
}

func newKestraAPI(t *testing.T, h *harness, tenant, prefix string) kestraAPI {
	t.Helper()
	k := kestraAPI{h: h, tenant: tenant, prefix: prefix, rec: &kestraRecorder{}}
	t.Cleanup(func() { validateKestra(t, k.rec) })
	return k
}

func (k kestraAPI) path(p string) string { return k.prefix + "/" + k.tenant + p }

func (k kestraAPI) do(t *testing.T, method, p, token string, body any) httpResp {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	var r httpResp
	if raw == nil {
		r = k.h.do(t, method, k.path(p), token, nil)
	} else {
		r = k.h.do(t, method, k.path(p), token, raw)
	}
	k.rec.add(kestraExchange{method: method, path: k.path(p), body: raw, resp: r})
	return r
}

// ok calls and expects status want, one the Terraform provider accepts.
func (k kestraAPI) ok(t *testing.T, method, p, token string, body any, want int) httpResp {
	t.Helper()
	if !slices.Contains(kestraStatusAllowed, want) {
		t.Fatalf("test asks for status %d, which Kestra's Terraform provider refuses", want)
	}
	r := k.do(t, method, p, token, body)
	expectStatus(t, r, want, method+" "+p)
	return r
}

func exactKeys(t *testing.T, what string, m map[string]any, want []string) {
	t.Helper()
	if got := keysOf(m); !slices.Equal(got, want) {
		t.Fatalf("%s: fields %v, want exactly %v (%v)", what, got, want, m)
	}
}

func items(t *testing.T, r httpResp) []map[string]any {
	t.Helper()
	var out []map[string]any
	r.decode(t, &out)
	return out
}

// page checks a Kestra page and returns its results and total.
func page(t *testing.T, r httpResp, itemKeys []string) ([]map[string]any, int) {
	t.Helper()
	m := r.object(t)
	exactKeys(t, "page", m, kestraPage)
	var p struct {
		Results []map[string]any `json:"results"`
		Total   int              `json:"total"`
	}
	r.decode(t, &p)
	for _, it := range p.Results {
		if itemKeys != nil {
			exactKeys(t, "page item", it, itemKeys)
		}
	}
	return p.Results, p.Total
}

// kestraError checks Kestra's JSON error body and returns it.
func kestraError(t *testing.T, r httpResp, status int, path string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	m := r.object(t)
	want := []string{"_links", "message"}
	if status == http.StatusBadRequest || status == http.StatusUnprocessableEntity {
		want = []string{"_embedded", "_links", "message"}
	}
	exactKeys(t, "error", m, want)
	if msg, _ := m["message"].(string); msg == "" {
		t.Errorf("error without a message: %s", r.Body)
	}
	self, _ := m["_links"].(map[string]any)["self"].(map[string]any)
	if href, _ := self["href"].(string); href != path {
		t.Errorf("_links.self.href %v, want %q", self["href"], path)
	}
	return m
}

// fieldOf returns the path of the first validation error.
func fieldOf(t *testing.T, m map[string]any) string {
	t.Helper()
	errs, _ := m["_embedded"].(map[string]any)["errors"].([]any)
	if len(errs) == 0 {
		t.Fatalf("no _embedded.errors in %v", m)
	}
	e := errs[0].(map[string]any)
	p, _ := e["path"].(string)
	return p
}

// kestraAdmin bootstraps tenant and binds a custom role (kestra-all) to
// its administrator, which the tests of searches count among the roles
// and bindings. tenant-admin holds every Kestra permission by itself.
func (h *harness) kestraAdmin(t *testing.T, tenant string) admin {
	t.Helper()
	a := h.bootstrap(t, tenant)
	role := h.role(t, tenant, "kestra-all", "kestra.*")
	h.bindAsOperator(t, tenant, role, events.SubjectUser, a.userID, events.Scope{})
	return a
}

func (h *harness) bindAsOperator(t *testing.T, tenant, role, kind, subject string, scope events.Scope) {
	t.Helper()
	res, err := h.srv.cmds.CreateBinding.Handle(context.Background(), commands.CreateBinding{Meta: operatorIn(tenant), Role: role, SubjectKind: kind, SubjectID: subject, Scope: scope})
	h.applied(t, res.Sequence, err, "bind "+role+" to "+subject)
}

func TestKestraRoles(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.kestraAdmin(t, "acme")
	k := newKestraAPI(t, h, "acme", "/api/v1")

	perms := map[string][]string{"FLOW": {"READ", "CREATE"}, "SERVICE_ACCOUNT": {"CREATE"}, "AUDITLOG": {"READ"}, "NAMESPACE": {"DELETE"}}
	r := k.ok(t, http.MethodPost, "/roles", a.token, map[string]any{"name": "flow-ops", "description": "runs flows", "permissions": perms, "isDefault": false}, http.StatusOK)
	created := r.object(t)
	exactKeys(t, "created role", created, kestraRoleDetail)
	id, _ := created["id"].(string)
	var detail struct {
		Permissions map[string][]string `json:"permissions"`
	}
	r.decode(t, &detail)
	if !reflect.DeepEqual(detail.Permissions, perms) {
		t.Fatalf("permissions read back %v, want %v", detail.Permissions, perms)
	}

	r = k.ok(t, http.MethodGet, "/roles/"+id, a.token, nil, http.StatusOK)
	got := r.object(t)
	exactKeys(t, "role", got, kestraRoleDetail)
	if !reflect.DeepEqual(got, created) {
		t.Fatalf("get %v, want %v", got, created)
	}

	t.Run("search", func(t *testing.T) {
		r := k.ok(t, http.MethodGet, "/roles/search?q=flow&page=1&size=10&sort=name:asc", a.token, nil, http.StatusOK)
		res, total := page(t, r, kestraRoleSummary)
		if total != 1 || len(res) != 1 || res[0]["id"] != id || res[0]["isManaged"] != false {
			t.Fatalf("search: %s", r.Body)
		}
		// With the four managed roles and kestra-all, by name descending:
		// viewer, token-introspector, tenant-admin, kestra-all, flow-ops, auditor.
		r = k.ok(t, http.MethodGet, "/roles/search?size=2&page=2&sort=name:desc&sort=id:asc", a.token, nil, http.StatusOK)
		res, total = page(t, r, kestraRoleSummary)
		if total != 6 || len(res) != 2 || res[0]["name"] != "tenant-admin" || res[1]["name"] != "kestra-all" {
			t.Fatalf("page 2 by name desc: %s", r.Body)
		}
		// q is text, not a LIKE pattern.
		for _, q := range []string{"%25", "_", "\\"} {
			r := k.ok(t, http.MethodGet, "/roles/search?q="+q, a.token, nil, http.StatusOK)
			if _, total := page(t, r, kestraRoleSummary); total != 0 {
				t.Errorf("q=%s matched %d roles: %s", q, total, r.Body)
			}
		}
		managed := k.ok(t, http.MethodGet, "/roles/search?q=tenant-admin", a.token, nil, http.StatusOK)
		if res, _ := page(t, managed, kestraRoleSummary); len(res) != 1 || res[0]["isManaged"] != true {
			t.Fatalf("managed role: %s", managed.Body)
		}
	})
	t.Run("autocomplete and ids", func(t *testing.T) {
		r := k.ok(t, http.MethodPost, "/roles/autocomplete", a.token, map[string]any{"q": "FLOW", "ids": []string{"viewer"}}, http.StatusOK)
		list := items(t, r)
		if len(list) != 2 || list[0]["id"] != id || list[1]["id"] != "viewer" {
			t.Fatalf("autocomplete: %s", r.Body)
		}
		for _, it := range list {
			exactKeys(t, "autocomplete item", it, kestraRoleSummary)
		}
		many := make([]string, 1001)
		for i := range many {
			many[i] = "r"
		}
		r = k.do(t, http.MethodPost, "/roles/ids", a.token, map[string]any{"ids": many})
		if f := fieldOf(t, kestraError(t, r, http.StatusUnprocessableEntity, k.path("/roles/ids"))); f != "ids" {
			t.Errorf("too many ids: path %q", f)
		}
		r = k.ok(t, http.MethodPost, "/roles/ids", a.token, map[string]any{"ids": []string{id, "nope"}}, http.StatusOK)
		list = items(t, r)
		if len(list) != 1 || list[0]["deleted"] != false {
			t.Fatalf("ids: %s", r.Body)
		}
		exactKeys(t, "ids item", list[0], kestraRoleFull)
	})
	t.Run("managed roles read as Kestra permissions", func(t *testing.T) {
		r := k.ok(t, http.MethodGet, "/roles/search?size=100", a.token, nil, http.StatusOK)
		res, _ := page(t, r, kestraRoleSummary)
		managed := map[string]bool{}
		for _, it := range res {
			if it["isManaged"] == true {
				managed[it["id"].(string)] = true
			}
		}
		for _, id := range []string{"tenant-admin", "auditor", "viewer", "token-introspector"} {
			if !managed[id] {
				t.Errorf("search does not show %s as managed: %s", id, r.Body)
			}
		}
		// tenant-admin holds every Kestra permission, so a tenant's
		// administrator can do everything in its Kestra API.
		all := map[string][]string{}
		for _, p := range kestra.Permissions {
			all[p] = kestra.Verbs
		}
		for _, c := range []struct {
			id   string
			want map[string][]string
		}{
			{"tenant-admin", all},
			{"auditor", map[string][]string{"AUDITLOG": {"READ"}}},
			{"viewer", map[string][]string{"ROLE": {"READ"}}},
			{"token-introspector", map[string][]string{}},
		} {
			r := k.ok(t, http.MethodGet, "/roles/"+c.id, a.token, nil, http.StatusOK)
			var role struct {
				Permissions map[string][]string `json:"permissions"`
				IsManaged   bool                `json:"isManaged"`
			}
			r.decode(t, &role)
			for p, vs := range role.Permissions {
				// Verbs read back in the order the role's rules name them.
				role.Permissions[p] = slices.SortedFunc(slices.Values(vs), func(a, b string) int { return slices.Index(kestra.Verbs, a) - slices.Index(kestra.Verbs, b) })
			}
			if !role.IsManaged || !reflect.DeepEqual(role.Permissions, c.want) {
				t.Errorf("%s: %s, want managed with %v", c.id, r.Body, c.want)
			}
		}
	})
	t.Run("refused bodies change nothing", func(t *testing.T) {
		cases := []struct {
			name   string
			body   any
			status int
			field  string
			says   string
		}{
			{"id in the body", map[string]any{"id": "x", "name": "x", "permissions": map[string]any{}}, 422, "id", "not accepted in the body since Kestra 0.24"},
			{"tenantId in the body", map[string]any{"tenantId": "acme", "name": "x", "permissions": map[string]any{}}, 422, "tenantId", "not accepted in the body since Kestra 0.24"},
			{"deleted in the body", map[string]any{"deleted": false, "name": "x", "permissions": map[string]any{}}, 422, "deleted", "not accepted in the body since Kestra 0.24"},
			{"ME is gone", map[string]any{"name": "x", "permissions": map[string]any{"ME": []string{"READ"}}}, 422, "permissions.ME", "/api/v1/me"},
			{"API_TOKEN is gone", map[string]any{"name": "x", "permissions": map[string]any{"API_TOKEN": []string{"READ"}}}, 422, "permissions.API_TOKEN", "SERVICE_ACCOUNT"},
			{"APITOKEN is gone", map[string]any{"name": "x", "permissions": map[string]any{"APITOKEN": []string{"READ"}}}, 422, "permissions.APITOKEN", "SERVICE_ACCOUNT"},
			{"TENANT is gone", map[string]any{"name": "x", "permissions": map[string]any{"TENANT": []string{"READ"}}}, 422, "permissions.TENANT", "TENANT_ACCESS"},
			{"unknown action", map[string]any{"name": "x", "permissions": map[string]any{"FLOW": []string{"RUN"}}}, 422, "permissions.FLOW[0]", "RUN"},
			{"no permissions", map[string]any{"name": "x"}, 422, "permissions", "required"},
			{"no name", map[string]any{"permissions": map[string]any{}}, 422, "name", "name"},
			{"unknown field", map[string]any{"name": "x", "permissions": map[string]any{}, "tenant": "a"}, 422, "tenant", "tenant"},
			{"malformed JSON", `{"name": `, 422, "", "JSON"},
			{"taken name", map[string]any{"name": "flow-ops", "permissions": map[string]any{}}, 409, "", "taken"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := k.do(t, http.MethodPost, "/roles", a.token, c.body)
				m := kestraError(t, r, c.status, k.path("/roles"))
				if c.status == 422 {
					if f := fieldOf(t, m); f != c.field {
						t.Errorf("path %q, want %q (%s)", f, c.field, r.Body)
					}
				}
				if !strings.Contains(m["message"].(string), c.says) {
					t.Errorf("message %q does not say %q", m["message"], c.says)
				}
			})
		}
		r := k.ok(t, http.MethodGet, "/roles/search", a.token, nil, http.StatusOK)
		if _, total := page(t, r, kestraRoleSummary); total != 6 {
			t.Fatalf("refused bodies changed the roles: %s", r.Body)
		}
	})
	t.Run("malformed queries are 400", func(t *testing.T) {
		for _, q := range []string{"?size=0", "?size=1001", "?page=0", "?sort=name:up", "?sort=tenant:asc", "?size=1&size=2", "?limit=3", "?q=%00", "?q=%c3%28", "?sort=name:asc&sort=name:desc"} {
			r := k.do(t, http.MethodGet, "/roles/search"+q, a.token, nil)
			kestraError(t, r, http.StatusBadRequest, k.path("/roles/search"))
		}
	})
	t.Run("errors in Kestra's shape", func(t *testing.T) {
		kestraError(t, k.do(t, http.MethodGet, "/roles/search", "", nil), http.StatusUnauthorized, k.path("/roles/search"))
		kestraError(t, k.do(t, http.MethodGet, "/roles/nope", a.token, nil), http.StatusNotFound, k.path("/roles/nope"))
		kestraError(t, k.do(t, http.MethodPatch, "/roles/"+id, a.token, nil), http.StatusMethodNotAllowed, k.path("/roles/"+id))
		kestraError(t, k.do(t, http.MethodGet, "/no-such-thing", a.token, nil), http.StatusNotFound, k.path("/no-such-thing"))
		kestraError(t, h.do(t, http.MethodGet, "/api/v1/no/such/thing", "", nil), http.StatusNotFound, "/api/v1/no/such/thing")
		big := `{"name": "` + strings.Repeat("x", 70<<10) + `"}`
		kestraError(t, k.do(t, http.MethodPost, "/roles", a.token, big), http.StatusRequestEntityTooLarge, k.path("/roles"))
		kestraError(t, k.do(t, http.MethodPost, "/bindings/bulk", a.token, "["+big+"]"), http.StatusRequestEntityTooLarge, k.path("/bindings/bulk"))
		kestraError(t, k.do(t, http.MethodPost, "/bindings/bulk", a.token, map[string]any{}), http.StatusUnprocessableEntity, k.path("/bindings/bulk"))
		kestraError(t, k.do(t, http.MethodPut, "/roles/tenant-admin", a.token, map[string]any{"name": "x", "permissions": map[string]any{}}), http.StatusForbidden, k.path("/roles/tenant-admin"))
		// Another tenant's administrator has no access to this tenant.
		b := h.bootstrap(t, "other")
		kestraError(t, k.do(t, http.MethodGet, "/roles/search", b.token, nil), http.StatusForbidden, k.path("/roles/search"))
		kestraError(t, k.do(t, http.MethodGet, "/roles/"+id, b.token, nil), http.StatusForbidden, k.path("/roles/"+id))
	})
	t.Run("prefixes and aliases", func(t *testing.T) {
		for _, p := range []string{"/api/v1/acme/roles/" + id, "/v1/api/acme/roles/" + id, "/api/v1/tenants/acme/roles/" + id, "/v1/api/tenants/acme/roles/" + id} {
			r := h.do(t, http.MethodGet, p, a.token, nil)
			expectStatus(t, r, http.StatusOK, p)
			exactKeys(t, p, r.object(t), kestraRoleDetail)
		}
	})

	upd := map[string]any{"name": "flow-ops-2", "description": "", "permissions": map[string][]string{"FLOW": {"UPDATE"}}, "isDefault": true}
	r = k.ok(t, http.MethodPut, "/roles/"+id, a.token, upd, http.StatusOK)
	m := r.object(t)
	exactKeys(t, "updated", m, kestraRoleDetail)
	if m["name"] != "flow-ops-2" || m["isDefault"] != true || !reflect.DeepEqual(m["permissions"], map[string]any{"FLOW": []any{"UPDATE"}}) {
		t.Fatalf("update: %s", r.Body)
	}
	k.ok(t, http.MethodDelete, "/roles/"+id, a.token, nil, http.StatusNoContent)
	kestraError(t, k.do(t, http.MethodGet, "/roles/"+id, a.token, nil), http.StatusNotFound, k.path("/roles/"+id))
}

// TestKestraRoleIsEnforcedEverywhere: a role made through Kestra holds in
// the k0rdent dialect too, and scope-down applies to Kestra bindings.
func TestKestraRoleIsEnforcedEverywhere(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.kestraAdmin(t, "acme")
	k := newKestraAPI(t, h, "acme", "/api/v1")

	r := k.ok(t, http.MethodPost, "/roles", a.token, map[string]any{"name": "sa-maker", "permissions": map[string][]string{
		"SERVICE_ACCOUNT": {"CREATE", "READ"}, "ROLE": {"CREATE", "READ"}, "BINDING": {"CREATE"},
	}}, http.StatusOK)
	roleID, _ := r.object(t)["id"].(string)

	// A service account made through Kestra, bound to the role through Kestra.
	r = k.ok(t, http.MethodPost, "/service-accounts", a.token, map[string]any{"name": "maker", "description": "makes accounts"}, http.StatusOK)
	maker, _ := r.object(t)["id"].(string)
	r = k.ok(t, http.MethodPost, "/bindings", a.token, map[string]any{"type": "USER", "externalId": maker, "roleId": roleID}, http.StatusOK)
	b := r.object(t)
	exactKeys(t, "binding", b, kestraUserBinding)
	exactKeys(t, "binding user", b["user"].(map[string]any), kestraBindingUser)
	if b["type"] != "USER" || b["user"].(map[string]any)["type"] != "SERVICE_ACCOUNT" || b["user"].(map[string]any)["username"] != "maker" ||
		!reflect.DeepEqual(b["role"], map[string]any{"id": roleID, "name": "sa-maker"}) {
		t.Fatalf("binding: %s", r.Body)
	}

	c := h.createCredential(t, a.token, maker, nil)
	token := h.accessToken(t, "khc-"+maker, *c.ClientSecret)

	// SERVICE_ACCOUNT CREATE lets it create service accounts in both dialects.
	h.createSA(t, token, tenantSA("made-through-k0rdent"))
	k.ok(t, http.MethodPost, "/service-accounts", token, map[string]any{"name": "made-through-kestra"}, http.StatusOK)
	// It holds no UPDATE.
	r = h.do(t, http.MethodPatch, saBase+"/"+maker, token, map[string]any{"description": "x"})
	checkProblem(t, r, http.StatusNotFound)

	// Scope-down: it may create roles, but only with rules it holds.
	r = k.do(t, http.MethodPost, "/roles", token, map[string]any{"name": "flows", "permissions": map[string][]string{"FLOW": {"READ"}}})
	m := kestraError(t, r, http.StatusForbidden, k.path("/roles"))
	if !strings.Contains(m["message"].(string), "kestra.FLOW.read") {
		t.Errorf("scope-down message: %s", r.Body)
	}
	k.ok(t, http.MethodPost, "/roles", token, map[string]any{"name": "sa-reader", "permissions": map[string][]string{"SERVICE_ACCOUNT": {"READ"}}}, http.StatusOK)
	// ... and may bind roles it holds, not others.
	r = k.do(t, http.MethodPost, "/bindings", token, map[string]any{"type": "SERVICE_ACCOUNT", "externalId": maker, "roleId": "tenant-admin"})
	kestraError(t, r, http.StatusForbidden, k.path("/bindings"))
	// It holds no BINDING READ, nor GROUP anything.
	kestraError(t, k.do(t, http.MethodGet, "/bindings/search", token, nil), http.StatusForbidden, k.path("/bindings/search"))
	kestraError(t, k.do(t, http.MethodPost, "/groups", token, map[string]any{"name": "g"}), http.StatusForbidden, k.path("/groups"))
}

func TestKestraGroupsAndBindings(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.kestraAdmin(t, "acme")
	k := newKestraAPI(t, h, "acme", "/v1/api")

	r := k.ok(t, http.MethodPost, "/service-accounts", a.token, map[string]any{"name": "robot"}, http.StatusOK)
	robot, _ := r.object(t)["id"].(string)

	r = k.ok(t, http.MethodPost, "/groups", a.token, map[string]any{"name": "devs", "description": "developers", "membersId": []string{robot}}, http.StatusOK)
	g := r.object(t)
	exactKeys(t, "group", g, kestraGroupDetail)
	gid, _ := g["id"].(string)

	// An unknown member creates no group.
	kestraError(t, k.do(t, http.MethodPost, "/groups", a.token, map[string]any{"name": "ghosts", "membersId": []string{"01jzzzzzzzzzzzzzzzzzzzzzzz"}}), http.StatusNotFound, k.path("/groups"))
	// The message speaks of a name, not of a field of the core.
	if e := kestraError(t, k.do(t, http.MethodPost, "/groups", a.token, map[string]any{"name": "devs"}), http.StatusConflict, k.path("/groups")); e["message"] != `group name "devs" is already taken` {
		t.Errorf("conflict message %q", e["message"])
	}
	kestraError(t, k.do(t, http.MethodPost, "/groups", a.token, map[string]any{"name": "x", "tenantId": "acme"}), http.StatusUnprocessableEntity, k.path("/groups"))

	r = k.ok(t, http.MethodGet, "/groups/search?q=dev", a.token, nil, http.StatusOK)
	if res, total := page(t, r, kestraGroupSummary); total != 1 || res[0]["id"] != gid {
		t.Fatalf("group search: %s", r.Body)
	}
	r = k.ok(t, http.MethodPost, "/groups/autocomplete", a.token, map[string]any{"q": "DE"}, http.StatusOK)
	if list := items(t, r); len(list) != 1 || !reflect.DeepEqual(list[0], map[string]any{"id": gid, "name": "devs"}) {
		t.Fatalf("group autocomplete: %s", r.Body)
	}
	r = k.ok(t, http.MethodPost, "/groups/ids", a.token, map[string]any{"ids": []string{gid}}, http.StatusOK)
	if list := items(t, r); len(list) != 1 {
		t.Fatalf("group ids: %s", r.Body)
	}
	r = h.do(t, http.MethodGet, "/api/v1/tenants/acme/groups/"+gid, a.token, nil)
	expectStatus(t, r, http.StatusOK, "group alias")
	if got := r.object(t); !reflect.DeepEqual(got, g) {
		t.Fatalf("group %v, want %v", got, g)
	}

	// Members: the service account from the creation, then the admin.
	r = k.ok(t, http.MethodGet, "/groups/"+gid+"/members", a.token, nil, http.StatusOK)
	res, total := page(t, r, kestraMember)
	if total != 1 || res[0]["id"] != robot || res[0]["username"] != "robot" || res[0]["displayName"] != "robot" {
		t.Fatalf("members: %s", r.Body)
	}
	r = k.ok(t, http.MethodPut, "/groups/"+gid+"/members/"+a.userID, a.token, nil, http.StatusOK)
	m := r.object(t)
	exactKeys(t, "member", m, kestraMember)
	groups := m["groups"].([]any)
	if m["username"] != "admin-acme" || len(groups) != 1 {
		t.Fatalf("added member: %s", r.Body)
	}
	exactKeys(t, "membership", groups[0].(map[string]any), kestraMembership)
	if groups[0].(map[string]any)["membership"] != "MEMBER" {
		t.Fatalf("membership: %s", r.Body)
	}
	kestraError(t, k.do(t, http.MethodPut, "/groups/"+gid+"/members/"+a.userID, a.token, nil), http.StatusConflict, k.path("/groups/"+gid+"/members/"+a.userID))
	r = k.ok(t, http.MethodPut, "/groups/"+gid+"/members/membership/"+a.userID+"?membership=OWNER", a.token, nil, http.StatusOK)
	if ms := r.object(t)["groups"].([]any); ms[0].(map[string]any)["membership"] != "OWNER" {
		t.Fatalf("set membership: %s", r.Body)
	}
	kestraError(t, k.do(t, http.MethodPut, "/groups/"+gid+"/members/membership/"+a.userID+"?membership=BOSS", a.token, nil), http.StatusBadRequest, k.path("/groups/"+gid+"/members/membership/"+a.userID))
	r = k.ok(t, http.MethodGet, "/groups/"+gid+"/members?sort=username:asc&size=1", a.token, nil, http.StatusOK)
	if res, total := page(t, r, kestraMember); total != 2 || len(res) != 1 || res[0]["username"] != "admin-acme" {
		t.Fatalf("members page: %s", r.Body)
	}
	r = k.ok(t, http.MethodDelete, "/groups/"+gid+"/members/"+a.userID, a.token, nil, http.StatusOK)
	if m := r.object(t); len(m["groups"].([]any)) != 0 {
		t.Fatalf("removed member: %s", r.Body)
	}
	kestraError(t, k.do(t, http.MethodDelete, "/groups/"+gid+"/members/"+a.userID, a.token, nil), http.StatusConflict, k.path("/groups/"+gid+"/members/"+a.userID))

	// A user's groups set at once.
	k.ok(t, http.MethodPut, "/users/"+a.userID+"/groups", a.token, map[string]any{"groupIds": []string{gid, gid}}, http.StatusNoContent)
	r = k.ok(t, http.MethodGet, "/groups/"+gid+"/members?q=admin", a.token, nil, http.StatusOK)
	if res, total := page(t, r, kestraMember); total != 1 || res[0]["id"] != a.userID {
		t.Fatalf("user groups set: %s", r.Body)
	}
	kestraError(t, k.do(t, http.MethodPut, "/users/"+a.userID+"/groups", a.token, map[string]any{"groupIds": []string{"nope"}}), http.StatusNotFound, k.path("/users/"+a.userID+"/groups"))
	kestraError(t, k.do(t, http.MethodPut, "/users/nobody/groups", a.token, map[string]any{"groupIds": []string{}}), http.StatusNotFound, k.path("/users/nobody/groups"))
	k.ok(t, http.MethodPut, "/users/"+a.userID+"/groups", a.token, map[string]any{"groupIds": []string{}}, http.StatusNoContent)
	r = k.ok(t, http.MethodGet, "/groups/"+gid+"/members", a.token, nil, http.StatusOK)
	if res, total := page(t, r, kestraMember); total != 1 || res[0]["id"] != robot {
		t.Fatalf("user groups emptied: %s", r.Body)
	}

	// Bindings at a namespace cover its children, not its siblings.
	r = k.ok(t, http.MethodPost, "/roles", a.token, map[string]any{"name": "flow-reader", "permissions": map[string][]string{"FLOW": {"READ"}}}, http.StatusOK)
	roleID, _ := r.object(t)["id"].(string)
	r = k.ok(t, http.MethodPost, "/bindings", a.token, map[string]any{"type": "GROUP", "externalId": gid, "roleId": roleID, "namespaceId": "company"}, http.StatusOK)
	b := r.object(t)
	exactKeys(t, "group binding", b, []string{"group", "id", "namespace", "role", "type"})
	if b["type"] != "GROUP" || b["namespace"] != "company" || !reflect.DeepEqual(b["group"], map[string]any{"id": gid, "name": "devs"}) {
		t.Fatalf("group binding: %s", r.Body)
	}
	bid, _ := b["id"].(string)
	model := h.srv.dir.Authorizer()
	for node, want := range map[string]bool{"company": true, "company.team": true, "companyx": false, "": false} {
		d := model.Can(robot, authz.Request{Action: "kestra.FLOW.read", Scope: authz.Scope{Tenant: "acme", Node: node}})
		if d.Allowed != want {
			t.Errorf("FLOW READ at %q through the group: %v (%s), want %v", node, d.Allowed, d.Reason, want)
		}
	}

	r = k.ok(t, http.MethodPost, "/bindings/bulk", a.token, []map[string]any{
		{"type": "USER", "externalId": a.userID, "roleId": roleID, "namespaceId": "company.team"},
		{"type": "USER", "externalId": robot, "roleId": "viewer"},
	}, http.StatusOK)
	bulk := items(t, r)
	if len(bulk) != 2 || bulk[0]["user"].(map[string]any)["type"] != "STANDARD" || bulk[1]["user"].(map[string]any)["type"] != "SERVICE_ACCOUNT" {
		t.Fatalf("bulk: %s", r.Body)
	}
	// type SERVICE_ACCOUNT, a Keyhold extension, reads back as Kestra shows
	// service accounts' bindings.
	r = h.do(t, http.MethodPost, k.path("/bindings"), a.token, map[string]any{"type": "SERVICE_ACCOUNT", "externalId": robot, "roleId": "auditor"})
	expectStatus(t, r, http.StatusOK, "SERVICE_ACCOUNT binding")
	if sab := r.object(t); sab["type"] != "USER" || sab["user"].(map[string]any)["type"] != "SERVICE_ACCOUNT" {
		t.Fatalf("SERVICE_ACCOUNT binding: %s", r.Body)
	} else {
		k.ok(t, http.MethodDelete, "/bindings/"+sab["id"].(string), a.token, nil, http.StatusNoContent)
	}
	kestraError(t, k.do(t, http.MethodPost, "/bindings", a.token, map[string]any{"type": "SERVICE_ACCOUNT", "externalId": a.userID, "roleId": "auditor"}), http.StatusUnprocessableEntity, k.path("/bindings"))
	// One bad item and none is created.
	r = k.do(t, http.MethodPost, "/bindings/bulk", a.token, []map[string]any{
		{"type": "USER", "externalId": a.userID, "roleId": "viewer"},
		{"type": "GROUP", "externalId": gid, "roleId": "no-such-role"},
	})
	if f := fieldOf(t, kestraError(t, r, http.StatusUnprocessableEntity, k.path("/bindings/bulk"))); f != "[1].roleId" {
		t.Errorf("bulk error path %q", f)
	}
	kestraError(t, k.do(t, http.MethodPost, "/bindings", a.token, map[string]any{"type": "USER", "roleId": "viewer"}), http.StatusUnprocessableEntity, k.path("/bindings"))

	search := func(q string) int {
		t.Helper()
		r := k.ok(t, http.MethodGet, "/bindings/search"+q, a.token, nil, http.StatusOK)
		_, total := page(t, r, nil)
		return total
	}
	// kestra-all's binding of the admin, the group's and the bulk two.
	for q, want := range map[string]int{"": 4, "?type=GROUP": 1, "?type=USER": 3, "?type=SERVICE_ACCOUNT": 1, "?namespace=company": 1,
		"?id=" + url.QueryEscape(a.userID): 2, "?q=flow-reader": 2, "?type=USER&namespace=company.team": 1} {
		if got := search(q); got != want {
			t.Errorf("bindings search %q: %d, want %d", q, got, want)
		}
	}
	r = k.ok(t, http.MethodGet, "/bindings/"+bid, a.token, nil, http.StatusOK)
	if got := r.object(t); !reflect.DeepEqual(got, b) {
		t.Fatalf("get binding %v, want %v", got, b)
	}
	k.ok(t, http.MethodDelete, "/bindings/"+bid, a.token, nil, http.StatusNoContent)
	kestraError(t, k.do(t, http.MethodGet, "/bindings/"+bid, a.token, nil), http.StatusNotFound, k.path("/bindings/"+bid))
	if d := model.Can(robot, authz.Request{Action: "kestra.FLOW.read", Scope: authz.Scope{Tenant: "acme", Node: "company"}}); d.Allowed {
		t.Errorf("deleted binding still allows: %s", d.Reason)
	}

	r = k.ok(t, http.MethodPut, "/groups/"+gid, a.token, map[string]any{"name": "developers", "description": ""}, http.StatusOK)
	if got := r.object(t); got["name"] != "developers" || got["description"] != "" {
		t.Fatalf("update group: %s", r.Body)
	}
	r = k.ok(t, http.MethodDelete, "/groups/"+gid, a.token, nil, http.StatusOK)
	if len(r.Body) != 0 {
		t.Errorf("delete group body %q", r.Body)
	}
	kestraError(t, k.do(t, http.MethodGet, "/groups/"+gid, a.token, nil), http.StatusNotFound, k.path("/groups/"+gid))
}

func TestKestraServiceAccounts(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.kestraAdmin(t, "acme")
	k := newKestraAPI(t, h, "acme", "/api/v1")

	r := k.ok(t, http.MethodPost, "/groups", a.token, map[string]any{"name": "ops"}, http.StatusOK)
	gid, _ := r.object(t)["id"].(string)

	r = k.ok(t, http.MethodPost, "/service-accounts", a.token, map[string]any{"name": "ci-deployer", "description": "deploys", "groups": []map[string]string{{"id": gid}}, "superAdmin": false}, http.StatusOK)
	created := r.object(t)
	exactKeys(t, "service account", created, kestraSA)
	id, _ := created["id"].(string)
	want := map[string]any{"id": id, "name": "ci-deployer", "description": "deploys", "groups": []any{map[string]any{"id": gid}}, "superAdmin": false}
	if !reflect.DeepEqual(created, want) {
		t.Fatalf("created %v, want %v", created, want)
	}
	r = k.ok(t, http.MethodGet, "/service-accounts/"+id, a.token, nil, http.StatusOK)
	if got := r.object(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("get %v, want %v", got, want)
	}
	// The same principal in the k0rdent API: Kestra's name is its displayName.
	r = h.do(t, http.MethodGet, saBase+"/"+id, a.token, nil)
	expectStatus(t, r, http.StatusOK, "k0rdent get")
	var s sa
	r.decode(t, &s)
	if s.DisplayName != "ci-deployer" || s.Description != "deploys" || s.Scope != "organization" || s.ScopeID != "acme" {
		t.Fatalf("k0rdent view: %s", r.Body)
	}
	r = k.ok(t, http.MethodGet, "/service-accounts?q=deployer", a.token, nil, http.StatusOK)
	if res, total := page(t, r, kestraSA); total != 1 || res[0]["id"] != id {
		t.Fatalf("list: %s", r.Body)
	}

	for _, c := range []struct {
		name  string
		body  any
		field string
	}{
		{"capitals", map[string]any{"name": "CI"}, "name"},
		{"spaces", map[string]any{"name": "ci deployer"}, "name"},
		{"double dash", map[string]any{"name": "ci--x"}, "name"},
		{"too long", map[string]any{"name": strings.Repeat("a", 64)}, "name"},
		{"superadmin", map[string]any{"name": "root", "superAdmin": true}, "superAdmin"},
	} {
		r := k.do(t, http.MethodPost, "/service-accounts", a.token, c.body)
		if f := fieldOf(t, kestraError(t, r, http.StatusUnprocessableEntity, k.path("/service-accounts"))); f != c.field {
			t.Errorf("%s: path %q, want %q", c.name, f, c.field)
		}
	}
	kestraError(t, k.do(t, http.MethodPost, "/service-accounts", a.token, map[string]any{"name": "x", "groups": []map[string]string{{"id": "nope"}}}), http.StatusNotFound, k.path("/service-accounts"))
	r = k.ok(t, http.MethodGet, "/service-accounts", a.token, nil, http.StatusOK)
	if _, total := page(t, r, kestraSA); total != 1 {
		t.Fatalf("refused creations left accounts: %s", r.Body)
	}

	r = k.ok(t, http.MethodPut, "/service-accounts/"+id, a.token, map[string]any{"name": "ci-deployer-2", "description": "", "groups": []any{}}, http.StatusOK)
	want = map[string]any{"id": id, "name": "ci-deployer-2", "description": "", "groups": []any{}, "superAdmin": false}
	if got := r.object(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("update %v, want %v", got, want)
	}
	r = k.ok(t, http.MethodGet, "/groups/"+gid+"/members", a.token, nil, http.StatusOK)
	if _, total := page(t, r, kestraMember); total != 0 {
		t.Fatalf("update left the account in the group: %s", r.Body)
	}

	// Non-administrators learn nothing about service accounts.
	viewer, vtoken := h.principal(t, a.token, "viewer-sa", "viewer")
	kestraError(t, k.do(t, http.MethodGet, "/service-accounts/"+id, vtoken, nil), http.StatusNotFound, k.path("/service-accounts/"+id))
	kestraError(t, k.do(t, http.MethodDelete, "/service-accounts/"+viewer.ID, vtoken, nil), http.StatusNotFound, k.path("/service-accounts/"+viewer.ID))

	r = k.ok(t, http.MethodDelete, "/service-accounts/"+id, a.token, nil, http.StatusOK)
	if len(r.Body) != 0 {
		t.Errorf("delete body %q", r.Body)
	}
	kestraError(t, k.do(t, http.MethodGet, "/service-accounts/"+id, a.token, nil), http.StatusNotFound, k.path("/service-accounts/"+id))
	h.assertNoSecretsStored(t)
}

// TestKestraTenantFromPath: the path names the tenant a user acts in, with
// Basic or Bearer credentials; a tenant the caller has no access to is 403.
func TestKestraTenantFromPath(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	h.bootstrap(t, "acme")
	other := h.bootstrap(t, "other")
	h.bootstrap(t, "third")
	ctx := context.Background()
	const pw = "a long enough password"
	h.remember(pw, "password")
	created, err := h.srv.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: commands.Meta{Caller: auth.System()}, Username: "carol",
		Email: "carol@acme.example", Password: pw, Tenants: []string{"acme", "other"}})
	h.applied(t, created.Sequence, err, "create carol")
	carol := created.User.ID()
	h.bindAsOperator(t, "other", "viewer", events.SubjectUser, carol, events.Scope{})

	basic := func(method, path, login, password string, header map[string]string) httpResp {
		t.Helper()
		req, err := http.NewRequest(method, h.ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(login, password)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return httpResp{Status: res.StatusCode, Header: res.Header, Body: raw}
	}
	for _, c := range []struct {
		name, path, login, password string
		header                      map[string]string
		want                        int
	}{
		{"viewer in other", "/api/v1/other/roles/search", "carol", pw, nil, http.StatusOK},
		{"by email, other prefix", "/v1/api/other/roles/search", "carol@acme.example", pw, nil, http.StatusOK},
		{"alias", "/api/v1/tenants/other/roles/search", "carol", pw, nil, http.StatusOK},
		{"no role in acme", "/api/v1/acme/roles/search", "carol", pw, nil, http.StatusForbidden},
		{"no access to third", "/api/v1/third/roles/search", "carol", pw, nil, http.StatusForbidden},
		{"unknown tenant", "/api/v1/nowhere/roles/search", "carol", pw, nil, http.StatusForbidden},
		{"wrong password", "/api/v1/other/roles/search", "carol", pw + "x", nil, http.StatusUnauthorized},
		{"a header naming another tenant", "/api/v1/other/roles/search", "carol", pw, map[string]string{"Keyhold-Tenant": "acme"}, http.StatusBadRequest},
		{"a header naming the same tenant", "/api/v1/other/roles/search", "carol", pw, map[string]string{"Keyhold-Tenant": "other"}, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := basic(http.MethodGet, c.path, c.login, c.password, c.header)
			if c.want == http.StatusOK {
				expectStatus(t, r, http.StatusOK, c.path)
				page(t, r, kestraRoleSummary)
				return
			}
			kestraError(t, r, c.want, c.path)
		})
	}
	// Bearer: the other tenant's administrator acts in its own tenant only.
	k := newKestraAPI(t, h, "other", "/api/v1")
	k.ok(t, http.MethodGet, "/groups/search", other.token, nil, http.StatusOK)
	kestraError(t, h.do(t, http.MethodGet, "/api/v1/acme/groups/search", other.token, nil), http.StatusForbidden, "/api/v1/acme/groups/search")
}

// TestKestraIdempotentMultiStepWrites: writes made of several commands
// (a group with members, a service account with groups) keep every step
// under one Idempotency-Key, and a repeated request changes nothing.
func TestKestraIdempotentMultiStepWrites(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.kestraAdmin(t, "acme")
	k := newKestraAPI(t, h, "acme", "/api/v1")
	r := k.ok(t, http.MethodPost, "/groups", a.token, map[string]any{"name": "ops"}, http.StatusOK)
	ops, _ := r.object(t)["id"].(string)

	keyed := func(path, key string, body any) httpResp {
		t.Helper()
		r := h.send(t, httpReq{method: http.MethodPost, path: k.path(path), token: a.token, body: body, header: map[string]string{"Idempotency-Key": key}})
		expectStatus(t, r, http.StatusOK, "POST "+path)
		return r
	}
	saBody := map[string]any{"name": "deployer", "groups": []map[string]string{{"id": ops}}}
	first := keyed("/service-accounts", "sa-1", saBody)
	again := keyed("/service-accounts", "sa-1", saBody)
	if string(first.Body) != string(again.Body) {
		t.Fatalf("replay %s, first %s", again.Body, first.Body)
	}
	robot, _ := first.object(t)["id"].(string)
	g := keyed("/groups", "group-1", map[string]any{"name": "devs", "membersId": []string{robot, a.userID}})
	keyed("/groups", "group-1", map[string]any{"name": "devs", "membersId": []string{robot, a.userID}})
	gid, _ := g.object(t)["id"].(string)

	r = k.ok(t, http.MethodGet, "/groups/"+gid+"/members", a.token, nil, http.StatusOK)
	if _, total := page(t, r, kestraMember); total != 2 {
		t.Fatalf("members of a keyed group: %s", r.Body)
	}
	r = k.ok(t, http.MethodGet, "/groups/"+ops+"/members", a.token, nil, http.StatusOK)
	if res, total := page(t, r, kestraMember); total != 1 || res[0]["id"] != robot {
		t.Fatalf("members of ops: %s", r.Body)
	}
	r = k.ok(t, http.MethodGet, "/service-accounts", a.token, nil, http.StatusOK)
	if _, total := page(t, r, kestraSA); total != 1 {
		t.Fatalf("a repeated request made another account: %s", r.Body)
	}
	r = k.ok(t, http.MethodGet, "/groups/search", a.token, nil, http.StatusOK)
	if _, total := page(t, r, kestraGroupSummary); total != 2 {
		t.Fatalf("a repeated request made another group: %s", r.Body)
	}
}

// TestKestraRoutesRefuseStrangers walks every Kestra tenant route the
// router serves: without credentials each answers 401, and for another tenant's
// administrator 403, both in Kestra's error shape and before any body is
// read.
func TestKestraRoutesRefuseStrangers(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	h.bootstrap(t, "acme")
	other := h.bootstrap(t, "other")
	router := h.srv.handler.(*mux.Router)
	fill := strings.NewReplacer("{tenant}", "acme", "{id}", "01m8xksbk34yhjaxftq8ek86fc", "{userId}", "01m8xksbk34yhjaxftq8ek86fd", "{tokenId}", "01m8xksbk34yhjaxftq8ek86fe")
	var walked []kestra.Route
	err := router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		m, ok := route.GetHandler().(khttp.MethodsIn)
		if !ok {
			return nil
		}
		tmpl, err := route.GetPathTemplate()
		if err != nil || !(strings.HasPrefix(tmpl, "/api/v1/") || strings.HasPrefix(tmpl, "/v1/api/")) {
			return nil
		}
		path := fill.Replace(tmpl)
		for _, method := range sortedKeys(m.Methods) {
			walked = append(walked, kestra.Route{Method: method, Path: tmpl})
			if !strings.Contains(tmpl, "{tenant}") {
				continue // instance-level: see TestKestraInstanceRoutes and TestKestraInvitations
			}
			// The error links the path as sent: a placeholder left in it
			// ({email}) goes escaped.
			sent := (&url.URL{Path: path}).EscapedPath()
			kestraError(t, h.do(t, method, path, "", nil), http.StatusUnauthorized, sent)
			kestraError(t, h.do(t, method, path, other.token, nil), http.StatusForbidden, sent)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The router serves what the route table lists, which the
	// authorization matrix is generated from.
	byPath := func(a, b kestra.Route) int { return strings.Compare(a.Method+" "+a.Path, b.Method+" "+b.Path) }
	want := slices.SortedFunc(slices.Values(kestra.Routes()), byPath)
	if slices.SortFunc(walked, byPath); !slices.Equal(walked, want) {
		t.Fatalf("the router serves %v, kestra.Routes lists %v", walked, want)
	}
}

// A group's owner manages its members through Kestra with no role at all:
// ownership is the right, and it lets the owner read the group.
func TestKestraGroupOwnerManagesMembers(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.kestraAdmin(t, "acme")
	ctx := context.Background()
	sys := commands.Meta{Caller: auth.System()}
	const pw = "a long password for olive the owner"
	h.remember(pw, "password")
	owner, err := h.srv.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "olive", Email: "olive@acme.example", Password: pw, Tenants: []string{"acme"}})
	h.applied(t, owner.Sequence, err, "create olive")
	other, err := h.srv.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "oscar", Email: "oscar@acme.example", Tenants: []string{"acme"}})
	h.applied(t, other.Sequence, err, "create oscar")
	k := newKestraAPI(t, h, "acme", "/api/v1")
	g := k.ok(t, http.MethodPost, "/groups", a.token, map[string]any{"name": "owned"}, http.StatusOK).object(t)
	gid := g["id"].(string)
	k.ok(t, http.MethodPut, "/groups/"+gid+"/members/"+owner.User.ID(), a.token, nil, http.StatusOK)
	k.ok(t, http.MethodPut, "/groups/"+gid+"/members/membership/"+owner.User.ID()+"?membership=OWNER", a.token, nil, http.StatusOK)

	req, _ := http.NewRequest(http.MethodPut, h.ts.URL+k.path("/groups/"+gid+"/members/"+other.User.ID()), nil)
	req.SetBasicAuth("olive", pw)
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the owner adds a member: status %d, want 200", res.StatusCode)
	}
}
