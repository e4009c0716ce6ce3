package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/database"
	"github.com/keyhold/keyhold/effects"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/http/oauth2"
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
	// issuer is the iss claim of access tokens (see issuerHelp).
	issuer string
	// trustedProxies lists the reverse proxies whose X-Forwarded-For is believed.
	trustedProxies string
	// keyReload is how often serve reloads the signing keys; zero means
	// auth.KeyReload. Not a flag: tests shorten it to see a rotation
	// take effect without waiting a minute.
	keyReload time.Duration
	// keyFile and previousKeyFile hold key-encryption keys (see keks).
	keyFile         string
	previousKeyFile string
	// mail holds the settings of outgoing mail (see mailconfig.go).
	mail mailConfig
	// reactions, when set, adds reactions to those serve runs; nil for
	// the command line. Tests use it to run reactions of their own.
	reactions func(reactionDeps) []effects.Reaction
	// kek and previousKEKs are read once by keks.
	kek          *auth.KEK
	previousKEKs []auth.KEK
	// flags holds every shared flag; use adds some of them to a command.
	flags *pflag.FlagSet
	// flagGiven tells whether a flag was given on the command line; nil
	// for a config built in code.
	flagGiven func(name string) bool
	// uses tells whether the running command takes a flag; nil for a
	// config built in code, which uses them all.
	uses func(name string) bool
	// databaseURLInEnv is set when KEYHOLD_DATABASE_URL was.
	databaseURLInEnv bool
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

// bind defines the flags commands share; each defaults to its
// environment variable, then to the built-in default. A flag given on the
// command line wins, and its environment variable is then ignored, even
// when it does not parse. use adds them to the commands that take them.
func (c *config) bind() {
	f := pflag.NewFlagSet("keyhold", pflag.ContinueOnError)
	c.flags = f
	c.flagGiven = f.Changed
	_, c.databaseURLInEnv = os.LookupEnv("KEYHOLD_DATABASE_URL")
	f.StringVar(&c.httpAddr, "http-addr", envOr("KEYHOLD_HTTP_ADDR", "127.0.0.1:8080"), "HTTP listen address (KEYHOLD_HTTP_ADDR)")
	f.StringVar(&c.dataDir, "data-dir", envOr("KEYHOLD_DATA_DIR", "./data"), "data directory for the embedded NATS store and a private Postgres (KEYHOLD_DATA_DIR)")
	f.StringVar(&c.databaseURL, "database-url", envOr("KEYHOLD_DATABASE_URL", database.DefaultURL),
		"Postgres URL; the database is created if missing; only the default falls back to a private cluster (KEYHOLD_DATABASE_URL)")
	f.StringVar(&c.natsURL, "nats-url", envOr("KEYHOLD_NATS_URL", ""), "external NATS URL; empty embeds nats-server with JetStream under the data dir (KEYHOLD_NATS_URL)")
	f.StringVar(&c.natsListen, "nats-listen", envOr("KEYHOLD_NATS_LISTEN", "127.0.0.1:14222"), "client address of the embedded NATS server (KEYHOLD_NATS_LISTEN)")
	f.IntVar(&c.streamReplicas, "stream-replicas", c.envInt("stream-replicas", "KEYHOLD_STREAM_REPLICAS", 1), "replicas of the event stream: 1, or 3 on a NATS cluster (KEYHOLD_STREAM_REPLICAS)")
	f.StringVar(&c.logLevel, "log-level", envOr("KEYHOLD_LOG_LEVEL", "info"), "debug, info, warn or error (KEYHOLD_LOG_LEVEL)")
	f.StringVar(&c.keyFile, "key-file", envOr("KEYHOLD_KEY_FILE", ""),
		"file holding the key-encryption key of the token signing keys; empty: <data-dir>/keyhold.key, made if missing; KEYHOLD_KEY may hold the key itself (KEYHOLD_KEY_FILE)")
	f.StringVar(&c.previousKeyFile, "previous-key-file", envOr("KEYHOLD_PREVIOUS_KEY_FILE", ""),
		"the key-encryption key being rotated out: signing keys it wraps are rewrapped with the current one (KEYHOLD_PREVIOUS_KEY_FILE)")
	f.StringVar(&c.issuer, "issuer", envOr("KEYHOLD_ISSUER", auth.DefaultIssuer), issuerHelp)
	f.StringVar(&c.trustedProxies, "trusted-proxies", envOr("KEYHOLD_TRUSTED_PROXIES", ""),
		"comma-separated addresses or CIDR prefixes of reverse proxies whose X-Forwarded-For names the client, for throttling failed sign-ins per address; empty trusts none (KEYHOLD_TRUSTED_PROXIES)")
	c.bindMail(f)
	f.DurationVar(&c.waitTimeout, "read-wait", c.envDuration("read-wait", "KEYHOLD_READ_WAIT", 2*time.Second), "how long a write waits for the read side before answering (KEYHOLD_READ_WAIT)")
}

// issuerHelp explains --issuer. Its default is not a URL because there is
// no public-URL setting to take it from, and because changing the default
// would break every deployment that upgrades: tokens carry their issuer
// and are verified against it.
const issuerHelp = `issuer of access tokens (their iss claim) and of the OAuth2 metadata at ` +
	`/.well-known/oauth-authorization-server: set it to the server's public URL, such as https://iam.example.com, ` +
	`the same on every replica. The default stays "keyhold" because changing the issuer invalidates the tokens already ` +
	`issued (until they expire) and breaks verifiers configured to expect it (KEYHOLD_ISSUER)`

