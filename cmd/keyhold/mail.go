package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/keyhold/keyhold/mail"
)

func newMail(cfg *config) *cobra.Command {
	cmd := group(&cobra.Command{Use: "mail", Short: "Read the development outbox",
		Long: `Without --smtp-url, keyhold serve writes each mail it sends to <data-dir>/outbox as an
.eml file named after the message's id. These commands read it.`})
	var asJSON bool
	var limit, offset int
	list := &cobra.Command{
		Use:   "list",
		Short: "List the messages of the outbox, newest first",
		Example: `  keyhold mail list
  keyhold mail list --json --limit 10 --offset 10`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.validate(); err != nil {
				return err
			}
			if limit < 1 || offset < 0 {
				return &usageError{errors.New("--limit must be at least 1 and --offset at least 0")}
			}
			all, err := mail.OpenOutbox(cfg.outboxDir()).List()
			if err != nil {
				return err
			}
			page := all[min(offset, len(all)):min(offset+limit, len(all))]
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				for _, e := range page {
					if err := enc.Encode(e); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tDATE\tTO\tSUBJECT\tHTML")
			for _, e := range page {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", e.ID, e.Date.UTC().Format("2006-01-02 15:04:05Z"), strings.Join(e.To, ", "), e.Subject, e.HTML)
			}
			if len(all) == 0 {
				fmt.Fprintf(tw, "(the outbox %s holds no message)\n", cfg.outboxDir())
			} else if rest := len(all) - offset - len(page); rest > 0 {
				fmt.Fprintf(tw, "(%d more: --offset %d)\n", rest, offset+len(page))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per message")
	list.Flags().IntVar(&limit, "limit", 50, "show at most this many messages")
	list.Flags().IntVar(&offset, "offset", 0, "skip this many of the newest messages first")
	var textOnly bool
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Print a message of the outbox as stored (.eml), or its text",
		Example: `  keyhold mail show 01jb3x7k2m9q8r7t6y5w4v3u2s
  keyhold mail show 01jb3x7k2m9q8r7t6y5w4v3u2s --text`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.ExactArgs(1)(cmd, args); err != nil {
				return &usageError{err}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cfg.validate(); err != nil {
				return err
			}
			raw, err := mail.OpenOutbox(cfg.outboxDir()).Read(args[0])
			if errors.Is(err, mail.ErrNotFound) {
				return fmt.Errorf("%w in %s (keyhold mail list shows the ids)", err, cfg.outboxDir())
			}
			if err != nil {
				return err
			}
			if textOnly {
				text, err := mail.TextPart(raw)
				if err != nil {
					return fmt.Errorf("message %s: %w", args[0], err)
				}
				_, err = fmt.Fprint(cmd.OutOrStdout(), text)
				return err
			}
			_, err = cmd.OutOrStdout().Write(raw)
			return err
		},
	}
	show.Flags().BoolVar(&textOnly, "text", false, "print only the decoded text part")
	cmd.AddCommand(cfg.use(list, "data-dir", "log-level"), cfg.use(show, "data-dir", "log-level"))
	return cmd
}
