package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
)

func newTokens(cfg *config) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "tokens",
		Short: "Issue or revoke users' personal API tokens",
		Long: `Issue or revoke users' personal API tokens, such as the one bootstrap printed.
Both act as the operator (an instance superadmin) and work whether or not keyhold serve
is running; a running server honours the change as soon as its directory has read it
from the log, within milliseconds.`,
	})
	var user, name string
	var lifetime time.Duration
	issue := &cobra.Command{
		Use:   "issue --user ID [--name TEXT] [--lifetime DURATION]",
		Short: "Issue a new personal API token for a user",
		Long: `Issue a new personal API token for a user. Prints one JSON object with user_id,
token_id, token and expires_at; the token is shown only this once. It works for
--lifetime (default 90 days, at most 365). The user's other tokens stay valid: revoke
them afterwards to rotate.`,
		Example: "  keyhold tokens issue --user 01m8bwn9bmf8bvrrbfke65f19r",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := commands.IssueAPIToken{Meta: commands.Meta{Caller: auth.System()}, UserID: user, Name: name, Lifetime: lifetime}
			return withCommands(cmd, cfg, c.Validate, func(cmds *commands.Commands) (any, error) {
				res, err := cmds.IssueAPIToken.Handle(cmd.Context(), c)
				return map[string]string{"user_id": res.UserID, "token_id": res.TokenID, "token": res.Token, "expires_at": res.ExpiresAt.Format(time.RFC3339)}, err
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke --user ID",
		Short: "Revoke every personal API token of a user",
		Long: `Revoke every personal API token of a user at once (a leaked token, a user who
leaves). Prints one JSON object with user_id and revoked (how many tokens).`,
		Example: "  keyhold tokens revoke --user 01m8bwn9bmf8bvrrbfke65f19r",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := commands.RevokeAPITokens{Meta: commands.Meta{Caller: auth.System()}, UserID: user}
			return withCommands(cmd, cfg, c.Validate, func(cmds *commands.Commands) (any, error) {
				res, err := cmds.RevokeAPITokens.Handle(cmd.Context(), c)
				return map[string]any{"user_id": user, "revoked": res.Revoked}, err
			})
		},
	}
	issue.Flags().StringVar(&name, "name", "", "what the token is for")
	issue.Flags().DurationVar(&lifetime, "lifetime", commands.DefaultAPITokenLifetime, "how long the token works, at most 8760h (365 days)")
	for _, c := range []*cobra.Command{issue, revoke} {
		c.Flags().StringVar(&user, "user", "", "the user's id (bootstrap printed it as user_id) (required)")
		_ = c.MarkFlagRequired("user")
		cmd.AddCommand(cfg.use(c, logFlags...))
	}
	return cmd
}

// withCommands checks an operator command's input with validate, then
// runs it against the log (joining a running server's NATS or starting its
// own) and prints its result as one JSON object.
func withCommands(cmd *cobra.Command, cfg *config, validate func() error, run func(*commands.Commands) (any, error)) error {
	if err := validate(); err != nil {
		return refusal(err)
	}
	e, err := openLog(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	defer e.close()
	cmds, err := commands.New(e.store)
	if err != nil {
		return err
	}
	out, err := run(cmds)
	if err != nil {
		return refusal(err)
	}
	return json.NewEncoder(cmd.OutOrStdout()).Encode(out)
}

// refusal names the flag a refused command's rule is about: the message
// alone may not say.
func refusal(err error) error {
	var ce *commands.Error
	if !errors.As(err, &ce) {
		return err
	}
	if ce.Field != "" {
		return fmt.Errorf("refused: --%s: %s", ce.Field, ce.Message)
	}
	return fmt.Errorf("refused: %s", ce.Message)
}
