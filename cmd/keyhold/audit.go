package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/query"
)

func newAudit(cfg *config) *cobra.Command {
	var f query.AuditFilter
	var since, until string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit [flags]",
		Short: "Print events from the log, oldest first",
		Long: `Print events straight from the event log, oldest first (newest last). Filters combine.
--since and --until take an RFC 3339 time (2026-01-31T12:00:00Z) or a duration back from
now (90m, 24h). --json prints one JSON envelope per line.`,
		Example: `  keyhold audit --tenant acme --since 24h
  keyhold audit --aggregate 01m8bwn9bmf8bvrrbfke65f19r --json
  keyhold audit --type iam.service_account.created --since 2026-01-31T12:00:00Z`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := query.CheckAuditType(f.Type); err != nil {
				return fmt.Errorf("--type: %w", err)
			}
			var err error
			if f.Since, err = parseWhen("--since", since); err != nil {
				return err
			}
			if f.Until, err = parseWhen("--until", until); err != nil {
				return err
			}
			e, err := open(cmd.Context(), cfg, false)
			if err != nil {
				return err
			}
			defer e.close()
			personal, err := e.personalData(cmd.Context())
			if err != nil {
				return err
			}
			f.Limit = -1
			evs, _, err := query.NewAudit(e.store, nil, nil, query.ShowPersonal(personal)).Events(cmd.Context(), auth.System(), f)
			if err != nil {
				return err
			}
			return printEvents(cmd.OutOrStdout(), evs, asJSON)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Tenant, "tenant", "", `only this tenant ("_" for instance-level aggregates)`)
	fl.StringVar(&f.Aggregate, "aggregate", "", "only this aggregate id")
	fl.StringVar(&f.Actor, "actor", "", "only events caused by this principal id")
	fl.StringVar(&f.Type, "type", "", "only this event type, e.g. iam.service_account.created")
	fl.StringVar(&since, "since", "", "only events at or after this time")
	fl.StringVar(&until, "until", "", "only events at or before this time")
	fl.BoolVar(&asJSON, "json", false, "print one JSON envelope per line")
	return cfg.use(cmd, tableFlags...)
}

func parseWhen(flag, s string) (*time.Time, error) {
	t, err := query.ParseAuditTime(s, time.Now())
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", flag, s, err)
	}
	return t, nil
}

func printEvents(w io.Writer, evs []events.Envelope, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, e := range evs {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	for _, e := range evs {
		line := fmt.Sprintf("%s  #%-6d %-8s %-40s %s/%s  actor=%s:%s", e.Time.UTC().Format(time.RFC3339), e.Sequence, e.Tenant, e.Type, e.Aggregate, e.Subject, e.Actor.Kind, e.Actor.ID)
		if e.RequestID != "" {
			line += "  request=" + e.RequestID
		}
		if _, err := fmt.Fprintln(w, strings.TrimRight(line, " ")); err != nil {
			return err
		}
	}
	return nil
}
