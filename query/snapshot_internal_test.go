package query

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
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

// A snapshot of another format, or written by a version that folds other
// events, is refused, even of the same stream.
func TestSnapshotOfAnotherVersionRefused(t *testing.T) {
	st, _ := testenv.Store(t)
	ctx := context.Background()
	stream, err := st.Identity(ctx)
	testenv.Must(t, err, "identity")
	tests := []struct {
		name string
		h    snapshotHeader
		want error
	}{
		{"this version", snapshotHeader{Format: snapshotFormat, Folds: folds(), Stream: stream}, nil},
		{"another format", snapshotHeader{Format: snapshotFormat + 1, Folds: folds(), Stream: stream}, ErrSnapshotMismatch},
		{"other events folded", snapshotHeader{Format: snapshotFormat, Folds: folds() + ",iam.new.event@1", Stream: stream}, ErrSnapshotMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			enc := gob.NewEncoder(&b)
			testenv.Must(t, enc.Encode(tt.h), "header")
			testenv.Must(t, enc.Encode(snapshotState{}), "state")
			err := NewDirectory().LoadSnapshot(ctx, &b, st, stream)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if !strings.Contains(folds(), events.CredentialCreated{}.EventType()+"@") {
		t.Fatalf("folds %q lacks the credential event", folds())
	}
}
