package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/effects"
	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/http/audit"
	"github.com/keyhold/keyhold/http/decision"
	"github.com/keyhold/keyhold/http/k0rdent"
	"github.com/keyhold/keyhold/http/kestra"
	"github.com/keyhold/keyhold/http/oauth2"
	privacyhttp "github.com/keyhold/keyhold/http/privacy"
	"github.com/keyhold/keyhold/projections"
	"github.com/keyhold/keyhold/query"
)

// readSide names the projections a write waits for before answering.
var readSide = []string{"iam", "directory"}

func newServe(cfg *config) *cobra.Command {
	return cfg.use(&cobra.Command{
		Use:   "serve",
		Short: "Run the Keyhold server",
		Long: `Run the HTTP API, the projectors and (unless --nats-url is given) an embedded NATS
server with JetStream storing under the data dir. The database is created if missing; if
no Postgres is reachable at the default --database-url and its binaries are installed, a
private cluster is started under the data dir. Both listen addresses are checked before
anything starts.`,
		Example: `  keyhold serve
  keyhold serve --http-addr 0.0.0.0:8080 --data-dir /var/lib/keyhold
  keyhold serve --nats-url nats://nats-1:4222,nats://nats-2:4222 --stream-replicas 3`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.validate(); err != nil {
				return err
			}
			// Listening first keeps the address until the server uses it,
			// and a taken one stops serve before it starts anything.
			ln, err := listen("--http-addr", cfg.httpAddr)
			if err != nil {
				return err
			}
			defer ln.Close()
			if cfg.natsURL == "" {
				nl, err := listen("--nats-listen", cfg.natsListen)
				if err != nil {
					return err
				}
				// The embedded server binds it itself, in a moment.
				nl.Close()
			}
			if _, _, err := cfg.keks(); err != nil {
				return err
			}
			e, err := open(cmd.Context(), cfg, true)
			if err != nil {
				return err
			}
			defer e.close()
			srv, err := newServer(cmd.Context(), e)
			if err != nil {
				return err
			}
			return srv.run(cmd.Context(), ln)
		},
	}, serveFlags...)
}

// listen listens on addr, the value of flag; a taken address says so.
func listen(flag, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%s %s: address in use: another keyhold serve or another program listens there; stop it or choose another address (%w)", flag, addr, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, addr, err)
	}
	return ln, nil
}

// server is a wired Keyhold server.
type server struct {
	env      *env
	handler  http.Handler
	runner   *projections.Runner
	effects  *effects.Runner // reactions to committed events (mail)
	dir      *query.Directory
	progress *projections.Progress
	idem     *khttp.Idempotency
	cmds     *commands.Commands
	dirReady <-chan struct{}
	// seeded is closed once every tenant holds this version's managed roles.
	seeded chan struct{}
	// uses learns when API tokens are used; background flushes it.
	uses *query.TokenUses
	// auditGate bounds the audit reads running at once.
	auditGate *query.Gate
	// stream is the log's identity, for the directory's snapshot ("" for
	// none); snapshotKey authenticates the snapshot.
	stream      string
	snapshotKey []byte
}

// Audit reads beyond auditReads at once wait up to auditWait for a slot,
// then get 503: a read of one aggregate takes about a millisecond, a scan
// of a large tenant much longer, and scans must not starve the rest. The
// wait is the Retry-After the 503 gives: a client told to come back in a
// second may as well queue that long, and at 100 ms a pause of the
// process (a busy machine) turned a tenant's queued reads into 503s.
const (
	auditReads = 8
	auditWait  = time.Second
)

// tokenUseFlush is how often API token use is written to Postgres: the
// last-use time shown is at most this old.
const tokenUseFlush = 10 * time.Second

// gcPercent is the garbage collector's target unless GOGC is set. The
// live heap of a server or a rebuild is small (the directory, caches, a
// chunk of events) while every request or event allocates; collecting at
// 5x the live heap instead of 2x cut CPU per write by about 15% in keyhold
// bench, for some tens of MB of memory.
const gcPercent = 400

// tuneGC applies gcPercent unless the operator set GOGC.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
}

