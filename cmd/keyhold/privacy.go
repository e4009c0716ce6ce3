package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
)

func newPrivacy(cfg *config) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "privacy",
		Short: "Erase users' personal data",
		Long: `Manage personal data. Users' usernames, emails and names are stored in the event
log encrypted with a data key per user, kept in Postgres and wrapped by the
key-encryption key; erasing destroys that key (crypto-shredding).`,
	})
	var principal string
	var wait time.Duration
	erase := &cobra.Command{
		Use:   "erase --principal ID",
		Short: "Erase a user's personal data for good",
		Long: `Erase a user's personal data for good, acting as the operator: records the erase
with the release of the user's username and email (they can be registered again),
then destroys the user's data key. The events stay; their personal fields can never
be read again, and every reader shows them as "[erased]". The user id and what is not
personal (status, grants, tokens) stay. Idempotent: run it again if it failed
half-way. Works whether or not keyhold serve is running; it then brings the read
tables up to date, waiting at most --wait (a running server does so too).`,
		Example: "  keyhold privacy erase --principal 01m8bwn9bmf8bvrrbfke65f19r",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !events.ValidToken(principal) {
				return refusal(&commands.Error{Kind: commands.ErrInvalid, Field: "principal", Message: "must be a user id"})
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
			res, err := cmds.ErasePersonalData.Handle(cmd.Context(), commands.ErasePersonalData{Meta: commands.Meta{Caller: auth.System()}, PrincipalID: principal})
			if err != nil {
				return refusal(err)
			}
			p := res.Erased
			if _, err := khttp.NewIdempotency(e.db.SQL()).Redact(cmd.Context(), p.Username, p.Email, p.FirstName, p.LastName, p.DisplayName); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "keyhold: personal data of %s erased, but replayable responses holding it could not be scrubbed (%v); they expire within 24 hours\n", principal, err)
			}
			if err := json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"principal_id": res.PrincipalID, "erased": true}); err != nil {
				return err
			}
			// The read tables still show the plaintext until the erase is
			// applied: apply it now rather than wait for a server.
			ctx, cancel := context.WithTimeout(cmd.Context(), wait)
			defer cancel()
			err = runner.Prepare(ctx)
			if err == nil {
				err = runner.CatchUp(ctx)
			}
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "keyhold: personal data of %s erased, but the read tables are not up to date yet (%v); keyhold serve brings them up to date\n", principal, err)
			}
			return nil
		},
	}
	erase.Flags().StringVar(&principal, "principal", "", "the user id (required)")
	erase.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for the read tables to show the erase")
	_ = erase.MarkFlagRequired("principal")
	cmd.AddCommand(cfg.use(erase, tableFlags...))
	return cmd
}
