package main

import (
	"net/http"
	"testing"
)

// TestKestraTenantAccessNames: tenant access shows a user made with first
// and last names by the name /users shows, not by its username.
func TestKestraTenantAccessNames(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	root := h.kestraAdmin(t, "acme")
	k := newKestraAPI(t, h, "acme", "/api/v1")
	su := bearer(root.token)
	dora := k.topOK(t, http.MethodPost, "/users", su, map[string]any{"email": "dora@example.com", "firstName": "Dora", "lastName": "Diaz",
		"password": "dora's long password 4", "tenants": []string{"acme"}}, http.StatusCreated).object(t)
	id, _ := dora["id"].(string)
	if dora["displayName"] != "Dora Diaz" {
		t.Fatalf("/users shows %v", dora["displayName"])
	}
	for _, c := range []struct {
		name   string
		method string
		path   string
		body   any
	}{
		{"search", http.MethodGet, "/tenant-access?q=dora", nil},
		{"autocomplete", http.MethodPost, "/tenant-access/autocomplete", map[string]any{"q": "dora"}},
		{"one user", http.MethodGet, "/tenant-access/" + id, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := k.ok(t, c.method, c.path, root.token, c.body, http.StatusOK)
			var body, shown any
			r.decode(t, &body)
			switch v := body.(type) {
			case []any:
				shown = itemNamed(t, v, id)
			case map[string]any:
				if res, ok := v["results"].([]any); ok {
					shown = itemNamed(t, res, id)
				} else {
					shown = v["displayName"]
				}
			}
			if shown != "Dora Diaz" {
				t.Fatalf("displayName %v, want Dora Diaz: %s", shown, r.Body)
			}
		})
	}
}

// itemNamed returns the displayName of the item with id in items.
func itemNamed(t *testing.T, items []any, id string) any {
	t.Helper()
	for _, it := range items {
		if m, _ := it.(map[string]any); m["id"] == id {
			return m["displayName"]
		}
	}
	t.Fatalf("no item %s in %v", id, items)
	return nil
}