// newServer wires every package over e and starts the directory; call run
// to serve.
func newServer(ctx context.Context, e *env) (*server, error) {
	tuneGC()
	progress := projections.NewProgress()
	// One consumer feeds the directory and the projectors in this process.
	fanout := e.store.Fanout()
	runner, err := e.runner(ctx, progress, projections.WithFollow(fanout))
	if err != nil {
		return nil, err
	}
	if err := runner.Prepare(ctx); err != nil {
		return nil, fmt.Errorf("prepare projections: %w", err)
	}
	kek, previous, err := e.cfg.keks()
	if err != nil {
		return nil, err
	}
	keys, err := auth.LoadKeys(ctx, e.db.SQL(), auth.WithKEK(kek, previous...), auth.WithIssuer(e.cfg.tokenIssuer()))
	if err != nil {
		return nil, err
	}
	reload := e.cfg.keyReload
	if reload <= 0 {
		reload = auth.KeyReload
	}
	go keys.Refresh(ctx, e.db.SQL(), reload, func(err error) { e.log.Warn("reload signing keys", "err", err) })
	personal, err := e.personalData(ctx) // preloaded by e.runner
	if err != nil {
		return nil, err
	}
	// The directory answers nothing until it has caught up: the server
	// serves (readiness failing) while it loads.
	dir := query.NewDirectory(query.WithPersonal(personal), query.Loading())
	uses := query.NewTokenUses()
	dir.TrackTokenUse(uses)
	cmds, err := e.commands(ctx, commands.WithAuthorizer(dir.Authorizer()))
	if err != nil {
		return nil, err
	}
	q, err := query.New(e.db.SQL(), dir.Authorizer())
	if err != nil {
		return nil, err
	}
	stream, err := e.store.Identity(ctx)
	if err != nil {
		e.log.Warn("directory snapshots off", "err", err)
		stream = ""
	}
	dirReady := make(chan struct{})
	idem := khttp.NewIdempotency(e.db.SQL())
	kit, err := khttp.NewKit(khttp.NewBearer(dir, keys), progress, readSide, e.cfg.waitTimeout, idem)
	if err != nil {
		return nil, err
	}
	proxies, err := khttp.ParseProxies(e.cfg.trustedProxies)
	if err != nil {
		return nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
	kit.TrustProxies(proxies)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	fx, err := e.effectsRunner(ctx, effects.WithFollow(fanout), effects.WithRegistry(reg))
	if err != nil {
		return nil, err
	}
	s := &server{env: e, runner: runner, effects: fx, dir: dir, progress: progress, idem: idem, cmds: cmds, dirReady: dirReady,
		auditGate: query.NewGate(auditReads, auditWait), seeded: make(chan struct{}), uses: uses, stream: stream, snapshotKey: kek.MACKey(snapshotPurpose)}
	router, err := khttp.NewRouter(khttp.Config{Logger: e.log, Registry: reg, OpenAPI: khttp.OpenAPI, Checks: s.checks()})
	if err != nil {
		return nil, err
	}
	k0rdent.Register(router, kit, cmds, q, e.log)
	mailSettings, err := e.cfg.mailSettings()
	if err != nil {
		return nil, err
	}
	kestra.Register(router, kit, cmds, q, e.log, kestra.WithMail(mailSettings))
	audit.Register(router, kit, query.NewAudit(e.store, s.auditGate, dir.Authorizer(), query.ShowPersonal(personal)))
	decisions := query.NewDecisions(dir)
	decision.Register(router, kit, decisions)
	privacyhttp.Register(router, kit, cmds)
	o, err := oauth2.New(dir, keys, s.revoke, oauth2.WithLogger(e.log), oauth2.WithRegistry(reg), oauth2.WithProxies(proxies))
	if err != nil {
		return nil, err
	}
	o.Register(router)
	// The draft's auth endpoints run on the OAuth2 endpoints' core.
	k0rdent.RegisterAuth(router, kit, o, decisions, e.log)
	s.handler = router
	go s.follow(ctx, fanout, dirReady)
	return s, nil
}

// follow loads the directory's snapshot, has the directory follow the log
// from there and starts the fan-out (the projectors subscribe later, at
// their checkpoints), retrying what fails until ctx ends; it closes ready
// once the directory has caught up with the log.
func (s *server) follow(ctx context.Context, fanout *events.Fanout, ready chan<- struct{}) {
	s.loadSnapshot(ctx)
	var caughtUp <-chan struct{}
	s.retry(ctx, "follow the log with the directory", func() (err error) {
		caughtUp, err = s.dir.Run(ctx, fanout, func(seq uint64) { s.progress.Advance("directory", seq) })
		return err
	})
	s.retry(ctx, "start the fan-out", func() error { return fanout.Start(ctx) })
	select {
	case <-caughtUp:
		close(ready)
	case <-ctx.Done():
	}
}

// retry calls fn until it succeeds or ctx ends, logging each failure.
func (s *server) retry(ctx context.Context, what string, fn func() error) {
	for ctx.Err() == nil {
		err := fn()
		if err == nil {
			return
		}
		s.env.log.Warn(what+", retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// revoke records an access-token revocation and waits until this
// replica's directory rejects the token.
func (s *server) revoke(ctx context.Context, caller auth.Principal, c auth.AccessClaims) error {
	seq, err := s.cmds.RevokeAccessToken.Handle(ctx, commands.RevokeAccessToken{
		Meta: commands.Meta{Caller: caller, RequestID: khttp.RequestID(ctx)}, Tenant: c.Tenant, ServiceAccountID: c.Subject, TokenID: c.ID, ExpiresAt: c.Expiry,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.env.cfg.waitTimeout)
	defer cancel()
	return s.progress.Wait(ctx, seq, "directory")
}

// seedRoles gives every tenant the managed roles of this version once the
// directory knows the tenants (tenants made by an older version may lack
// some), then closes s.seeded. A failure is logged and retried: readiness
// waits for it.
func (s *server) seedRoles(ctx context.Context) {
	select {
	case <-s.dirReady:
	case <-ctx.Done():
		return
	}
	for {
		var failed error
		for _, t := range s.dir.Tenants() {
			if _, err := s.cmds.SeedManagedRoles.Handle(ctx, commands.SeedManagedRoles{Meta: commands.Meta{Caller: auth.System()}, Tenant: t}); err != nil {
				failed = fmt.Errorf("tenant %s: %w", t, err)
				break
			}
		}
		if failed == nil {
			close(s.seeded)
			return
		}
		s.env.log.Warn("seed managed roles", "err", failed)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// checks are the readiness checks: NATS connected and the stream
// answering, Postgres answering, projections prepared and caught up with
// the log as it was at start. Failed events are reported without failing
// readiness: one bad event must not take every replica out of service.
func (s *server) checks() map[string]khttp.Check {
	var startHead uint64
	if h, err := s.env.store.LastSequence(context.Background()); err == nil {
		startHead = h
	}
	return map[string]khttp.Check{
		"nats": func(ctx context.Context) error {
			if s.env.nc.Status() != nats.CONNECTED {
				return fmt.Errorf("not connected (%s)", s.env.nc.Status())
			}
			_, err := s.env.store.LastSequence(ctx)
			return err
		},
		"postgres": func(ctx context.Context) error { return s.env.db.SQL().PingContext(ctx) },
		"projections": func(ctx context.Context) error {
			select {
			case <-s.seeded:
			default:
				if _, err := s.dir.Readiness(); err != nil {
					return err
				}
				return errors.New("seeding managed roles")
			}
			degraded, err := s.runner.Readiness(ctx, s.progress, startHead)
			if err != nil {
				return err
			}
			if degraded == "" {
				if degraded, err = s.dir.Readiness(); err != nil {
					return err
				}
			}
			if degraded != "" {
				return khttp.Degraded(degraded)
			}
			return nil
		},
		"effects": s.effectsCheck,
	}
}

// background starts the projectors, the reactions, the idempotency sweep
// and role seeding until ctx ends; the channel closes when the projectors
// and the reactions stopped and the directory's snapshot is written.
func (s *server) background(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		wg.Go(func() { _ = s.runner.Run(ctx) })
		// Reactions record the outcome of an attempt under way before the
		// database closes.
		wg.Go(func() { _ = s.effects.Run(ctx) })
		wg.Wait()
		s.saveSnapshot()
	}()
	go s.idem.Sweep(ctx, time.Hour)
	go s.seedRoles(ctx)
	go s.uses.Run(ctx, s.env.db.SQL(), tokenUseFlush, s.env.log)
	return done
}

// run serves HTTP on ln until ctx ends, then shuts down gracefully.
func (s *server) run(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := s.background(ctx)

	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	s.env.log.Info("keyhold serving", "http", "http://"+ln.Addr().String(), "nats", redactNATSURL(s.env.nc.ConnectedUrl()))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		cancel()
		<-done
		return err
	case <-ctx.Done():
	}
	s.env.log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	err := hs.Shutdown(sctx)
	cancel()
	<-done
	return err
}
