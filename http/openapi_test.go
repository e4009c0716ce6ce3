package http

import (
	"encoding/json"
	"testing"
)

// TestOpenAPI checks that the embedded document is OpenAPI 3.1 and that
// every operation it describes has responses. That it describes exactly
// the routes the server registers is checked against a running server's
// router (cmd/keyhold TestOpenAPIDescribesEveryRoute).
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
	if len(doc.Paths) == 0 {
		t.Fatal("openapi.json describes no paths")
	}
	operations := map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if !operations[method] {
				continue // summary, parameters, ...
			}
			t.Run(method+" "+path, func(t *testing.T) {
				var op struct {
					Responses map[string]json.RawMessage `json:"responses"`
				}
				if err := json.Unmarshal(raw, &op); err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				if len(op.Responses) == 0 {
					t.Errorf("%s %s has no responses", method, path)
				}
			})
		}
	}
}
