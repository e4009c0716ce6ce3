package commands_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

// Minting a client secret and minting an API token both act as the
// account, so one rule decides both: the caller must hold everything the
// account holds, within its scope, in the account's tenant.
func TestActingAsAnAccountIsOneRule(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "acme", Username: "root", Email: "root@acme.test"})
	testenv.Must(t, err, "bootstrap")
	_, err = w.cmds.CreateTenant.Handle(ctx, commands.CreateTenant{Meta: commands.Meta{Caller: auth.System()}, TenantID: "globex"})
	testenv.Must(t, err, "create globex")
	flows, err := w.cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: operator("acme"), RoleInput: commands.RoleInput{
		Name: "flows", Rules: []authz.Rule{{Effect: authz.Allow, Actions: []string{"vault.secrets.*"}}},
	}})
	testenv.Must(t, err, "role")
	sa, err := w.cmds.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: operator("acme"), DisplayName: "strong",
		Scope: events.Scope{Level: events.ScopeTenant}, Roles: []string{flows.Role.ID()}})
	testenv.Must(t, err, "account")
	w.sync(sa.Sequence)
	id := sa.ServiceAccount.ID()

	lacking := w.user("ops", "acme", authz.RoleTenantAdmin)
	holding := w.user("boss", "acme", authz.RoleTenantAdmin, flows.Role.ID())
	elsewhere := w.user("gus", "globex", authz.RoleTenantAdmin)

	acts := []struct {
		name string
		act  func(caller auth.Principal) error
	}{
		{"client secret", func(caller auth.Principal) error {
			_, err := w.cmds.CreateCredential.Handle(ctx, commands.CreateCredential{Meta: commands.Meta{Caller: caller}, ServiceAccountID: id})
			return err
		}},
		{"API token", func(caller auth.Principal) error {
			_, err := w.cmds.IssueServiceAccountToken.Handle(ctx, commands.IssueServiceAccountToken{Meta: commands.Meta{Caller: caller}, ServiceAccountID: id, Name: "ci"})
			return err
		}},
	}
	callers := []struct {
		name   string
		caller auth.Principal
		want   error
		// names is what a refusal's message must name: the account, the
		// role and the rule the caller lacks.
		names []string
	}{
		{"caller lacking a role the account holds", lacking, commands.ErrForbidden, []string{id, flows.Role.ID(), "vault.secrets.*"}},
		{"caller holding all the account holds", holding, nil, nil},
		{"administrator of another tenant", elsewhere, commands.ErrNotFound, []string{id}},
	}
	for _, a := range acts {
		for _, c := range callers {
			t.Run(a.name+"/"+c.name, func(t *testing.T) {
				err := a.act(c.caller)
				if c.want == nil {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				if !errors.Is(err, c.want) {
					t.Fatalf("err = %v, want %v", err, c.want)
				}
				for _, s := range c.names {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not name %q", err, s)
					}
				}
			})
		}
	}
}
