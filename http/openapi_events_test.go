package http

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/events"
)

// TestOpenAPIEventTypes: the EventType schema lists exactly the registered
// types the audit trail serves (uniqueness reservations are left out).
func TestOpenAPIEventTypes(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				EventType struct {
					Enum []string `json:"enum"`
				} `json:"EventType"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var want []string
	for name := range events.Types() {
		if !strings.HasPrefix(name, "iam.unique_key.") {
			want = append(want, name)
		}
	}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(doc.Components.Schemas.EventType.Enum))
	if !slices.Equal(got, want) {
		t.Fatalf("EventType enum %v\nregistered %v", got, want)
	}
}
