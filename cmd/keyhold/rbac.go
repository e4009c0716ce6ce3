package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/query"
)

// operatorIn is the operator's command metadata acting in tenant.
func operatorIn(tenant string) commands.Meta { return commands.Meta{Caller: auth.SystemIn(tenant)} }

// validTenantFlag refuses a --tenant that cannot be a tenant id.
func validTenantFlag(tenant string) error {
	if !commands.ValidTenantID(tenant) {
		return errors.New("refused: --tenant: must be a tenant id (1-63 lowercase letters, digits and dashes)")
	}
	return nil
}

// roleRow is a role as keyhold roles list and show print it.
type roleRow struct {
	ID          string        `json:"id"`
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Managed     bool          `json:"managed"`
	Default     bool          `json:"default"`
	Rules       []events.Rule `json:"rules"`
}

func roleRowOf(r query.Role) roleRow {
	return roleRow{ID: r.ID, Name: r.Name, Description: r.Description, Managed: r.Managed, Default: r.Default, Rules: auth.EventRules(r.Rules)}
}

// bindingRow is a binding as keyhold bindings list prints it. Service
// accounts' own roles are listed as bindings with id
// service_account/<account>/<role>.
type bindingRow struct {
	ID          string `json:"id"`
	Role        string `json:"role"`
	SubjectKind string `json:"subject_kind"`
	SubjectID   string `json:"subject_id"`
	ScopeLevel  string `json:"scope_level"`
	ScopeTarget string `json:"scope_target"`
}

// readTables brings the read tables up to date, then runs read with
// queries over them (the caller acts as the operator).
func readTables(ctx context.Context, cfg *config, read func(q *query.Queries) error) error {
	e, runner, err := openRunner(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.close()
	if err := runner.Prepare(ctx); err != nil {
		return err
	}
	if err := runner.CatchUp(ctx); err != nil {
		return err
	}
	q, err := query.New(e.db.SQL(), nil)
	if err != nil {
		return err
	}
	return read(q)
}

func newRoles(cfg *config) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "roles",
		Short: "List and show the roles of a tenant",
		Long: `Roles are sets of rules (allow or deny, action patterns, resource patterns). Every
tenant has the managed roles tenant-admin, auditor, viewer and token-introspector;
dialects and administrators add custom ones. Works whether or not keyhold serve runs.`,
	})
	var tenant, role string
	var asJSON bool
	read := func(cmd *cobra.Command, ref string) ([]roleRow, error) {
		var rows []roleRow
		err := readTables(cmd.Context(), cfg, func(q *query.Queries) error {
			roles, err := q.AllRoles(cmd.Context(), auth.SystemIn(tenant))
			for _, r := range roles {
				if ref == "" || r.ID == ref || r.Name == ref {
					rows = append(rows, roleRowOf(r))
				}
			}
			return err
		})
		return rows, err
	}
	list := &cobra.Command{
		Use:     "list --tenant ID",
		Short:   "List a tenant's roles",
		Long:    "List a tenant's roles as an aligned table, or a JSON array with --json. Brings the read tables up to date first.",
		Example: "  keyhold roles list --tenant acme --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validTenantFlag(tenant); err != nil {
				return err
			}
			rows, err := read(cmd, "")
			if err != nil {
				return err
			}
			return printRoles(cmd, rows, asJSON)
		},
	}
	show := &cobra.Command{
		Use:     "show --tenant ID --role ID|NAME",
		Short:   "Show one role with its rules",
		Long:    "Show one role, found by id or name, as a table with one line per rule, or a JSON object with --json.",
		Example: "  keyhold roles show --tenant acme --role tenant-admin",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validTenantFlag(tenant); err != nil {
				return err
			}
			if role == "" {
				return errors.New("refused: --role: give a role id or name")
			}
			rows, err := read(cmd, role)
			if err != nil {
				return err
			}
			if len(rows) == 0 {
				return fmt.Errorf("role %q not found in tenant %s", role, tenant)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(rows[0])
			}
			if err := printRoles(cmd, rows[:1], false); err != nil {
				return err
			}
			rules := rows[0].Rules
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "\nEFFECT\tACTIONS\tRESOURCES")
			for _, r := range rules {
				res := strings.Join(r.Resources, ",")
				if res == "" {
					res = "*"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\n", r.Effect, strings.Join(r.Actions, ","), res)
			}
			return w.Flush()
		},
	}
	show.Flags().StringVar(&role, "role", "", "the role's id or name (required)")
	for _, c := range []*cobra.Command{list, show} {
		c.Flags().StringVar(&tenant, "tenant", "", "the tenant (required)")
		c.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
		_ = c.MarkFlagRequired("tenant")
		cmd.AddCommand(cfg.use(c, tableFlags...))
	}
	return cmd
}

