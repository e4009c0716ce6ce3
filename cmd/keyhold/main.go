// Command keyhold runs the Keyhold IAM server and its operator tools.
// This package only wires: configuration, the CLI, and the construction
// of the packages that hold the rules.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitFailed = 1 // the command ran and failed
	exitUsage  = 2 // the command line was wrong; nothing was started
)

// run executes the command line args and returns the exit code. A usage
// error (unknown command or flag, missing or bad argument) prints the
// message and the command's usage on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "keyhold:", err)
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprint(stderr, "\n"+cmd.UsageString())
		return exitUsage
	}
	return exitFailed
}

// usageError is a command line that could not be run as written.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func newRoot() *cobra.Command {
	cfg := &config{}
	cfg.bind()
	root := &cobra.Command{
		Use:   "keyhold",
		Short: "Keyhold: an event-sourced IAM server",
		Long: `Keyhold manages identities (service accounts, credentials, users, roles) through
REST APIs. Every change is an event in a NATS JetStream log; Postgres read tables are
projections of it; the audit trail is the log itself.

Each command takes the connection flags it uses; each has an environment variable.`,
		Example: `  keyhold serve
  keyhold bootstrap --tenant acme --username admin --email admin@acme.example`,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			cfg.running(cmd)
			// Cobra checks required flags only after this hook; checking
			// here marks a missing one as a usage error.
			if err := cmd.ValidateRequiredFlags(); err != nil {
				return &usageError{err}
			}
			return nil
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	group(root)
	root.AddCommand(newServe(cfg), newBootstrap(cfg), newAudit(cfg), newProjections(cfg), newTokens(cfg), newUsers(cfg), newPrivacy(cfg), newRoles(cfg), newBindings(cfg), newAuthz(cfg), newInstance(cfg), newEffects(cfg), newMail(cfg), newBench(cfg), newVersion())
	return root
}

// group makes cmd a command that only holds subcommands: on its own it
// prints its help, and an unknown subcommand is a usage error.
func group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += " (did you mean " + strings.Join(s, " or ") + "?)"
		}
		return &usageError{errors.New(msg)}
	}
	cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	return cmd
}

// noArgs refuses positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return &usageError{err}
	}
	return nil
}
