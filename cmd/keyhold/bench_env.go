package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"strings"
	"time"

	_ "github.com/lib/pq" // Postgres driver for the maintenance connection
)

// benchEnv is the private environment a bench run creates and removes: a
// temporary data directory holding an embedded NATS server on a random
// port, a temporary database on the --database-url server, and the fully
// wired Keyhold server serving HTTP on a random local port.
type benchEnv struct {
	stderr   io.Writer
	dir      string
	adminURL string
	dbName   string
	e        *env
	srv      *server
	http     *http.Server
	baseURL  string
	cancel   context.CancelFunc
	done     <-chan struct{}
	// cfg is the server's configuration, kept for restart.
	cfg config
}

// newBenchEnv builds the private environment from cfg's --database-url
// (only its server is used). Whatever it created is removed again when it
// fails; otherwise call close.
func newBenchEnv(ctx context.Context, cfg *config, stderr io.Writer) (_ *benchEnv, err error) {
	be := &benchEnv{stderr: stderr}
	defer func() {
		if err != nil {
			if cerr := be.close(); cerr != nil {
				fmt.Fprintf(stderr, "bench: cleanup after failed setup: %v\n", cerr)
			}
		}
	}()
	if be.dir, err = os.MkdirTemp("", "keyhold-bench-*"); err != nil {
		return nil, fmt.Errorf("bench: temporary data dir: %w", err)
	}
	suffix := make([]byte, 5)
	_, _ = rand.Read(suffix)
	be.dbName = "keyhold_bench_" + hex.EncodeToString(suffix)
	var benchURL string
	if be.adminURL, benchURL, err = benchDatabaseURLs(cfg.databaseURL, be.dbName); err != nil {
		return nil, err
	}
	if err := be.createDatabase(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "bench: private database %s, data dir %s\n", be.dbName, be.dir)

	be.cfg = *cfg
	be.cfg.dataDir = be.dir
	be.cfg.databaseURL = benchURL
	be.cfg.natsURL = ""
	be.cfg.natsListen = "127.0.0.1:0" // a random port: never the default or 4222
	be.cfg.httpAddr = "127.0.0.1:0"
	if err := be.start(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "bench: keyhold serving at %s, NATS at %s\n", be.baseURL, be.e.nc.ConnectedUrlRedacted())
	return be, nil
}

// start opens the env (NATS over the data dir, the database), wires the
// server, serves it on a random local port and waits until it is ready.
func (be *benchEnv) start(ctx context.Context) (err error) {
	if be.e, err = open(ctx, &be.cfg, true); err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	be.cancel = cancel
	if be.srv, err = newServer(sctx, be.e); err != nil {
		return err
	}
	be.done = be.srv.background(sctx)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("bench: listen: %w", err)
	}
	be.baseURL = "http://" + ln.Addr().String()
	be.http = newBenchHTTPServer(be.srv.handler)
	go func() { _ = be.http.Serve(ln) }()
	return be.awaitReady(ctx)
}

// restart stops the server, its projectors and NATS, keeping the data
// dir and the database, and starts them again as keyhold serve would
// after a restart. It returns the time from the start of the new server
// to /readyz answering ready.
func (be *benchEnv) restart(ctx context.Context) (time.Duration, error) {
	if err := be.stop(); err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := be.start(ctx); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// benchReady bounds the wait for a server to become ready: a restart
// over the log of a scale run replays millions of events.
const benchReady = 10 * time.Minute

// newBenchHTTPServer returns an HTTP server with the limits keyhold serve uses.
func newBenchHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
}

// benchDatabaseURLs returns the URL of the maintenance database ("postgres")
// and of database name on the server databaseURL names. Both URL and
// key=value connection strings are accepted.
func benchDatabaseURLs(databaseURL, name string) (admin, bench string, err error) {
	if strings.HasPrefix(databaseURL, "postgres://") || strings.HasPrefix(databaseURL, "postgresql://") {
		u, err := neturl.Parse(databaseURL)
		if err != nil {
			return "", "", fmt.Errorf("bench: --database-url: %w", err)
		}
		u.Path = "/postgres"
		admin = u.String()
		u.Path = "/" + name
		return admin, u.String(), nil
	}
	if strings.TrimSpace(databaseURL) == "" {
		return "", "", errors.New("bench: --database-url is empty")
	}
	// Later keys win in a key=value string.
	return databaseURL + " dbname=postgres", databaseURL + " dbname=" + name, nil
}

func (be *benchEnv) createDatabase(ctx context.Context) error {
	admin, err := sql.Open("postgres", be.adminURL)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+be.dbName); err != nil {
		be.dbName = "" // nothing to drop
		return fmt.Errorf("bench: create the bench database (is Postgres running at the --database-url server?): %w", err)
	}
	return nil
}

// awaitReady polls /readyz until the server reports ready. It first
// waits in process for the directory to load the log and the managed
// roles to be seeded, which take longest on a large log: each 503 of
// /readyz is a logged warning.
func (be *benchEnv) awaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, benchReady)
	defer cancel()
	for _, c := range []<-chan struct{}{be.srv.dirReady, be.srv.seeded} {
		select {
		case <-c:
		case <-ctx.Done():
			return fmt.Errorf("bench: server not ready: %w", ctx.Err())
		}
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, be.baseURL+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			drain(resp)
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: server not ready: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// close stops the server, the projectors and NATS, drops the bench
// database and removes the data dir. It runs on every exit path, Ctrl-C
// included (the command's context ends, close itself uses a fresh one).
func (be *benchEnv) close() error {
	errs := []error{be.stop()}
	if be.dbName != "" {
		if err := be.dropDatabase(); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Fprintf(be.stderr, "bench: dropped database %s\n", be.dbName)
		}
	}
	if be.dir != "" {
		if err := os.RemoveAll(be.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", be.dir, err))
		}
	}
	return errors.Join(errs...)
}

// stop shuts down HTTP, the projectors and NATS and closes the database
// pool; the data dir and the database stay. Stopping twice is harmless.
func (be *benchEnv) stop() error {
	var errs []error
	if be.http != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := be.http.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down HTTP: %w", err))
		}
		cancel()
	}
	if be.cancel != nil {
		be.cancel()
	}
	if be.done != nil {
		select {
		case <-be.done:
		case <-time.After(10 * time.Second):
			errs = append(errs, errors.New("projection runner did not stop within 10s"))
		}
	}
	if be.e != nil {
		be.e.close()
	}
	be.http, be.cancel, be.done, be.e, be.srv = nil, nil, nil, nil, nil
	return errors.Join(errs...)
}

func (be *benchEnv) dropDatabase() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := sql.Open("postgres", be.adminURL)
	if err != nil {
		return err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+be.dbName+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s (drop it by hand): %w", be.dbName, err)
	}
	return nil
}
