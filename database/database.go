// Package database opens the Postgres database Keyhold keeps its read tables
// in, with no manual set-up on a fresh machine: a missing database is
// created, and when no server is reachable at all Keyhold can run a private
// Postgres cluster of its own under its data directory.
//
// Open tries, in order:
//
//  1. the server and database named by the URL;
//  2. if the server says the database does not exist (SQLSTATE 3D000), it
//     creates it from the "postgres" maintenance database on the same
//     server, then connects;
//  3. if no server answers at all, the URL names this machine (localhost,
//     a loopback address or a unix socket) and WithPrivateCluster was given,
//     it initialises (once) and starts a private cluster with the Postgres
//     binaries installed on the machine, creates the database there and
//     connects to it;
//  4. otherwise it returns an error, wrapping ErrUnreachable or
//     ErrPrivateCluster, that says what to do.
package database

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	neturl "net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
)

// ErrInvalidOption is wrapped by the error Open returns when an Option has a
// value it cannot use; nothing has been connected or started then.
var ErrInvalidOption = errors.New("database: invalid option")

// ErrInvalidURL is wrapped by the error Open returns when the database URL
// (or key=value connection string) cannot be parsed.
var ErrInvalidURL = errors.New("database: invalid database URL")

// ErrUnreachable is wrapped by the error Open returns when no Postgres server
// answers at the URL and no private cluster may be started; the message says
// how to point Keyhold at a server or how to get one.
var ErrUnreachable = errors.New("database: no Postgres server reachable")

// ErrPrivateCluster is wrapped by the error Open returns when no server
// answers, a private cluster was allowed, but it could not be set up or
// started; the message says why and what to do instead.
var ErrPrivateCluster = errors.New("database: cannot run a private Postgres cluster")

// DefaultURL is the database Open uses when given an empty URL: the
// "keyhold" database on the Postgres server on this machine.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/keyhold?sslmode=disable"

// DefaultMaxConns is the connection pool size Open uses unless WithMaxConns
// says otherwise. Projectors batch many events per transaction, so a small
// pool serves a 2-core machine well.
const DefaultMaxConns = 16

// DefaultConnectTimeout bounds each connection attempt when neither the URL
// (connect_timeout) nor WithConnectTimeout sets a limit.
const DefaultConnectTimeout = 10 * time.Second

// privateUser is the superuser of a private cluster, and the system user it
// runs as when Keyhold itself runs as root.
const privateUser = "postgres"

// Option changes how Open connects. An Option returns an error wrapping
// ErrInvalidOption when its value cannot be used.
type Option func(*config) error

type config struct {
	log            *slog.Logger
	privateDir     string
	maxConns       int
	connectTimeout time.Duration
}

// WithLogger makes Open and Close report what they do (a database created, a
// private cluster initialised, started or stopped) to log. log must not be nil.
func WithLogger(log *slog.Logger) Option {
	return func(c *config) error {
		if log == nil {
			return fmt.Errorf("%w: WithLogger: nil logger", ErrInvalidOption)
		}
		c.log = log
		return nil
	}
}

// WithPrivateCluster allows Open, when no server answers at a URL that names
// this machine, to run a private Postgres cluster in <dataDir>/postgres
// (initialised on first use) and to connect to it. The cluster listens on a
// free port on 127.0.0.1 only and trusts local connections; DB.Close stops it
// if Open started it. dataDir must not be empty; a relative path is taken
// from the current directory.
func WithPrivateCluster(dataDir string) Option {
	return func(c *config) error {
		if strings.TrimSpace(dataDir) == "" {
			return fmt.Errorf("%w: WithPrivateCluster: empty data directory", ErrInvalidOption)
		}
		abs, err := filepath.Abs(dataDir)
		if err != nil {
			return fmt.Errorf("%w: WithPrivateCluster: %v", ErrInvalidOption, err)
		}
		c.privateDir = abs
		return nil
	}
}

// WithMaxConns limits the pool to n open connections (n >= 1), of which up to
// n are kept idle. The default is DefaultMaxConns.
func WithMaxConns(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: WithMaxConns: %d is not a positive number of connections", ErrInvalidOption, n)
		}
		c.maxConns = n
		return nil
	}
}

// WithConnectTimeout bounds each attempt to connect to the server to d
// (d > 0) when the URL sets no connect_timeout. The default is
// DefaultConnectTimeout.
func WithConnectTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithConnectTimeout: %v is not a positive duration", ErrInvalidOption, d)
		}
		c.connectTimeout = d
		return nil
	}
}

