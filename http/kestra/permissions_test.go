package kestra

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/authz"
)

func TestPermissionsRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		in   map[string][]string
		out  map[string][]string // nil: as in
	}{
		{"empty", map[string][]string{}, nil},
		{"every permission, every verb", func() map[string][]string {
			m := map[string][]string{}
			for _, p := range Permissions {
				m[p] = []string{"DELETE", "CREATE", "UPDATE", "READ"}
			}
			return m
		}(), nil},
		{"IAM permissions in the order given", map[string][]string{"SERVICE_ACCOUNT": {"READ", "CREATE"}, "GROUP_MEMBERSHIP": {"UPDATE"}, "AUDITLOG": {"READ"}}, nil},
		{"a verb given twice counts once", map[string][]string{"FLOW": {"READ", "READ"}}, map[string][]string{"FLOW": {"READ"}}},
		{"a permission without verbs grants nothing", map[string][]string{"FLOW": {}, "KVSTORE": {"DELETE"}}, map[string][]string{"KVSTORE": {"DELETE"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rules, err := rulesOf(c.in)
			if err != nil {
				t.Fatal(err)
			}
			want := c.out
			if want == nil {
				want = c.in
			}
			if got := permissionsOf(rules); !reflect.DeepEqual(got, want) {
				t.Fatalf("read back %v, want %v", got, want)
			}
		})
	}
}

func TestPermissionsMapOntoCoreActions(t *testing.T) {
	rules, err := rulesOf(map[string][]string{"SERVICE_ACCOUNT": {"CREATE", "READ"}, "AUDITLOG": {"READ"}, "FLOW": {"UPDATE"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []authz.Rule{
		{Effect: authz.Allow, Actions: []string{"kestra.FLOW.update"}},
		{Effect: authz.Allow, Actions: []string{"audit.events.list"}},
		{Effect: authz.Allow, Actions: []string{"iam.serviceAccounts.create", "iam.serviceAccountCredentials.create",
			"iam.serviceAccounts.list", "iam.serviceAccounts.get", "iam.serviceAccountCredentials.list", "iam.serviceAccountCredentials.get"}},
	}
	if !reflect.DeepEqual(rules, want) {
		t.Fatalf("rules %v, want %v", rules, want)
	}
}

func TestPermissionsOfOtherRoles(t *testing.T) {
	cases := []struct {
		name  string
		rules []authz.Rule
		want  map[string][]string
	}{
		{"patterns show every verb they cover", []authz.Rule{{Effect: authz.Allow, Actions: []string{"iam.roles.*", "kestra.FLOW.*"}}},
			map[string][]string{"ROLE": {"CREATE", "READ", "UPDATE", "DELETE"}, "FLOW": {"CREATE", "READ", "UPDATE", "DELETE"}}},
		{"half a READ is no READ", []authz.Rule{{Effect: authz.Allow, Actions: []string{"iam.roles.list"}}}, map[string][]string{}},
		{"a deny takes the verb away", []authz.Rule{{Effect: authz.Allow, Actions: []string{"iam.groups.*"}}, {Effect: authz.Deny, Actions: []string{"iam.groups.delete"}}},
			map[string][]string{"GROUP": {"CREATE", "READ", "UPDATE"}}},
		{"rules on some resources only are not Kestra's", []authz.Rule{{Effect: authz.Allow, Actions: []string{"kestra.FLOW.read"}, Resources: []string{"/x"}}}, map[string][]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := permissionsOf(c.rules); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestRemovedAndUnknownPermissionsAreRefused(t *testing.T) {
	cases := []struct {
		perm, field, says string
		verbs             []string
	}{
		{"ME", "permissions.ME", "/api/v1/me", []string{"READ"}},
		{"API_TOKEN", "permissions.API_TOKEN", "SERVICE_ACCOUNT", []string{"READ"}},
		{"APITOKEN", "permissions.APITOKEN", "SERVICE_ACCOUNT", []string{"READ"}},
		{"TENANT", "permissions.TENANT", "TENANT_ACCESS", []string{"READ"}},
		{"UNKNOWN", "permissions.UNKNOWN", "unknown permission", []string{"READ"}},
		{"FLOW", "permissions.FLOW[1]", "unknown action", []string{"READ", "read"}},
	}
	for _, c := range cases {
		t.Run(c.perm, func(t *testing.T) {
			_, err := rulesOf(map[string][]string{c.perm: c.verbs})
			var pe *permissionError
			if !errors.As(err, &pe) || pe.field != c.field || !strings.Contains(pe.message, c.says) {
				t.Fatalf("error %v (%+v), want field %q saying %q", err, pe, c.field, c.says)
			}
		})
	}
}
