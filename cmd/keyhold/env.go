package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/database"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/privacy"
	"github.com/keyhold/keyhold/projections"
)

// env is the infrastructure every command needs: the event log and the
// database.
type env struct {
	cfg      *config
	log      *slog.Logger
	embedded *events.Embedded
	nc       *nats.Conn
	store    *events.Store
	db       *database.DB
	personal *privacy.Store // see personalData
}

// open connects to NATS and Postgres. serving decides how an embedded NATS
// is used: serve starts it on --nats-listen; other commands join the
// server holding the data dir's store (whatever --nats-listen says), or
// else one answering at --nats-listen, and only start their own embedded
// server when there is none.
func open(ctx context.Context, cfg *config, serving bool) (*env, error) {
	log, err := openLogger(cfg)
	if err != nil {
		return nil, err
	}
	return openWith(ctx, cfg, serving, log)
}

// openLog is open for a command that uses only the event log: it connects
// no database, so it cannot read encrypted personal data.
func openLog(ctx context.Context, cfg *config) (*env, error) {
	log, err := openLogger(cfg)
	if err != nil {
		return nil, err
	}
	return openEnv(ctx, cfg, false, false, log)
}

func openLogger(cfg *config) (*slog.Logger, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg.logger()
}

// openWith is open with a logger of the caller's choosing.
func openWith(ctx context.Context, cfg *config, serving bool, log *slog.Logger) (*env, error) {
	return openEnv(ctx, cfg, serving, true, log)
}

func openEnv(ctx context.Context, cfg *config, serving, withDB bool, log *slog.Logger) (*env, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var err error
	e := &env{cfg: cfg, log: log}
	ok := false
	defer func() {
		if !ok {
			e.close()
		}
	}()
	if err := e.connectNATS(serving); err != nil {
		return nil, err
	}
	e.store, err = events.Open(ctx, e.nc, events.WithReplicas(cfg.streamReplicas))
	if err != nil {
		return nil, err
	}
	if withDB {
		if e.db, err = openDatabase(ctx, cfg, log); err != nil {
			return nil, err
		}
	}
	ok = true
	return e, nil
}

// openDatabase opens the database; a private cluster may stand in only for
// the default URL.
func openDatabase(ctx context.Context, cfg *config, log *slog.Logger) (*database.DB, error) {
	opts := []database.Option{database.WithLogger(log)}
	if cfg.defaultDatabase() {
		opts = append(opts, database.WithPrivateCluster(cfg.dataDir))
	}
	db, err := database.Open(ctx, cfg.databaseURL, opts...)
	if errors.Is(err, database.ErrUnreachable) && !cfg.defaultDatabase() {
		return nil, fmt.Errorf("%w (keyhold runs a private Postgres cluster only in place of the default database, not for a URL given with --database-url or KEYHOLD_DATABASE_URL)", err)
	}
	return db, err
}

// storeWait bounds how long a command waits for the server holding the
// data dir's store to answer (it may be starting or stopping).
const storeWait = 15 * time.Second

