package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/keyhold/keyhold/projections"
)

func newProjections(cfg *config) *cobra.Command {
	cmd := group(&cobra.Command{Use: "projections", Short: "Inspect and rebuild the read tables"})
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show each projector's checkpoint, lag and failed events",
		Example: `  keyhold projections status
  keyhold projections status --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, runner, err := openRunner(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer e.close()
			if err := projections.Migrate(cmd.Context(), e.db.SQL()); err != nil {
				return err
			}
			st, err := runner.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return jsonLines(cmd.OutOrStdout(), st)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PROJECTOR\tGENERATION\tVERSION\tCHECKPOINT\tHEAD\tLAG\tFAILURES\tLAST FAILURE")
			for _, s := range st {
				last := "-"
				if s.LastFailure != nil {
					last = *s.LastFailure
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Generation, s.Version, s.Checkpoint, s.Head, s.Lag, s.Failures, last)
			}
			if len(st) == 0 {
				fmt.Fprintln(tw, "(no projector has run yet: start keyhold serve)")
			}
			return tw.Flush()
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per projector")
	rebuild := &cobra.Command{
		Use:   "rebuild",
		Short: "Rebuild every read table from sequence 0",
		Long: `Rebuild every read table from the start of the log into a new generation, then switch
reads over to it in one transaction. A running server keeps serving reads and applying
new events meanwhile. Prints progress as it goes.`,
		Example: "  keyhold projections rebuild --data-dir /var/lib/keyhold",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, runner, err := openRunner(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer e.close()
			tuneGC()
			out := cmd.OutOrStdout()
			return runner.Rebuild(cmd.Context(), func(p projections.RebuildProgress) {
				rate := 0.0
				if p.Elapsed > 0 {
					rate = float64(p.Events) / p.Elapsed.Seconds()
				}
				if p.Done {
					fmt.Fprintf(out, "%s: rebuilt %d events up to sequence %d in %s (%.0f events/s); reads switched over\n", p.Projector, p.Events, p.Applied, p.Elapsed.Round(1e6), rate)
					return
				}
				pct := 100.0
				if p.Head > 0 {
					pct = 100 * float64(p.Applied) / float64(p.Head)
				}
				fmt.Fprintf(out, "%s: %d/%d (%.1f%%), %.0f events/s\n", p.Projector, p.Applied, p.Head, pct, rate)
			})
		},
	}
	cmd.AddCommand(cfg.use(status, tableFlags...), cfg.use(rebuild, tableFlags...))
	return cmd
}

// jsonLines writes items as JSON, one per line, for --json output that
// scripts read a line at a time.
func jsonLines[T any](w io.Writer, items []T) error {
	enc := json.NewEncoder(w)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return err
		}
	}
	return nil
}
