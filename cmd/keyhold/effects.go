package main

import (
	"context"
	"fmt"
	"log/slog"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/keyhold/keyhold/effects"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/mail"
	"github.com/keyhold/keyhold/privacy"
)

// reactionDeps is what serve's reactions are built from.
type reactionDeps struct {
	// Mail sends mail: through SMTP, or into the outbox.
	Mail mail.Sender
	// Links builds links to Keyhold's public URL.
	Links mail.Links
	// Personal decrypts the personal data (addresses) of events.
	Personal *privacy.Store
	Log      *slog.Logger
}

// reactions returns the reactions serve runs after events are committed.
func reactions(d reactionDeps) ([]effects.Reaction, error) {
	invitations, err := mail.NewInvitation(d.Mail, d.Personal, d.Links)
	if err != nil {
		return nil, err
	}
	return []effects.Reaction{invitations}, nil
}

// effectsRunner builds the runner of serve's reactions (and those the
// config adds) over this env, and prepares it: a reaction new to the log
// starts at its end, before the server takes any write.
func (e *env) effectsRunner(ctx context.Context, opts ...effects.Option) (*effects.Runner, error) {
	sender, desc, err := e.cfg.mailSender()
	if err != nil {
		return nil, err
	}
	links, err := e.cfg.links()
	if err != nil {
		return nil, fmt.Errorf("--public-url: %w", err)
	}
	personal, err := e.personalData(ctx)
	if err != nil {
		return nil, err
	}
	d := reactionDeps{Mail: sender, Links: links, Personal: personal, Log: e.log}
	rs, err := reactions(d)
	if err != nil {
		return nil, err
	}
	if e.cfg.reactions != nil {
		rs = append(rs, e.cfg.reactions(d)...)
	}
	e.log.Info("mail", "sender", desc, "public_url", links.Base(), "reactions", len(rs))
	r, err := effects.NewRunner(e.db.SQL(), e.store, rs, append([]effects.Option{effects.WithLogger(e.log)}, opts...)...)
	if err != nil {
		return nil, err
	}
	if err := r.Prepare(ctx); err != nil {
		return nil, fmt.Errorf("prepare reactions: %w", err)
	}
	return r, nil
}

func newEffects(cfg *config) *cobra.Command {
	cmd := group(&cobra.Command{Use: "effects", Short: "Inspect the reactions to events (mail), retry or dismiss failed ones"})
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show each reaction's position, lag, retries and failed events",
		Long: `Show, for each reaction that has run against this log (such as the mail it sends): the
sequence it has read up to, how far that is behind the log, how many events it performed,
how many wait for a retry, how many failed (a permanent refusal, or every attempt spent)
and how many have an unknown outcome (the process stopped during the attempt; such an
event is never performed again), with the newest error.`,
		Example: `  keyhold effects status
  keyhold effects status --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, r, err := openEffects(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer e.close()
			st, err := r.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return jsonLines(cmd.OutOrStdout(), st)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REACTION\tPOSITION\tHEAD\tLAG\tDONE\tRETRYING\tFAILED\tUNKNOWN\tLAST ERROR")
			for _, s := range st {
				last := "-"
				if s.LastError != nil {
					last = *s.LastError
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Position, s.Head, s.Lag, s.Done, s.Retrying, s.Failed, s.Unknown, last)
			}
			if len(st) == 0 {
				fmt.Fprintln(tw, "(no reaction has run yet: keyhold serve runs them)")
			}
			return tw.Flush()
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per reaction")
	cmd.AddCommand(cfg.use(status, tableFlags...),
		resolveEffects(cfg, "retry", "Attempt a reaction's failed or unknown-outcome events again",
			`Give the failed and unknown-outcome events of REACTION (only the one at --seq when given)
a fresh set of attempts, due at once; the server leading the reaction takes them up within
seconds. An unknown outcome may already have been performed (its mail may have gone out):
retrying it may perform it twice, which is why Keyhold never does so by itself.`,
			(*effects.Runner).Retry),
		resolveEffects(cfg, "dismiss", "Record a reaction's failed or unknown-outcome events as handled",
			`Record the failed and unknown-outcome events of REACTION (only the one at --seq when
given) as handled without performing them, for events taken care of by hand or not needed any
more. They stop counting as failed and stop degrading /readyz.`,
			(*effects.Runner).Dismiss))
	return cmd
}

// openEffects opens the env and a runner of no reaction over it, for the
// commands that read or resolve the reactions' records (their tables
// migrated first); close the env when done.
func openEffects(ctx context.Context, cfg *config) (*env, *effects.Runner, error) {
	e, err := open(ctx, cfg, false)
	if err != nil {
		return nil, nil, err
	}
	r, err := effects.NewRunner(e.db.SQL(), e.store, nil)
	if err == nil {
		err = effects.Migrate(ctx, e.db.SQL())
	}
	if err != nil {
		e.close()
		return nil, nil, err
	}
	return e, r, nil
}

// resolveEffects is effects retry or effects dismiss: resolve applied to
// one reaction's failed and unknown-outcome events.
func resolveEffects(cfg *config, use, short, long string, resolve func(*effects.Runner, context.Context, string, uint64) (int64, error)) *cobra.Command {
	var seq uint64
	cmd := &cobra.Command{
		Use:   use + " REACTION",
		Short: short,
		Long:  long,
		Example: fmt.Sprintf(`  keyhold effects %[1]s mail.invitation
  keyhold effects %[1]s mail.invitation --seq 4812`, use),
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.ExactArgs(1)(cmd, args); err != nil {
				return &usageError{err}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			e, r, err := openEffects(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer e.close()
			n, err := resolve(r, cmd.Context(), args[0], seq)
			if err != nil {
				return err
			}
			verb := map[string]string{"retry": "put back for a retry", "dismiss": "recorded as handled"}[use]
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d event(s) %s\n", args[0], n, verb)
			return nil
		},
	}
	cmd.Flags().Uint64Var(&seq, "seq", 0, "only the event at this log sequence (keyhold effects status shows the newest)")
	return cfg.use(cmd, tableFlags...)
}

// effectsCheck is the readiness check of the reactions: degraded, not
// failed, when events failed, have an unknown outcome or wait for retries
// beyond the threshold. A mail that cannot go out must not take the
// replicas out of service.
func (s *server) effectsCheck(ctx context.Context) error {
	msg, err := s.effects.Degraded(ctx)
	if err != nil {
		return err
	}
	if msg != "" {
		return khttp.Degraded(msg)
	}
	return nil
}
