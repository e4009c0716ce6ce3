package main

import (
	"encoding/json"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/query"
)

func newInstance(cfg *config) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "instance",
		Short: "Show or change the instance's settings",
		Long: `Instance-level settings: the default and maximum lifetime of personal API tokens.
Both subcommands act as the operator and work whether or not keyhold serve is running.`,
	})
	settingsJSON := func(s query.InstanceSettings) map[string]any {
		return map[string]any{"api_token_default_lifetime": s.APITokenDefaultLifetime.String(), "api_token_max_lifetime": s.APITokenMaxLifetime.String(),
			"credential_default_lifetime": s.CredentialDefaultLifetime.String(), "credential_max_lifetime": s.CredentialMaxLifetime.String(),
			"scope_levels": s.ScopeLevels}
	}
	show := &cobra.Command{
		Use:     "show",
		Short:   "Show the instance's settings",
		Long:    "Print the instance's settings as one JSON object. Brings the read tables up to date first.",
		Example: "  keyhold instance show",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var s query.InstanceSettings
			err := readTables(cmd.Context(), cfg, func(q *query.Queries) error {
				var err error
				s, err = q.InstanceSettings(cmd.Context(), auth.System(), commands.InstanceDefaults())
				return err
			})
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(settingsJSON(s))
		},
	}
	var def, maxi, credDef, credMax time.Duration
	var levels []string
	set := &cobra.Command{
		Use:   "set [--api-token-default-lifetime D] [--api-token-max-lifetime D] [--credential-default-lifetime D] [--credential-max-lifetime D] [--scope-levels L,...]",
		Short: "Change the instance's settings",
		Long: `Change the given settings (lifetimes in whole seconds from 1h to 87600h; a default may not
exceed its maximum) and print them all as one JSON object. Tokens issued before keep their
expiry. The credential lifetimes and scope levels are what tenants created from now on start
with; existing tenants keep their own.`,
		Example: "  keyhold instance set --api-token-default-lifetime 720h --api-token-max-lifetime 2160h\n  keyhold instance set --credential-default-lifetime 168h --scope-levels namespace",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := commands.ChangeInstanceSettings{Meta: commands.Meta{Caller: auth.System()}}
			if cmd.Flags().Changed("api-token-default-lifetime") {
				c.APITokenDefaultLifetime = &def
			}
			if cmd.Flags().Changed("api-token-max-lifetime") {
				c.APITokenMaxLifetime = &maxi
			}
			if cmd.Flags().Changed("credential-default-lifetime") {
				c.CredentialDefaultLifetime = &credDef
			}
			if cmd.Flags().Changed("credential-max-lifetime") {
				c.CredentialMaxLifetime = &credMax
			}
			if cmd.Flags().Changed("scope-levels") {
				c.ScopeLevels = &levels
			}
			return withCommands(cmd, cfg, c.Validate, func(cmds *commands.Commands) (any, error) {
				res, err := cmds.ChangeInstance.Handle(cmd.Context(), c)
				if err != nil {
					return nil, err
				}
				return settingsJSON(res.Instance.View()), nil
			})
		},
	}
	set.Flags().DurationVar(&def, "api-token-default-lifetime", 0, "lifetime of a personal API token issued without one")
	set.Flags().DurationVar(&maxi, "api-token-max-lifetime", 0, "the longest lifetime a personal API token may get")
	set.Flags().DurationVar(&credDef, "credential-default-lifetime", 0, "a new tenant's default client-secret lifetime")
	set.Flags().DurationVar(&credMax, "credential-max-lifetime", 0, "a new tenant's longest client-secret lifetime")
	set.Flags().StringSliceVar(&levels, "scope-levels", nil, "the service-account scope levels a new tenant allows: tenant, namespace")
	cmd.AddCommand(cfg.use(show, tableFlags...), cfg.use(set, tableFlags...))
	return cmd
}