func printRoles(cmd *cobra.Command, rows []roleRow, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(rows)
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tMANAGED\tDEFAULT\tDESCRIPTION")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%v\t%v\t%s\n", r.ID, r.Name, r.Managed, r.Default, r.Description)
	}
	return w.Flush()
}

func newBindings(cfg *config) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "bindings",
		Short: "List, grant and revoke role bindings in a tenant",
		Long: `A binding grants a role of a tenant to a user, a service account or a group, on the
whole tenant or on a namespace (which covers the namespaces below it). Scope-down does
not bind the operator. Works whether or not keyhold serve runs; a running server
decides with the change as soon as its directory has read it from the log.`,
	})
	var tenant string
	var asJSON bool
	var subject string
	list := &cobra.Command{
		Use:   "list --tenant ID",
		Short: "List a tenant's bindings",
		Long: `List a tenant's bindings, including service accounts' own roles (id
service_account/<account>/<role>), as an aligned table or JSON with --json.`,
		Example: "  keyhold bindings list --tenant acme --subject 01m8bwn9bmf8bvrrbfke65f19r",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validTenantFlag(tenant); err != nil {
				return err
			}
			rows := []bindingRow{}
			err := readTables(cmd.Context(), cfg, func(q *query.Queries) error {
				bs, err := q.AllBindings(cmd.Context(), auth.SystemIn(tenant), subject)
				for _, b := range bs {
					rows = append(rows, bindingRow{ID: b.ID, Role: b.Role, SubjectKind: b.SubjectKind, SubjectID: b.SubjectID, ScopeLevel: b.ScopeLevel, ScopeTarget: b.ScopeTarget})
				}
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(rows)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tROLE\tSUBJECT\tSCOPE")
			for _, r := range rows {
				scope := r.ScopeLevel
				if r.ScopeTarget != "" {
					scope += " " + r.ScopeTarget
				}
				fmt.Fprintf(w, "%s\t%s\t%s %s\t%s\n", r.ID, r.Role, r.SubjectKind, r.SubjectID, scope)
			}
			return w.Flush()
		},
	}
	list.Flags().StringVar(&subject, "subject", "", "only bindings of this principal or group id")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")

	var role, user, account, grp, namespace string
	grant := &cobra.Command{
		Use:   "grant --tenant ID --role ID (--user ID | --service-account ID | --group ID)",
		Short: "Grant a role",
		Long: `Grant a role of the tenant to one user (who must have access to the tenant), service
account or group, on the whole tenant or, with --namespace, on a namespace and the
namespaces below it. Prints the binding as JSON.`,
		Example: "  keyhold bindings grant --tenant acme --role auditor --user 01m8bwn9bmf8bvrrbfke65f19r --namespace team-a",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := commands.CreateBinding{Meta: operatorIn(tenant), Role: role, Scope: events.Scope{Level: events.ScopeTenant}}
			given := 0
			for kind, id := range map[string]string{events.SubjectUser: user, events.SubjectServiceAccount: account, events.SubjectGroup: grp} {
				if id != "" {
					c.SubjectKind, c.SubjectID = kind, id
					given++
				}
			}
			validate := func() error {
				if err := validTenantFlag(tenant); err != nil {
					return err
				}
				if given != 1 {
					return errors.New("refused: give exactly one of --user, --service-account and --group")
				}
				return nil
			}
			if namespace != "" {
				c.Scope = events.Scope{Level: events.ScopeNamespace, Target: namespace}
			}
			return withCommands(cmd, cfg, validate, func(cmds *commands.Commands) (any, error) {
				res, err := cmds.CreateBinding.Handle(cmd.Context(), c)
				if err != nil {
					return nil, err
				}
				b := res.Binding
				kind, id := b.Subject()
				return map[string]any{"id": b.ID(), "role": b.Role(), "subject_kind": kind, "subject_id": id, "scope": b.Scope()}, nil
			})
		},
	}
	grant.Flags().StringVar(&role, "role", "", "the role's id (required)")
	grant.Flags().StringVar(&user, "user", "", "grant to this user")
	grant.Flags().StringVar(&account, "service-account", "", "grant to this service account")
	grant.Flags().StringVar(&grp, "group", "", "grant to this group's members")
	grant.Flags().StringVar(&namespace, "namespace", "", "grant on this namespace (and those below it) instead of the whole tenant")
	_ = grant.MarkFlagRequired("role")

	var binding string
	revoke := &cobra.Command{
		Use:     "revoke --tenant ID --binding ID",
		Short:   "Revoke a binding",
		Long:    "Revoke a binding made with grant. A service account losing a role also loses the access tokens issued before. To change a service account's own roles, update the account.",
		Example: "  keyhold bindings revoke --tenant acme --binding 01m8bwq2x7k3v5n1c9d4e6f8gh",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			validate := func() error {
				if err := validTenantFlag(tenant); err != nil {
					return err
				}
				if !events.ValidToken(binding) {
					return errors.New("refused: --binding: must be a binding id (service accounts' own roles are changed on the account)")
				}
				return nil
			}
			return withCommands(cmd, cfg, validate, func(cmds *commands.Commands) (any, error) {
				_, err := cmds.DeleteBinding.Handle(cmd.Context(), commands.DeleteBinding{Meta: operatorIn(tenant), ID: binding})
				return map[string]any{"id": binding, "revoked": true}, err
			})
		},
	}
	revoke.Flags().StringVar(&binding, "binding", "", "the binding's id (required)")
	_ = revoke.MarkFlagRequired("binding")
	for _, c := range []*cobra.Command{list, grant, revoke} {
		c.Flags().StringVar(&tenant, "tenant", "", "the tenant (required)")
		_ = c.MarkFlagRequired("tenant")
	}
	cmd.AddCommand(cfg.use(list, tableFlags...), cfg.use(grant, tableFlags...), cfg.use(revoke, tableFlags...))
	return cmd
}

