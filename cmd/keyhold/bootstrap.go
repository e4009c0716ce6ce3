package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
)

// maxCatchUpWait bounds bootstrap's --wait.
const maxCatchUpWait = 10 * time.Minute

func newBootstrap(cfg *config) *cobra.Command {
	var tenant, username, email string
	var wait time.Duration
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "bootstrap --tenant ID --username NAME --email ADDR [--password-stdin]",
		Short: "Create a tenant and its first administrator",
		Long: `Create a tenant and its first administrator: an instance superadmin holding every
built-in tenant role. Prints one JSON object with tenant, user_id and token, a personal
API token shown only this once, as soon as the event log holds the tenant; it then
brings the read tables up to date, waiting at most --wait (if that fails, it says so on
stderr and still exits 0: keyhold serve applies the events). With --password-stdin the
first line of stdin becomes the administrator's password, for HTTP Basic; only its
argon2id verifier is stored. Works whether or not keyhold serve is running: with a
server on the same data dir, it joins its NATS.`,
		Example: `  keyhold bootstrap --tenant acme --username admin --email admin@acme.example
  printf '%s\n' "$PASSWORD" | keyhold bootstrap --tenant acme --username admin --email admin@acme.example --password-stdin`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			boot := commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: tenant, Username: username, Email: email}
			if passwordStdin {
				pw, err := readPassword(cmd.InOrStdin())
				if err != nil {
					return err
				}
				boot.Password = pw
			}
			// Refuse bad input before anything starts or is created.
			if err := boot.Validate(); err != nil {
				return fmt.Errorf("bootstrap: %w", refusal(err))
			}
			if wait <= 0 || wait > maxCatchUpWait {
				return fmt.Errorf("--wait must be between 1ms and %s, not %s", maxCatchUpWait, wait)
			}
			e, runner, err := openRunner(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer e.close()
			cmds, err := e.commands(cmd.Context())
			if err != nil {
				return err
			}
			res, err := cmds.Bootstrap.Handle(cmd.Context(), boot)
			if err != nil {
				return fmt.Errorf("bootstrap: %w", refusal(err))
			}
			// The token is printed as soon as the log holds the tenant: it
			// is shown only this once, and a second bootstrap is refused,
			// so nothing after this point may keep it from the operator.
			if err := json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]string{"tenant": res.Tenant, "user_id": res.UserID, "token": res.Token}); err != nil {
				return err
			}
			// Bring the read tables up to date so the new tenant is visible
			// at once, whether a server applies them or this process does.
			// Failing that, a server applies the events when it runs.
			ctx, cancel := context.WithTimeout(cmd.Context(), wait)
			defer cancel()
			err = runner.Prepare(ctx)
			if err == nil {
				err = runner.CatchUp(ctx)
			}
			if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && cmd.Context().Err() == nil {
				err = fmt.Errorf("still behind after --wait %s", wait)
			}
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "keyhold: tenant %s bootstrapped, but the read tables are not up to date yet (%v); keyhold serve brings them up to date: check with keyhold projections status\n", res.Tenant, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant id: 1-63 lowercase letters, digits and dashes (required)")
	cmd.Flags().StringVar(&username, "username", "", "the administrator's username (required)")
	cmd.Flags().StringVar(&email, "email", "", "the administrator's email address (required)")
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for the read tables to show the tenant")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the administrator's password from the first line of stdin")
	for _, f := range []string{"tenant", "username", "email"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cfg.use(cmd, tableFlags...)
}
