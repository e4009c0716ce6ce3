package http

import (
	"encoding/json"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		paths   [][]string
		want    string // "" means unchanged
		changed bool
	}{
		{"declared field", `{"id":"c1","clientSecret":"s3cr3t"}`, [][]string{{"clientSecret"}}, `{"clientSecret":null,"id":"c1"}`, true},
		{"declared nested field", `{"token":{"id":"t1","fullToken":"opaque"}}`, [][]string{{"token", "fullToken"}}, `{"token":{"fullToken":null,"id":"t1"}}`, true},
		{"declared but absent", `{"id":"c1"}`, [][]string{{"clientSecret"}}, "", false},
		{"undeclared Keyhold secret anywhere", `{"items":[{"v":"khcs_abc"}],"n":12345678901234567890}`, nil, `{"items":[{"v":null}],"n":12345678901234567890}`, true},
		{"undeclared API token", `{"fullToken":"khpat_xyz"}`, nil, `{"fullToken":null}`, true},
		{"nothing secret", `{"id":"c1","name":"token"}`, nil, "", false},
		{"not JSON", `plain text`, [][]string{{"x"}}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := redact([]byte(tt.body), tt.paths)
			if changed != tt.changed {
				t.Fatalf("changed = %v, want %v (%s)", changed, tt.changed, got)
			}
			if !tt.changed {
				if string(got) != tt.body {
					t.Fatalf("unchanged body rewritten: %s", got)
				}
				return
			}
			var g, w any
			if json.Unmarshal(got, &g) != nil || json.Unmarshal([]byte(tt.want), &w) != nil {
				t.Fatalf("not JSON: %s", got)
			}
			if string(got) != tt.want+"\n" {
				t.Fatalf("redact = %s, want %s", got, tt.want)
			}
		})
	}
}