func (e *env) connectNATS(serving bool) error {
	var err error
	if e.cfg.natsURL != "" {
		e.nc, err = nats.Connect(e.cfg.natsURL, nats.Name("keyhold"), nats.MaxReconnects(-1))
		if err != nil {
			return natsConnectError(e.cfg.natsURL, err)
		}
		return nil
	}
	if serving {
		return e.startNATS(e.cfg.natsListen)
	}
	store := filepath.Join(e.cfg.dataDir, "nats")
	deadline := time.Now().Add(storeWait)
	for {
		url, held, err := events.RunningEmbedded(store)
		if err != nil {
			return err
		}
		if held {
			// Two servers on one store lose each other's writes: join
			// the one holding it.
			if url != "" {
				if nc, err := nats.Connect(url, nats.Name("keyhold-cli"), nats.Timeout(time.Second)); err == nil {
					e.nc = nc
					e.log.Debug("joined the NATS server holding the data dir", "url", url)
					return nil
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the NATS store in %s is held by another keyhold process, whose NATS server (%s) does not answer; wait for it to finish starting or stopping, then try again", store, orUnknown(url))
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		// No server holds this data dir; one answering at --nats-listen
		// stores elsewhere and may be the one meant.
		if nc, err := nats.Connect("nats://"+e.cfg.natsListen, nats.Name("keyhold-cli"), nats.Timeout(500*time.Millisecond)); err == nil {
			e.nc = nc
			return nil
		}
		err = e.startNATS("127.0.0.1:0")
		if errors.Is(err, events.ErrStoreInUse) && time.Now().Before(deadline) {
			continue // a server took the store meanwhile: join it
		}
		return err
	}
}

// startNATS starts the embedded NATS server on the data dir's store.
func (e *env) startNATS(listen string) error {
	dir, err := makeNATSStore(e.cfg.dataDir)
	if err != nil {
		return err
	}
	e.embedded, err = events.StartEmbedded(dir, listen)
	var inUse *events.StoreInUseError
	if errors.As(err, &inUse) {
		return fmt.Errorf("data dir %s is in use by another keyhold process (its NATS server listens at %s): stop it, or give this one another --data-dir: %w", e.cfg.dataDir, orUnknown(inUse.URL), err)
	}
	if err != nil {
		return fmt.Errorf("start embedded NATS on %s: %w", listen, err)
	}
	e.log.Info("embedded NATS with JetStream started", "store", dir, "url", e.embedded.ClientURL())
	e.nc, err = e.embedded.Connect("keyhold")
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "address not yet known: it is starting"
	}
	return s
}

// makeNATSStore creates the data dir and the embedded NATS store in it, and
// returns the store's path. The data dir is enterable by others (0755): when
// keyhold runs as root, a private Postgres cluster under it runs as the
// "postgres" user, which must reach <dataDir>/postgres. The store holds the
// event log and stays private (0700).
func makeNATSStore(dataDir string) (string, error) {
	if _, err := os.Stat(dataDir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return "", fmt.Errorf("create %s: %w", dataDir, err)
		}
		// The umask may have taken the others' bits away again (root's is
		// 077 on some systems); a directory that existed before is left as
		// it is.
		if err := os.Chmod(dataDir, 0o755); err != nil {
			return "", fmt.Errorf("create %s: %w", dataDir, err)
		}
	}
	dir := filepath.Join(dataDir, "nats")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	return dir, nil
}

// natsConnectError reports a failed connection to --nats-url without the
// secrets the URL may hold.
func natsConnectError(natsURL string, err error) error {
	shown := redactNATSURL(natsURL)
	msg := err.Error()
	if shown != natsURL {
		var uerr *neturl.Error
		if errors.As(err, &uerr) {
			// url.Parse quotes the URL and the part it chokes on, which may
			// be the password itself.
			msg = "the URL does not parse"
		}
		for _, u := range strings.Split(natsURL, ",") {
			if u = strings.TrimSpace(u); u != "" {
				msg = strings.ReplaceAll(msg, u, redactNATSURL(u))
			}
		}
	}
	return &natsError{msg: fmt.Sprintf("connect to NATS at %s: %s", shown, msg), err: err}
}

// natsError is an error whose message has been cleaned of secrets; it
// still unwraps to the original error for errors.Is.
type natsError struct {
	msg string
	err error
}

func (e *natsError) Error() string { return e.msg }
func (e *natsError) Unwrap() error { return e.err }

// redactNATSURL hides the secrets of a NATS URL or comma-separated list of
// them, as --nats-url takes: the password of user:password@, and the token
// of a token-only TOKEN@. Hosts stay visible.
func redactNATSURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		rest := p
		if j := strings.Index(p, "://"); j >= 0 {
			rest = p[j+3:]
		}
		// A server URL has nothing after its host that may hold an '@', so
		// the last one ends the user info, even if a secret holds '/' or '#'.
		at := strings.LastIndex(rest, "@")
		if at < 0 {
			continue
		}
		userinfo := rest[:at]
		if c := strings.Index(userinfo, ":"); c >= 0 {
			userinfo = userinfo[:c] + ":xxxxx"
		} else {
			userinfo = "xxxxx" // a token
		}
		parts[i] = p[:len(p)-len(rest)] + userinfo + rest[at:]
	}
	return strings.Join(parts, ",")
}

func (e *env) close() {
	if e.nc != nil {
		_ = e.nc.Drain()
	}
	if e.embedded != nil {
		e.embedded.Shutdown()
	}
	if e.db != nil {
		_ = e.db.Close()
	}
}

// personalData returns the key store of users' personal data, opened
// once per env: it needs the database and the key-encryption key.
func (e *env) personalData(ctx context.Context) (*privacy.Store, error) {
	if e.personal != nil {
		return e.personal, nil
	}
	if e.db == nil {
		return nil, errors.New("personal data keys need the database")
	}
	kek, previous, err := e.cfg.keks()
	if err != nil {
		return nil, err
	}
	if e.personal, err = privacy.Open(ctx, e.db.SQL().DB, kek, previous...); err != nil {
		return nil, fmt.Errorf("personal data keys: %w", err)
	}
	return e.personal, nil
}

// commands builds the command handlers over this env, with its personal
// data keys.
func (e *env) commands(ctx context.Context, opts ...commands.Option) (*commands.Commands, error) {
	p, err := e.personalData(ctx)
	if err != nil {
		return nil, err
	}
	return commands.New(e.store, append([]commands.Option{commands.WithPersonalData(p)}, opts...)...)
}

// runner builds the projection runner over this env. It preloads every
// data key (one query), so replaying the log, into the projections or
// the directory, does not cost a round trip per user.
func (e *env) runner(ctx context.Context, progress *projections.Progress, opts ...projections.RunnerOption) (*projections.Runner, error) {
	p, err := e.personalData(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.Preload(ctx); err != nil {
		return nil, fmt.Errorf("personal data keys: %w", err)
	}
	opts = append([]projections.RunnerOption{projections.WithLogger(e.log)}, opts...)
	return projections.NewRunner(e.db.SQL(), e.db.URL(), e.store, progress, []projections.Projector{projections.IAM{Personal: p}}, opts...)
}

// openRunner opens an env for an operator command and a projection
// runner over it; the caller closes the env.
func openRunner(ctx context.Context, cfg *config) (*env, *projections.Runner, error) {
	e, err := open(ctx, cfg, false)
	if err != nil {
		return nil, nil, err
	}
	r, err := e.runner(ctx, projections.NewProgress())
	if err != nil {
		e.close()
		return nil, nil, err
	}
	return e, r, nil
}
