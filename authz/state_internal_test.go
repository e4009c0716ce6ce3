package authz

import (
	"reflect"
	"slices"
	"testing"
)

// Every field of a Model is either in its State, put again by whoever
// restores one (principals, tenant access), derived when restoring, or of
// the running process. A new field fails this test until State, Restore
// and Reset have been looked at for it.
func TestStateCoversTheModel(t *testing.T) {
	decided := []string{
		"roles", "bindings", "members", // in State
		"principals", "access", // put again by the restorer
		"bySubject", "byRole", "groupsOf", "ownHeld", "defaults", // derived
		"mu", "cacheMu", "cache", // the running process's
	}
	var fields []string
	typ := reflect.TypeOf(Model{})
	for i := range typ.NumField() {
		fields = append(fields, typ.Field(i).Name)
	}
	slices.Sort(fields)
	if want := slices.Sorted(slices.Values(decided)); !slices.Equal(fields, want) {
		t.Fatalf("Model's fields %v, State decided on %v", fields, want)
	}
}