// DB is an open connection pool to Keyhold's database, and the private
// cluster serving it when Open had to start one. It is safe for concurrent
// use.
type DB struct {
	sql     *sqlx.DB
	cluster *cluster // non-nil when the database lives in a private cluster
	stop    bool     // Close stops the cluster: Open started it
	log     *slog.Logger
	url     string

	closeOnce sync.Once
	closeErr  error
}

// SQL returns the connection pool. It stays valid until Close.
func (db *DB) SQL() *sqlx.DB { return db.sql }

// URL returns the connection URL in use: the one given to Open, or the
// private cluster's. Other connections (LISTEN) use it.
func (db *DB) URL() string { return db.url }

// PrivateDir returns the data directory of the private cluster the database
// lives in, or "" when it lives on a server Keyhold does not run.
func (db *DB) PrivateDir() string {
	if db.cluster == nil {
		return ""
	}
	return db.cluster.dir
}

// Close closes the pool and, if Open started a private cluster, stops it
// (fast shutdown: open transactions are rolled back). A private cluster that
// was already running when Open found it is left running. Close may be called
// more than once; later calls return the first call's result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		err := db.sql.Close()
		if db.cluster != nil && db.stop {
			// Close has no context; bound the shutdown instead.
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			if serr := db.cluster.stopServer(ctx); serr != nil {
				err = errors.Join(err, serr)
			} else {
				db.log.Info("stopped private Postgres cluster", "dir", db.cluster.dir)
			}
		}
		db.closeErr = err
	})
	return db.closeErr
}

// Open connects to the database named by url (a postgres:// URL or a
// key=value connection string; DefaultURL when empty), creating the database
// if the server lacks it and, with WithPrivateCluster, starting a private
// cluster when no server is reachable. The returned DB has been pinged.
// Errors wrap ErrInvalidOption, ErrInvalidURL, ErrUnreachable or
// ErrPrivateCluster where those apply, and otherwise carry the server's error.
func Open(ctx context.Context, url string, opts ...Option) (*DB, error) {
	c := config{
		log:            slog.New(slog.DiscardHandler),
		maxConns:       DefaultMaxConns,
		connectTimeout: DefaultConnectTimeout,
	}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil Option", ErrInvalidOption)
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	if url == "" {
		url = DefaultURL
	}
	cfg, err := pq.NewConfig(url)
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), url, redact(url))
		var uerr *neturl.Error
		if redact(url) != url && errors.As(err, &uerr) {
			// url.Parse quotes the part it chokes on, which may be the
			// password itself.
			msg = "not a valid URL"
		}
		return nil, fmt.Errorf("%w %q: %s", ErrInvalidURL, redact(url), msg)
	}
	if cfg.Database == "" {
		cfg.Database = cfg.User // what libpq does without a dbname
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = c.connectTimeout
	}

	sdb, err := openExisting(ctx, cfg, c.log)
	switch {
	case err == nil:
		db := &DB{sql: sdb, log: c.log, url: url}
		db.setPool(c.maxConns)
		return db, nil
	case !isUnreachable(err):
		return nil, err
	}

	where := describe(cfg)
	if c.privateDir == "" {
		return nil, fmt.Errorf("%w at %s (%v): start Postgres there, or set --database-url (or KEYHOLD_DATABASE_URL) to a server that is running",
			ErrUnreachable, where, err)
	}
	if !isLocal(cfg) {
		return nil, fmt.Errorf("%w at %s (%v): a private cluster is only started in place of a server on this machine; check that the server is up and reachable, or set --database-url (or KEYHOLD_DATABASE_URL) to one that is",
			ErrUnreachable, where, err)
	}
	c.log.Info("no Postgres server reachable; using a private cluster", "url", where, "error", err.Error(), "data_dir", c.privateDir)
	cl, started, err := startPrivate(ctx, c.privateDir, c.log)
	if err != nil {
		return nil, err
	}
	pcfg := cfg.Clone()
	pcfg.Host, pcfg.Hostaddr, pcfg.Port, pcfg.Multi = "127.0.0.1", netip.Addr{}, uint16(cl.port), nil
	pcfg.User, pcfg.Password, pcfg.Passfile = privateUser, "", ""
	pcfg.SSLMode = pq.SSLModeDisable // loopback only; the cluster has no certificate
	sdb, err = openExisting(ctx, pcfg, c.log)
	if err != nil {
		if started {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 90*time.Second)
			defer cancel()
			err = errors.Join(err, cl.stopServer(stopCtx))
		}
		return nil, fmt.Errorf("%w: connect to the private cluster in %s: %w", ErrPrivateCluster, cl.dir, err)
	}
	purl := (&neturl.URL{Scheme: "postgres", User: neturl.User(privateUser), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(cl.port)),
		Path: "/" + cfg.Database, RawQuery: "sslmode=disable"}).String()
	db := &DB{sql: sdb, cluster: cl, stop: started, log: c.log, url: purl}
	db.setPool(c.maxConns)
	c.log.Info("connected to private Postgres cluster", "dir", cl.dir, "addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(cl.port)), "database", cfg.Database)
	return db, nil
}

