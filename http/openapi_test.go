package http

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestOpenAPI checks that the embedded document is OpenAPI 3.1 and
// describes every route the server registers (cmd/keyhold/serve.go:
// NewRouter, k0rdent.Register, audit.Register, oauth2.Server.Register).
// Add a row here whenever a route is added.
func TestOpenAPI(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}

	const sa = "/v1/regions/global/iam/service-accounts"
	routes := []struct {
		method, path string
	}{
		// k0rdent service accounts and credentials
		{"GET", sa},
		{"POST", sa},
		{"GET", sa + "/{id}"},
		{"PATCH", sa + "/{id}"},
		{"DELETE", sa + "/{id}"},
		{"GET", sa + "/{serviceAccountId}/credentials"},
		{"POST", sa + "/{serviceAccountId}/credentials"},
		{"GET", sa + "/{serviceAccountId}/credentials/{id}"},
		{"DELETE", sa + "/{serviceAccountId}/credentials/{id}"},
		// k0rdent tenant settings
		{"GET", "/v1/regions/global/iam/settings"},
		{"PATCH", "/v1/regions/global/iam/settings"},
		// audit
		{"GET", "/v1/audit/events"},
		// decisions
		{"POST", "/v1/authz/check"},
		{"POST", "/v1/authz/check/bulk"},
		// OAuth2
		{"POST", "/oauth2/token"},
		{"POST", "/oauth2/introspect"},
		{"POST", "/oauth2/revoke"},
		{"GET", "/.well-known/jwks.json"},
		{"HEAD", "/.well-known/jwks.json"},
		// operations
		{"GET", "/healthz"},
		{"HEAD", "/healthz"},
		{"GET", "/readyz"},
		{"HEAD", "/readyz"},
		{"GET", "/metrics"},
		{"GET", "/openapi.json"},
	}
	for _, r := range routes {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			item, ok := doc.Paths[r.path]
			if !ok {
				t.Fatalf("path %s is missing", r.path)
			}
			raw, ok := item[strings.ToLower(r.method)]
			if !ok {
				t.Fatalf("%s %s is missing", r.method, r.path)
			}
			var op struct {
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", r.method, r.path, err)
			}
			if len(op.Responses) == 0 {
				t.Errorf("%s %s has no responses", r.method, r.path)
			}
		})
	}
}
