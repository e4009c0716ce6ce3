package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type config struct {
	httpAddr       string
	dataDir        string
	databaseURL    string
	natsURL        string
	natsListen     string
	streamReplicas int
	logLevel       string
	waitTimeout    time.Duration
	// flagGiven tells whether a flag was given on the command line; nil
	// for a config built in code.
	flagGiven func(name string) bool
	// envErrs are the environment values that did not parse, in the order
	// bound; validate reports those whose flag was not given.
	envErrs []envErr
}

// envErr is an environment value that did not parse, and the flag it is
// the default of.
type envErr struct {
	flag, msg string
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func (c *config) envInt(flag, name string, def int) int {
	if v, ok := os.LookupEnv(name); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			c.envErrs = append(c.envErrs, envErr{flag, fmt.Sprintf("%s=%q is not a whole number such as %d", name, v, def)})
			return def
		}
		return n
	}
	return def
}

func (c *config) envDuration(flag, name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(name); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			c.envErrs = append(c.envErrs, envErr{flag, fmt.Sprintf("%s=%q is not a duration such as %s", name, v, def)})
			return def
		}
		return d
	}
	return def
}

// bind registers the flags every command shares; each defaults to its
// environment variable, then to the built-in default. A flag given on the
// command line wins, and its environment variable is then ignored, even
// when it does not parse.
func (c *config) bind(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	c.flagGiven = f.Changed
	f.StringVar(&c.httpAddr, "http-addr", envOr("KEYHOLD_HTTP_ADDR", "127.0.0.1:8080"), "HTTP listen address (KEYHOLD_HTTP_ADDR)")
	f.StringVar(&c.dataDir, "data-dir", envOr("KEYHOLD_DATA_DIR", "./data"), "data directory for the embedded NATS store and a private Postgres (KEYHOLD_DATA_DIR)")
	f.StringVar(&c.databaseURL, "database-url", envOr("KEYHOLD_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/keyhold?sslmode=disable"),
		"Postgres URL; the database is created if missing (KEYHOLD_DATABASE_URL)")
	f.StringVar(&c.natsURL, "nats-url", envOr("KEYHOLD_NATS_URL", ""), "external NATS URL; empty embeds nats-server with JetStream under the data dir (KEYHOLD_NATS_URL)")
	f.StringVar(&c.natsListen, "nats-listen", envOr("KEYHOLD_NATS_LISTEN", "127.0.0.1:14222"), "client address of the embedded NATS server (KEYHOLD_NATS_LISTEN)")
	f.IntVar(&c.streamReplicas, "stream-replicas", c.envInt("stream-replicas", "KEYHOLD_STREAM_REPLICAS", 1), "replicas of the event stream: 1, or 3 on a NATS cluster (KEYHOLD_STREAM_REPLICAS)")
	f.StringVar(&c.logLevel, "log-level", envOr("KEYHOLD_LOG_LEVEL", "info"), "debug, info, warn or error (KEYHOLD_LOG_LEVEL)")
	f.DurationVar(&c.waitTimeout, "read-wait", c.envDuration("read-wait", "KEYHOLD_READ_WAIT", 2*time.Second), "how long a write waits for the read side before answering (KEYHOLD_READ_WAIT)")
}

func (c *config) validate() error {
	var bad []string
	for _, e := range c.envErrs {
		// Subcommands share the root's persistent flag values, so this
		// sees a flag given after any subcommand too.
		if c.flagGiven != nil && c.flagGiven(e.flag) {
			continue
		}
		bad = append(bad, fmt.Sprintf("%s (correct or unset it, or give --%s)", e.msg, e.flag))
	}
	if len(bad) > 0 {
		return fmt.Errorf("environment: %s", strings.Join(bad, "; "))
	}
	if c.streamReplicas < 1 || c.streamReplicas > 5 {
		return fmt.Errorf("--stream-replicas must be between 1 and 5, not %d", c.streamReplicas)
	}
	if c.waitTimeout <= 0 || c.waitTimeout > time.Minute {
		return fmt.Errorf("--read-wait must be between 1ms and 1m, not %s", c.waitTimeout)
	}
	if c.dataDir == "" {
		return fmt.Errorf("--data-dir must not be empty")
	}
	return nil
}

func (c *config) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})), nil
}