func (db *DB) setPool(maxConns int) {
	db.sql.SetMaxOpenConns(maxConns)
	db.sql.SetMaxIdleConns(maxConns)
	db.sql.SetConnMaxIdleTime(5 * time.Minute)
	db.sql.SetConnMaxLifetime(30 * time.Minute)
}

// openExisting connects to cfg and pings it; if the server lacks the
// database it creates it and connects again.
func openExisting(ctx context.Context, cfg pq.Config, log *slog.Logger) (*sqlx.DB, error) {
	sdb, err := connect(ctx, cfg)
	if err == nil {
		return sdb, nil
	}
	if pq.As(err, pqerror.InvalidCatalogName) == nil {
		return nil, err
	}
	if err := createDatabase(ctx, cfg, log); err != nil {
		return nil, err
	}
	return connect(ctx, cfg)
}

// connect opens a pool on cfg and pings it; the pool is closed on failure.
func connect(ctx context.Context, cfg pq.Config) (*sqlx.DB, error) {
	// One round trip per query with arguments (Parse, Bind and Execute sent
	// together) instead of two (Parse and Describe first); on a small
	// machine each round trip is two context switches. It also sends
	// []byte arguments as binary, which is what bytea wants.
	cfg.BinaryParameters = true
	conn, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", describe(cfg), err)
	}
	db := sqlx.NewDb(sql.OpenDB(conn), "postgres")
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", describe(cfg), err)
	}
	return db, nil
}

// createDatabase creates cfg.Database from a maintenance database on the same
// server. A database that another process created meanwhile is fine.
func createDatabase(ctx context.Context, cfg pq.Config, log *slog.Logger) error {
	var (
		admin *sqlx.DB
		err   error
	)
	for _, maint := range []string{"postgres", "template1"} {
		m := cfg.Clone()
		m.Database = maint
		admin, err = connect(ctx, m)
		if err == nil || pq.As(err, pqerror.InvalidCatalogName) == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("database %q does not exist and the maintenance database to create it from is unavailable: %w", cfg.Database, err)
	}
	defer admin.Close()
	_, err = admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(cfg.Database))
	switch {
	case err == nil:
		log.Info(fmt.Sprintf("created database %s", cfg.Database), "database", cfg.Database, "server", describeServer(cfg))
		return nil
	case pq.As(err, pqerror.DuplicateDatabase) != nil:
		return nil
	case pq.As(err, pqerror.InsufficientPrivilege) != nil:
		return fmt.Errorf("database %q does not exist and user %q may not create it: create it (createdb %s) or grant the user CREATEDB: %w",
			cfg.Database, cfg.User, cfg.Database, err)
	default:
		return fmt.Errorf("create database %q: %w", cfg.Database, err)
	}
}

