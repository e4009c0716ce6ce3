// Command keyhold runs the Keyhold IAM server and its operator tools.
// This package only wires: configuration, the CLI, and the construction
// of the packages that hold the rules.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "keyhold:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	cfg := &config{}
	root := &cobra.Command{
		Use:   "keyhold",
		Short: "Keyhold: an event-sourced IAM server",
		Long: `Keyhold manages identities (service accounts, credentials, users, roles) through
REST APIs. Every change is an event in a NATS JetStream log; Postgres read tables are
projections of it; the audit trail is the log itself.

Every command takes the same connection flags; each has an environment variable.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cfg.bind(root)
	root.AddCommand(newServe(cfg), newBootstrap(cfg), newAudit(cfg), newProjections(cfg), newTokens(cfg), newBench(cfg))
	return root
}
