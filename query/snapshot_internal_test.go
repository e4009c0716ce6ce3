package query

import (
	"reflect"
	"slices"
	"testing"
)

// Every field of the directory's state is either written to snapshots,
// derived again when one loads, or of the running process. A new field
// fails this test until that is decided (and snapshotFormat bumped if
// snapshots change).
func TestSnapshotCoversTheDirectory(t *testing.T) {
	tests := []struct {
		typ  any
		kept []string
	}{
		{Directory{}, []string{
			// written
			"seq", "accounts", "users", "tokens", "tenantIDs", "model", "named", "failures",
			// derived when loading
			"clients", "tokenIDs", "logins", "names", "bindingSets", "roleSets", "nameLists", "boundTo", "accountTokens",
			// the running process's
			"loading", "mu", "macKey", "uses", "hashing", "personal",
		}},
		{dirServiceAccount{}, []string{"id", "tenant", "otherClientID", "scope", "roles", "active", "creds", "generation", "revoked", "name", "bound",
			"bindings"}}, // derived
		{dirUser{}, []string{"id", "active", "verifier", "tenants", "bindings", "superadmin", "personalSeq",
			"login",    // read again from the log
			"verified", // a cache of the running process
		}},
		{dirCredential{}, []string{"id", "verifier", "expires"}},
		{dirAPIToken{}, []string{"id", "owner", "account", "expires"}},
	}
	for _, tt := range tests {
		typ := reflect.TypeOf(tt.typ)
		t.Run(typ.Name(), func(t *testing.T) {
			var fields []string
			for i := range typ.NumField() {
				fields = append(fields, typ.Field(i).Name)
			}
			slices.Sort(fields)
			want := slices.Sorted(slices.Values(tt.kept))
			if !slices.Equal(fields, want) {
				t.Fatalf("fields %v, the snapshot decided on %v", fields, want)
			}
		})
	}
}
