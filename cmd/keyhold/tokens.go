package main

import (
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

func newTokens(cfg *config) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "tokens",
		Short: "Issue, list or revoke users' personal API tokens",
		Long: `Issue, list or revoke users' personal API tokens, such as the one bootstrap printed.
They act as the operator (an instance superadmin) and work whether or not keyhold serve
is running; a running server honours a change as soon as its directory has read it
from the log, within milliseconds.`,
	})
	var user, name string
	var lifetime time.Duration
	issue := &cobra.Command{
		Use:   "issue --user ID [--name TEXT] [--lifetime DURATION]",
		Short: "Issue a new personal API token for a user",
		Long: `Issue a new personal API token for a user. Prints one JSON object with user_id,
token_id, token and expires_at; the token is shown only this once. It works for
--lifetime (default and maximum: the instance's settings, initially 90 and 365 days;
see keyhold instance). The user's other tokens stay valid: revoke them afterwards to
rotate.`,
		Example: "  keyhold tokens issue --user 01m8bwn9bmf8bvrrbfke65f19r",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := commands.IssueAPIToken{Meta: commands.Meta{Caller: auth.System()}, UserID: user, Name: name}
			if cmd.Flags().Changed("lifetime") {
				if lifetime <= 0 {
					return errors.New("refused: --lifetime: must be positive; leave it out for the instance's default")
				}
				c.Lifetime = lifetime
			}
			return withCommands(cmd, cfg, c.Validate, func(cmds *commands.Commands) (any, error) {
				res, err := cmds.IssueAPIToken.Handle(cmd.Context(), c)
				return map[string]string{"user_id": res.UserID, "token_id": res.TokenID, "token": res.Token, "expires_at": res.ExpiresAt.Format(time.RFC3339)}, err
			})
		},
	}
	var tokenID string
	revoke := &cobra.Command{
		Use:   "revoke --user ID [--token ID]",
		Short: "Revoke a user's personal API tokens",
		Long: `Revoke every personal API token of a user at once (a leaked token, a user who
leaves), or with --token one of them. Prints one JSON object with user_id and revoked
(how many tokens).`,
		Example: "  keyhold tokens revoke --user 01m8bwn9bmf8bvrrbfke65f19r --token 01m8bwq2x7k3v5n1c9d4e6f8gh",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := commands.RevokeAPITokens{Meta: commands.Meta{Caller: auth.System()}, UserID: user, TokenID: tokenID}
			return withCommands(cmd, cfg, c.Validate, func(cmds *commands.Commands) (any, error) {
				res, err := cmds.RevokeAPITokens.Handle(cmd.Context(), c)
				return map[string]any{"user_id": user, "revoked": res.Revoked}, err
			})
		},
	}
	issue.Flags().StringVar(&name, "name", "", "what the token is for")
	issue.Flags().DurationVar(&lifetime, "lifetime", 0, "how long the token works (default: the instance's default, at most its maximum)")
	revoke.Flags().StringVar(&tokenID, "token", "", "revoke only the token with this id")
	var asJSON bool
	list := &cobra.Command{
		Use:   "list --user ID",
		Short: "List a user's personal API tokens",
		Long: `List a user's live personal API tokens (never the tokens themselves): id, name,
created, expires and last used (as the servers last recorded it, at most 10 s old; empty
if never). An aligned table, or JSON with --json. Brings the read tables up to date first.`,
		Example: "  keyhold tokens list --user 01m8bwn9bmf8bvrrbfke65f19r",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !events.ValidToken(user) {
				return errors.New("refused: --user: must be a user id")
			}
			var tokens []query.APIToken
			err := readTables(cmd.Context(), cfg, func(q *query.Queries) error {
				var err error
				tokens, err = q.APITokens(cmd.Context(), auth.System(), user)
				return err
			})
			if err != nil {
				return err
			}
			return printTokens(cmd, tokens, asJSON)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	for _, c := range []*cobra.Command{issue, revoke, list} {
		c.Flags().StringVar(&user, "user", "", "the user's id (bootstrap printed it as user_id) (required)")
		_ = c.MarkFlagRequired("user")
	}
	cmd.AddCommand(cfg.use(issue, tableFlags...), cfg.use(revoke, tableFlags...), cfg.use(list, tableFlags...))
	return cmd
}

func printTokens(cmd *cobra.Command, tokens []query.APIToken, asJSON bool) error {
	stamp := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	if asJSON {
		out := make([]map[string]string, len(tokens))
		for i, t := range tokens {
			out[i] = map[string]string{"token_id": t.ID, "name": t.Name, "created_at": stamp(&t.CreatedAt), "expires_at": stamp(t.ExpiresAt), "last_used_at": stamp(t.LastUsedAt)}
		}
		return json.NewEncoder(cmd.OutOrStdout()).Encode(out)
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TOKEN ID\tNAME\tCREATED\tEXPIRES\tLAST USED")
	for _, t := range tokens {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, stamp(&t.CreatedAt), stamp(t.ExpiresAt), stamp(t.LastUsedAt))
	}
	return w.Flush()
}

// withCommands checks an operator command's input with validate, then
// runs it against the log (joining a running server's NATS or starting its
// own) and prints its result as one JSON object.
func withCommands(cmd *cobra.Command, cfg *config, validate func() error, run func(*commands.Commands) (any, error)) error {
	if err := validate(); err != nil {
		return refusal(err)
	}
	e, err := open(cmd.Context(), cfg, false)
	if err != nil {
		return err
	}
	defer e.close()
	cmds, err := e.commands(cmd.Context())
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
		// Domain fields are snake_case; flags use dashes.
		return fmt.Errorf("refused: --%s: %s", strings.ReplaceAll(ce.Field, "_", "-"), ce.Message)
	}
	return fmt.Errorf("refused: %s", ce.Message)
}