// isUnreachable tells whether err means no server answered at all, as
// opposed to a server that answered with an error.
func isUnreachable(err error) bool {
	if pq.As(err) != nil {
		return false
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	return errors.As(err, &opErr) || errors.As(err, &dnsErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

// isLocal tells whether cfg names a server on this machine.
func isLocal(cfg pq.Config) bool {
	if len(cfg.Multi) > 0 {
		return false
	}
	if cfg.Hostaddr.IsValid() {
		return cfg.Hostaddr.IsLoopback()
	}
	return isLocalHost(cfg.Host)
}

// isLocalHost tells whether host (a host name, an address or a unix socket
// directory) is on this machine, without a DNS lookup.
func isLocalHost(host string) bool {
	switch {
	case host == "", strings.EqualFold(host, "localhost"), filepath.IsAbs(host), strings.HasPrefix(host, "@"):
		return true
	case strings.HasSuffix(strings.ToLower(host), ".localhost"):
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// describe names the server and database of cfg without credentials.
func describe(cfg pq.Config) string {
	return describeServer(cfg) + "/" + cfg.Database
}

func describeServer(cfg pq.Config) string {
	host := cfg.Host
	if cfg.Hostaddr.IsValid() {
		host = cfg.Hostaddr.String()
	}
	if filepath.IsAbs(host) {
		return filepath.Join(host, ".s.PGSQL."+strconv.Itoa(int(cfg.Port)))
	}
	return net.JoinHostPort(host, strconv.Itoa(int(cfg.Port)))
}

// redact hides the passwords of a connection string and keeps the rest
// (host, port, database) to say which server is meant: in a URL, the
// password of its user part and the value of every query parameter whose
// name holds "password" (password, sslpassword); in a key=value string, the
// value of every such key.
func redact(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return redactKeyValue(s)
	}
	rest, query, hasQuery := strings.Cut(s[i+3:], "?")
	// The last '@' before the query ends the user part, even if the
	// password holds an unescaped '/'.
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if c := strings.Index(rest[:at], ":"); c >= 0 {
			rest = rest[:c] + ":xxxxx" + rest[at:]
		}
	}
	out := s[:i+3] + rest
	if !hasQuery {
		return out
	}
	// The query runs to the end: a '#' in a password is no fragment here.
	params := strings.Split(query, "&")
	for j, p := range params {
		raw, _, ok := strings.Cut(p, "=")
		key := raw
		if name, err := neturl.QueryUnescape(raw); err == nil {
			key = name
		}
		if ok && isPasswordKey(key) {
			params[j] = raw + "=xxxxx"
		}
	}
	return out + "?" + strings.Join(params, "&")
}

// isPasswordKey tells whether a connection parameter holds a password.
func isPasswordKey(key string) bool {
	return strings.Contains(strings.ToLower(strings.TrimSpace(key)), "password")
}

// redactKeyValue hides the value of every password key of a key=value
// connection string, read the way libpq reads it: optional spaces around
// '=', values optionally in single quotes, backslash escapes. A string it
// cannot read is hidden whole if it mentions a password.
func redactKeyValue(s string) string {
	var b strings.Builder
	i := 0
	skipSpace := func() {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
	}
	for {
		from := i
		skipSpace()
		b.WriteString(s[from:i])
		if i == len(s) {
			return b.String()
		}
		from = i
		for i < len(s) && s[i] != '=' && !isSpace(s[i]) {
			i++
		}
		key := s[from:i]
		skipSpace()
		if i == len(s) || s[i] != '=' || key == "" {
			if isPasswordKey(s) {
				return "(key=value connection string)"
			}
			return s
		}
		i++
		skipSpace()
		b.WriteString(s[from:i])
		from = i
		if i < len(s) && s[i] == '\'' {
			// A quoted value runs to the closing quote, or to the end.
			for i++; i < len(s) && s[i] != '\''; i++ {
				if s[i] == '\\' {
					i++
				}
			}
			i = min(i+1, len(s))
		} else {
			for ; i < len(s) && !isSpace(s[i]); i++ {
				if s[i] == '\\' {
					i++
				}
			}
			i = min(i, len(s))
		}
		if isPasswordKey(key) {
			b.WriteString("xxxxx")
		} else {
			b.WriteString(s[from:i])
		}
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// cluster is a private Postgres cluster: its binaries, data directory, port,
// and the system user its programs run as.
type cluster struct {
	bin  string // directory holding initdb, pg_ctl and postgres
	dir  string // PGDATA
	port int

	// When Keyhold runs as root, initdb and pg_ctl refuse to: they run as
	// runAs through runuser (or su) instead.
	runAs   string
	runuser string // path of runuser, or "" to use su
	su      string // path of su
}

// startPrivate makes sure a private cluster in <dataDir>/postgres is
// initialised and running. started is false when it was already running (it
// is then left running by Close).
func startPrivate(ctx context.Context, dataDir string, log *slog.Logger) (cl *cluster, started bool, err error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, false, err
	}
	cl = &cluster{bin: bin, dir: filepath.Join(dataDir, "postgres")}
	var owner *user.User
	if os.Geteuid() == 0 {
		if owner, err = cl.setRunAs(); err != nil {
			return nil, false, err
		}
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, false, fmt.Errorf("%w: create data directory: %w", ErrPrivateCluster, err)
	}
	if owner != nil {
		if err := checkReachable(dataDir, owner); err != nil {
			return nil, false, err
		}
	}
	if err := cl.initialise(ctx, owner, log); err != nil {
		return nil, false, err
	}
	if port, running := cl.running(ctx); running {
		cl.port = port
		log.Info("private Postgres cluster already running; using it", "dir", cl.dir, "port", port)
		return cl, false, nil
	}
	if err := cl.start(ctx, log); err != nil {
		return nil, false, err
	}
	return cl, true, nil
}

// setRunAs arranges for the cluster's programs to run as the postgres system
// user, since Keyhold runs as root and initdb and pg_ctl refuse root.
func (cl *cluster) setRunAs() (*user.User, error) {
	u, err := user.Lookup(privateUser)
	if err != nil {
		return nil, fmt.Errorf("%w: keyhold runs as root, initdb and pg_ctl refuse to run as root, and there is no %q system user to run them as (%v): create one (useradd --system --home-dir /var/lib/postgresql %s), run keyhold as an ordinary user, or set --database-url (or KEYHOLD_DATABASE_URL) to a running server",
			ErrPrivateCluster, privateUser, err, privateUser)
	}
	cl.runAs = u.Username
	if p, err := exec.LookPath("runuser"); err == nil {
		cl.runuser = p
		return u, nil
	}
	if p, err := exec.LookPath("su"); err == nil {
		cl.su = p
		return u, nil
	}
	return nil, fmt.Errorf("%w: keyhold runs as root, initdb and pg_ctl refuse to run as root, and neither runuser nor su is available to run them as %q: run keyhold as an ordinary user, or set --database-url (or KEYHOLD_DATABASE_URL) to a running server",
		ErrPrivateCluster, privateUser)
}

// checkReachable tells whether u may enter dir and every directory above
// it, as the cluster's programs running as u must.
func checkReachable(dir string, u *user.User) error {
	uid, _ := strconv.Atoi(u.Uid)
	groups := map[uint32]bool{}
	if gids, err := u.GroupIds(); err == nil {
		for _, g := range gids {
			if n, err := strconv.Atoi(g); err == nil {
				groups[uint32(n)] = true
			}
		}
	}
	if n, err := strconv.Atoi(u.Gid); err == nil {
		groups[uint32(n)] = true
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrPrivateCluster, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil // cannot tell; let initdb report it
		}
		mode := fi.Mode().Perm()
		var can bool
		switch {
		case int(st.Uid) == uid:
			can = mode&0o100 != 0
		case groups[st.Gid]:
			can = mode&0o010 != 0
		default:
			can = mode&0o001 != 0
		}
		if !can {
			return fmt.Errorf("%w: keyhold runs as root, so its private cluster must run as the %q user, which cannot enter %s (mode %v): allow it (chmod o+x %s) or use a data directory under a path it can reach (for example /var/lib/keyhold)",
				ErrPrivateCluster, u.Username, d, mode, d)
		}
		if parent := filepath.Dir(d); parent == d {
			return nil
		}
	}
}

// initialise runs initdb in cl.dir unless a cluster is already there.
func (cl *cluster) initialise(ctx context.Context, owner *user.User, log *slog.Logger) error {
	if _, err := os.Stat(filepath.Join(cl.dir, "PG_VERSION")); err == nil {
		return nil
	}
	if entries, err := os.ReadDir(cl.dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%w: %s is not empty but holds no Postgres cluster (no PG_VERSION): move it away and keyhold will initialise a new one", ErrPrivateCluster, cl.dir)
	}
	if err := os.MkdirAll(cl.dir, 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrPrivateCluster, err)
	}
	if owner != nil {
		uid, _ := strconv.Atoi(owner.Uid)
		gid, _ := strconv.Atoi(owner.Gid)
		if err := os.Chown(cl.dir, uid, gid); err != nil {
			return fmt.Errorf("%w: give %s to the %q user: %w", ErrPrivateCluster, cl.dir, owner.Username, err)
		}
	}
	out, err := cl.command(ctx, "initdb", "-D", cl.dir, "-U", privateUser, "--auth=trust", "-E", "UTF8", "--locale=C").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: initdb in %s: %w\n%s", ErrPrivateCluster, cl.dir, err, tail(string(out), 20))
	}
	// Only loopback TCP: no unix socket whose path could be too long or
	// collide with the machine's own server.
	extra := "\n# Set by keyhold: a private cluster reachable from this machine only.\n" +
		"listen_addresses = '127.0.0.1'\n" +
		"unix_socket_directories = ''\n"
	f, err := os.OpenFile(filepath.Join(cl.dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(extra)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		return fmt.Errorf("%w: configure %s: %w", ErrPrivateCluster, cl.dir, err)
	}
	log.Info("initialised private Postgres cluster", "dir", cl.dir, "bin", cl.bin)
	return nil
}

// running tells whether the cluster's server is up, and on which port.
func (cl *cluster) running(ctx context.Context) (int, bool) {
	if err := cl.command(ctx, "pg_ctl", "status", "-D", cl.dir).Run(); err != nil {
		return 0, false
	}
	// postmaster.pid: pid, data dir, start time, port, ...
	f, err := os.Open(filepath.Join(cl.dir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan(); i++ {
		if i == 3 {
			port, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
			return port, err == nil && port > 0
		}
	}
	return 0, false
}

// start starts the server on a free loopback port and waits until it
// accepts connections.
func (cl *cluster) start(ctx context.Context, log *slog.Logger) error {
	logFile := filepath.Join(cl.dir, "server.log")
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return fmt.Errorf("%w: find a free port: %w", ErrPrivateCluster, err)
		}
		out, err := cl.command(ctx, "pg_ctl", "start", "-D", cl.dir, "-l", logFile, "-w", "-t", "60", "-s",
			"-o", "-p "+strconv.Itoa(port)).CombinedOutput()
		if err == nil {
			cl.port = port
			log.Info("started private Postgres cluster", "dir", cl.dir, "addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "log", logFile)
			return nil
		}
		serverLog, _ := os.ReadFile(logFile)
		lastErr = fmt.Errorf("%w: pg_ctl start in %s: %w\n%s%s", ErrPrivateCluster, cl.dir, err, out, tail(string(serverLog), 20))
		if ctx.Err() != nil || !strings.Contains(string(serverLog), "already in use") {
			break
		}
	}
	return lastErr
}

// stopServer stops the server (fast shutdown) and waits for it to exit.
func (cl *cluster) stopServer(ctx context.Context) error {
	out, err := cl.command(ctx, "pg_ctl", "stop", "-D", cl.dir, "-m", "fast", "-w", "-t", "60", "-s").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: pg_ctl stop in %s: %w\n%s", ErrPrivateCluster, cl.dir, err, out)
	}
	return nil
}

// command runs one of the cluster's programs, as cl.runAs when set.
func (cl *cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := filepath.Join(cl.bin, name)
	var cmd *exec.Cmd
	switch {
	case cl.runAs == "":
		cmd = exec.CommandContext(ctx, path, args...)
	case cl.runuser != "":
		cmd = exec.CommandContext(ctx, cl.runuser, append([]string{"-u", cl.runAs, "--", path}, args...)...)
	default:
		cmd = exec.CommandContext(ctx, cl.su, "-s", "/bin/sh", "-c", shellQuote(append([]string{path}, args...)), cl.runAs)
	}
	// A directory the programs can enter whoever they run as; initdb and
	// pg_ctl look up their current directory.
	cmd.Dir = "/"
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// shellQuote joins words into a /bin/sh command line.
func shellQuote(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// findBinaries returns the directory holding initdb, pg_ctl and postgres:
// from PATH first, then /usr/lib/postgresql/<version>/bin, newest first.
func findBinaries() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(versions, func(a, b string) int {
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	dirs = append(dirs, versions...)
	for _, d := range dirs {
		if hasAll(d, "initdb", "pg_ctl", "postgres") {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: no Postgres binaries (initdb, pg_ctl, postgres) in PATH or /usr/lib/postgresql/*/bin: install Postgres (for example apt-get install postgresql), or set --database-url (or KEYHOLD_DATABASE_URL) to a running server",
		ErrPrivateCluster)
}

func hasAll(dir string, names ...string) bool {
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// compareVersions orders dotted version numbers numerically ("9.6" < "15");
// non-numeric parts compare as text.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y string
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		nx, ex := strconv.Atoi(x)
		ny, ey := strconv.Atoi(y)
		switch {
		case ex == nil && ey == nil && nx != ny:
			if nx < ny {
				return -1
			}
			return 1
		case (ex != nil || ey != nil) && x != y:
			return strings.Compare(x, y)
		}
	}
	return 0
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// It never returns 4222, the port a NATS server may hold on this machine.
func freePort() (int, error) {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port != 4222 {
			return port, nil
		}
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
