package kestra

import (
	"reflect"
	"testing"

	"github.com/keyhold/keyhold/authz"
)

// Kestra's INVITATION permission is the core's invitation actions, so a
// Kestra role decides who may invite, read and withdraw invitations.
func TestInvitationPermission(t *testing.T) {
	rules, err := rulesOf(map[string][]string{"INVITATION": {"CREATE", "READ", "DELETE"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []authz.Rule{{Effect: authz.Allow, Actions: []string{authz.InvitationsCreate, authz.InvitationsList, authz.InvitationsGet, authz.InvitationsDelete}}}
	if !reflect.DeepEqual(rules, want) {
		t.Fatalf("rules %v, want %v", rules, want)
	}
	if got := permissionsOf(want); !reflect.DeepEqual(got, map[string][]string{"INVITATION": {"CREATE", "READ", "DELETE"}}) {
		t.Fatalf("read back as %v", got)
	}
}