func newAuthz(cfg *config) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "authz",
		Short: "Ask the authorization model",
	})
	var c query.Check
	var principal string
	var asJSON bool
	check := &cobra.Command{
		Use:   "check --tenant ID --principal ID --action ACTION",
		Short: "Ask whether a principal may do an action",
		Long: `Ask whether a user or service account may do an action at a scope of a tenant, and
why: the same evaluator the server uses, over the log as it is now (read without a
running server too). Prints "allowed" or "denied" with the reason, or JSON with --json;
the exit status is 0 either way.`,
		Example: "  keyhold authz check --tenant acme --principal 01m8bwn9bmf8bvrrbfke65f19r --action iam.serviceAccounts.create --scope team-a",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validTenantFlag(c.Tenant); err != nil {
				return err
			}
			if !events.ValidToken(principal) {
				return errors.New("refused: --principal: must be a user or service account id")
			}
			e, err := openLog(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer e.close()
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			dir := query.NewDirectory()
			ready, err := dir.Run(ctx, e.store, nil)
			if err != nil {
				return err
			}
			select {
			case <-ready:
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Minute):
				return errors.New("reading the log took more than 5 minutes; check keyhold projections status")
			}
			d := query.NewDecisions(dir)
			var subject *auth.Principal
			if p, ok := d.Principal(principal, c.Tenant); ok {
				subject = &p
			}
			out, err := d.Decide(operatorIn(c.Tenant).Caller, subject, []query.Check{c})
			var fe *query.FieldError
			if errors.As(err, &fe) {
				return fmt.Errorf("refused: --%s: %s", strings.TrimPrefix(fe.Field, "checks[0]."), strings.ReplaceAll(fe.Message, "checks[0].", ""))
			}
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"allowed": out[0].Allowed, "reason": out[0].Reason})
			}
			verdict := "denied"
			if out[0].Allowed {
				verdict = "allowed"
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", verdict, out[0].Reason)
			return err
		},
	}
	check.Flags().StringVar(&c.Tenant, "tenant", "", "the tenant (required)")
	check.Flags().StringVar(&principal, "principal", "", "the user's or service account's id (required)")
	check.Flags().StringVar(&c.Action, "action", "", "the action, such as iam.serviceAccounts.create (required)")
	check.Flags().StringVar(&c.Node, "scope", "", "a node of the tenant, such as namespace team-a.apps (default: the whole tenant)")
	check.Flags().StringVar(&c.Resource, "resource", "", "the resource acted on (default: the scope itself)")
	check.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	for _, f := range []string{"tenant", "principal", "action"} {
		_ = check.MarkFlagRequired(f)
	}
	cmd.AddCommand(cfg.use(check, logFlags...))
	return cmd
}