// The shared flags each kind of command takes.
var (
	// serveFlags: serve runs everything.
	serveFlags = []string{"http-addr", "data-dir", "database-url", "nats-url", "nats-listen", "stream-replicas", "log-level", "read-wait", "key-file", "previous-key-file", "issuer", "trusted-proxies",
		"smtp-url", "smtp-password-file", "smtp-ca-file", "smtp-starttls", "smtp-auth", "mail-from", "public-url"}
	// logFlags: commands that only read or append to the event log.
	logFlags = []string{"data-dir", "nats-url", "nats-listen", "stream-replicas", "log-level"}
	// tableFlags: commands that also use the database: read tables, or the
	// data keys of users' personal data, which the key-encryption key wraps.
	tableFlags = append(slices.Clone(logFlags), "database-url", "key-file", "previous-key-file")
)

// use adds the named shared flags to cmd. Flags given before the
// subcommand's name (keyhold --data-dir d audit) are parsed by it too.
func (c *config) use(cmd *cobra.Command, names ...string) *cobra.Command {
	for _, n := range names {
		f := c.flags.Lookup(n)
		if f == nil {
			panic("keyhold: no shared flag " + n)
		}
		cmd.Flags().AddFlag(f)
	}
	return cmd
}

// running records which shared flags the command about to run takes, for
// validate.
func (c *config) running(cmd *cobra.Command) {
	c.uses = func(name string) bool { return cmd.Flags().Lookup(name) != nil }
}

// defaultDatabase reports whether the database URL is the built-in
// default, given neither as a flag nor in the environment: only then may a
// private cluster stand in for a server that does not answer. A URL the
// operator chose that cannot be reached is an error, not a reason to keep
// data somewhere else.
func (c *config) defaultDatabase() bool {
	return c.flagGiven != nil && !c.flagGiven("database-url") && !c.databaseURLInEnv
}

func (c *config) validate() error {
	var bad []string
	for _, e := range c.envErrs {
		// A command that does not take the flag does not read the
		// variable either.
		if c.flagGiven != nil && c.flagGiven(e.flag) || c.uses != nil && !c.uses(e.flag) {
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
	if _, err := khttp.ParseProxies(c.trustedProxies); err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	if err := c.validateMail(); err != nil {
		return err
	}
	// A config built in code may leave the issuer empty (tokenIssuer).
	if (c.uses == nil || c.uses("issuer")) && (c.issuer != "" || c.flagGiven != nil) {
		if err := validIssuer(c.issuer); err != nil {
			return err
		}
	}
	return nil
}

// tokenIssuer is --issuer, or auth.DefaultIssuer for a config built in
// code that sets none.
func (c *config) tokenIssuer() string {
	if c.issuer == "" {
		return auth.DefaultIssuer
	}
	return c.issuer
}

// validIssuer checks --issuer as the keys and the metadata endpoint will:
// claim text, and an RFC 8414 issuer URL if written as a URL.
func validIssuer(iss string) error {
	if _, err := oauth2.IssuerURL(iss); err != nil && !errors.Is(err, oauth2.ErrNotURL) {
		return fmt.Errorf("--issuer: %w", err)
	}
	if err := auth.CheckIssuer(iss); err != nil {
		return fmt.Errorf("--issuer: %w", err)
	}
	return nil
}

// keks returns the key-encryption key that wraps the signing keys, and
// the one being rotated out, if any. The key comes from KEYHOLD_KEY (the
// key itself, base64), else from --key-file, else from
// <data-dir>/keyhold.key, which is made (mode 0600) when missing; a key
// file named explicitly must exist. Both files must be private to their
// owner. Read once; later calls return the same keys.
func (c *config) keks() (auth.KEK, []auth.KEK, error) {
	if c.kek != nil {
		return *c.kek, c.previousKEKs, nil
	}
	var kek auth.KEK
	var err error
	inline, hasInline := os.LookupEnv("KEYHOLD_KEY")
	switch {
	case hasInline && c.keyFile != "":
		return auth.KEK{}, nil, errors.New("KEYHOLD_KEY and --key-file (or KEYHOLD_KEY_FILE) both name a key-encryption key: give one")
	case hasInline:
		if kek, err = auth.ParseKEK([]byte(inline)); err != nil {
			return auth.KEK{}, nil, fmt.Errorf("KEYHOLD_KEY: %w", err)
		}
	case c.keyFile != "":
		if kek, err = auth.LoadKEKFile(c.keyFile, false); err != nil {
			return auth.KEK{}, nil, fmt.Errorf("--key-file: %w", err)
		}
	default:
		if err := os.MkdirAll(c.dataDir, 0o755); err != nil {
			return auth.KEK{}, nil, fmt.Errorf("create %s: %w", c.dataDir, err)
		}
		if kek, err = auth.LoadKEKFile(filepath.Join(c.dataDir, "keyhold.key"), true); err != nil {
			return auth.KEK{}, nil, fmt.Errorf("key-encryption key: %w", err)
		}
	}
	var previous []auth.KEK
	if c.previousKeyFile != "" {
		p, err := auth.LoadKEKFile(c.previousKeyFile, false)
		if err != nil {
			return auth.KEK{}, nil, fmt.Errorf("--previous-key-file: %w", err)
		}
		previous = append(previous, p)
	}
	c.kek, c.previousKEKs = &kek, previous
	return kek, previous, nil
}

func (c *config) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})), nil
}
