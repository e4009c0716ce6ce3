package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/http/k0rdent"
	"github.com/keyhold/keyhold/http/oauth2"
	"github.com/keyhold/keyhold/projections"
)

// What the bench creates inside its private environment, with its sizes
// and limits.
const (
	benchTenant     = "bench"
	benchRawStream  = "KEYHOLD_BENCH_RAW"
	benchRawPrefix  = "khbenchraw"
	benchCopyTable  = "bench_copy_service_accounts"
	benchCopyChunk  = 5000
	benchProjection = 2 * time.Minute // longest wait for the read side to catch up
)

// setup bootstraps the bench tenant (its administrator's API token drives
// the HTTP scenarios) and creates, over HTTP, the service account and
// client secret the token scenarios authenticate with.
func (b *bench) setup(ctx context.Context) error {
	s := b.env.srv
	res, err := s.cmds.Bootstrap.Handle(ctx, commands.Bootstrap{
		Meta: commands.Meta{Caller: auth.System()}, Tenant: benchTenant, Username: "bench-admin", Email: "bench-admin@example.com",
		Password: benchPassword,
	})
	if err != nil {
		return fmt.Errorf("bench: bootstrap: %w", err)
	}
	b.tenant, b.adminID, b.token = res.Tenant, res.UserID, res.Token
	if err := b.awaitProjections(ctx, res.Sequence); err != nil {
		return err
	}
	client := newBenchClient(1)
	defer client.CloseIdleConnections()
	var sa struct {
		ID       string `json:"id"`
		ClientID string `json:"clientId"`
	}
	body := fmt.Sprintf(`{"displayName":"bench token client","description":"client of the oauth2 token scenarios","scope":"organization","scopeId":%q,"roles":["viewer","auditor"]}`, b.tenant)
	if err := b.post(ctx, client, k0rdent.Base, body, &sa); err != nil {
		return fmt.Errorf("bench: create the token client: %w", err)
	}
	b.clientSA = sa.ID
	var cred struct {
		ClientSecret string `json:"clientSecret"`
	}
	if err := b.post(ctx, client, k0rdent.Base+"/"+sa.ID+"/credentials", "", &cred); err != nil {
		return fmt.Errorf("bench: create the token client's secret: %w", err)
	}
	if sa.ClientID == "" || cred.ClientSecret == "" {
		return errors.New("bench: responses lack the clientId or the clientSecret")
	}
	b.clientID, b.secret = sa.ClientID, cred.ClientSecret
	return nil
}

// post sends an authenticated JSON POST to the wired server and decodes
// its 201 response into out.
func (b *bench) post(ctx context.Context, client *http.Client, path, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.env.baseURL+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return statusError(resp, http.StatusCreated)
	}
	defer drain(resp)
	return json.NewDecoder(resp.Body).Decode(out)
}

// awaitProjections waits until every read-side projection applied seq.
func (b *bench) awaitProjections(ctx context.Context, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, benchProjection)
	defer cancel()
	if err := b.env.srv.progress.Wait(ctx, seq, readSide...); err != nil {
		return fmt.Errorf("bench: read side did not reach sequence %d: %w", seq, err)
	}
	return nil
}

// actor is the bench administrator as an event actor, as the command
// path records it.
func (b *bench) actor() events.Actor {
	return events.Actor{ID: b.adminID, Kind: auth.KindUser}
}

// serviceAccountCreated is the event the create command records for a
// tenant-scoped service account named name.
func (b *bench) serviceAccountCreated(id, name string) events.ServiceAccountCreated {
	return events.ServiceAccountCreated{
		ClientID: commands.ClientIDPrefix + id, DisplayName: name, Description: "created by keyhold bench",
		Scope: events.Scope{Level: events.ScopeTenant, Target: b.tenant}, Roles: []string{authz.RoleViewer}, Status: commands.StatusActive,
	}
}

// writePath measures create_service_account_http against
// jetstream_occ_publish, in alternating rounds.
//
// jetstream_occ_publish is the store's raw write path: one conditional
// publish (expected last subject sequence 0) on a new subject per op,
// through events.Store.Append, on a stream of its own (deleted afterwards)
// in the same NATS server and over the same connection as the wired
// server's store; the envelopes are those the create command writes.
//
// create_service_account_http is POST service-accounts on the wired
// server: authentication, the command with its conditional publish, and
// the wait until the projections applied the event before the answer.
func (b *bench) writePath(ctx context.Context) (base, meas benchResult, rounds []float64, err error) {
	st, err := events.Open(ctx, b.env.e.nc, events.WithStream(benchRawStream), events.WithSubjectPrefix(benchRawPrefix))
	if err != nil {
		return base, meas, nil, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = st.JetStream().DeleteStream(dctx, benchRawStream)
	}()
	c := b.opts.concurrency
	actor := b.actor()
	publish := loadSpec{name: "jetstream_occ_publish", concurrency: c, op: func(ctx context.Context, w, i int) error {
		id := events.NewID()
		env := events.New(b.tenant, id, actor, events.NewID(), b.serviceAccountCreated(id, fmt.Sprintf("bench sa %d-%d", w, i)))
		_, err := st.Append(ctx, events.Pending{Aggregate: events.AggregateServiceAccount, Envelope: env, Expect: true, ExpectedSeq: 0})
		return err
	}}

	client, err := newWireClient(strings.TrimPrefix(b.env.baseURL, "http://"), c,
		"Authorization", "Bearer "+b.token, "Content-Type", "application/json")
	if err != nil {
		return base, meas, nil, err
	}
	defer client.Close()
	var behind atomic.Int64
	create := loadSpec{name: "create_service_account_http", concurrency: c, op: func(ctx context.Context, w, i int) error {
		body := fmt.Sprintf(`{"displayName":"bench sa %d-%d","description":"created by keyhold bench","scope":"organization","scopeId":%q,"roles":["viewer"]}`, w, i, b.tenant)
		resp, err := client.do(ctx, w, http.MethodPost, k0rdent.Base, body)
		if err != nil {
			return err
		}
		if resp.status != http.StatusCreated {
			return wireStatusError(http.MethodPost, k0rdent.Base, resp, http.StatusCreated)
		}
		if resp.headerValue(khttp.ReadBehindHeader) == "true" {
			behind.Add(1)
		}
		return nil
	}}

	ps, cs, rounds, err := b.interleave(ctx, publish, create)
	if err != nil {
		return base, meas, nil, err
	}
	base = resultOf(publish.name, "publish", c, ps, 1)
	meas = resultOf(create.name, "request", c, cs, 1)
	meas.ReadBehind = int(behind.Load())
	if meas.ReadBehind > 0 {
		meas.Note = "read_behind counts answers (warm-up included) sent before the read side caught up"
	}
	return base, meas, rounds, nil
}

// tokenPath measures oauth2_token_http, POST /oauth2/token of the wired
// server, against oauth2_token_floor, the floor handler served on a
// listener of its own, with the same client credential and concurrency,
// in alternating rounds.
func (b *bench) tokenPath(ctx context.Context) (base, meas benchResult, rounds []float64, err error) {
	h, err := oauth2.NewFloor(b.clientID, b.secret)
	if err != nil {
		return base, meas, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return base, meas, nil, err
	}
	hs := newBenchHTTPServer(h)
	go func() { _ = hs.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	c := b.opts.concurrency
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(b.clientID+":"+b.secret))
	var specs []loadSpec
	for _, target := range []struct{ name, addr string }{
		{"oauth2_token_floor", ln.Addr().String()},
		{"oauth2_token_http", strings.TrimPrefix(b.env.baseURL, "http://")},
	} {
		// One more worker than the load's, for the check below.
		client, err := newWireClient(target.addr, c+1, "Authorization", basic, "Content-Type", "application/x-www-form-urlencoded")
		if err != nil {
			return base, meas, nil, err
		}
		defer client.Close()
		s := loadSpec{name: target.name, concurrency: c, op: tokenOp(client)}
		if err := s.op(ctx, c, -1); err != nil {
			return base, meas, nil, fmt.Errorf("%s: %w", s.name, err)
		}
		specs = append(specs, s)
	}
	floor, wired := specs[0], specs[1]
	fs, rs, rounds, err := b.interleave(ctx, floor, wired)
	if err != nil {
		return base, meas, nil, err
	}
	return resultOf(floor.name, "request", c, fs, 1), resultOf(wired.name, "request", c, rs, 1), rounds, nil
}

// tokenOp returns an op that asks client for a token with the client
// credentials grant (client sends the HTTP Basic credentials). The check
// op (i -1) also decodes the answer and insists on a bearer token in it.
func tokenOp(client *wireClient) loadOp {
	const form = "grant_type=client_credentials"
	return func(ctx context.Context, w, i int) error {
		resp, err := client.do(ctx, w, http.MethodPost, oauth2.TokenPath, form)
		if err != nil {
			return err
		}
		if resp.status != http.StatusOK {
			return wireStatusError(http.MethodPost, oauth2.TokenPath, resp, http.StatusOK)
		}
		if i >= 0 {
			return nil
		}
		var tok struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
		}
		if err := json.Unmarshal(resp.body, &tok); err != nil || tok.AccessToken == "" || tok.TokenType != "Bearer" {
			return fmt.Errorf("%s: no bearer token in the response (%v)", client.addr, err)
		}
		return nil
	}
}

// rebuildPath measures projection_rebuild against postgres_copy_baseline.
// It makes sure the log holds at least --rebuild-events events (appending
// service accounts with a credential each) and waits for the live
// projector to apply them; then, in each round, it COPYs for a share of
// --duration and rebuilds every read table from the log once.
//
// postgres_copy_baseline is COPY into a table shaped like service_accounts
// (same columns, text[] roles, the same primary key) from one connection,
// benchCopyChunk rows a transaction with synchronous_commit off: the way a
// rebuild writes. Its throughput is in rows; its latencies are per chunk.
//
// projection_rebuild is projections.Runner.Rebuild: events applied per
// second of the rebuild's own clock; latencies are per chunk of the
// rebuild (the time between its progress reports).
func (b *bench) rebuildPath(ctx context.Context) (base, meas benchResult, rounds []float64, err error) {
	store := b.env.e.store
	head, err := store.LastSequence(ctx)
	if err != nil {
		return base, meas, nil, err
	}
	if missing := b.opts.rebuildEvents - int(head); missing > 0 {
		if err := b.generate(ctx, missing); err != nil {
			return base, meas, nil, err
		}
		if head, err = store.LastSequence(ctx); err != nil {
			return base, meas, nil, err
		}
	}
	t0 := time.Now()
	if err := b.awaitProjections(ctx, head); err != nil {
		return base, meas, nil, err
	}
	fmt.Fprintf(b.stderr, "bench: read side caught up with %d events %s after the last append\n", head, time.Since(t0).Round(time.Millisecond))

	db := b.env.e.db.SQL()
	if _, err := db.ExecContext(ctx, `CREATE TABLE `+benchCopyTable+` (
		tenant text NOT NULL, id text NOT NULL, client_id text NOT NULL, display_name text NOT NULL,
		description text NOT NULL, scope_level text NOT NULL, scope_target text NOT NULL, scope_kind text NOT NULL, roles text[] NOT NULL,
		status text NOT NULL, created_by text NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
		PRIMARY KEY (tenant, id))`); err != nil {
		return base, meas, nil, err
	}
	defer func() { _, _ = db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+benchCopyTable) }()
	copyOp := b.copyChunk(db)

	per := b.opts.duration / time.Duration(b.opts.rounds)
	var copies, rebuilds []loadStats
	var walls []time.Duration
	for r := range b.opts.rounds {
		warmup := time.Duration(0)
		if r == 0 {
			warmup = b.opts.warmup
		}
		// Each side starts from a like state: an empty baseline table (the
		// rebuild writes fresh tables too) and no checkpoint pending from
		// the WAL the other side wrote.
		if _, err := db.ExecContext(ctx, "TRUNCATE "+benchCopyTable); err != nil {
			return base, meas, nil, err
		}
		b.settle(ctx, db)
		var cs loadStats
		if err := b.measure("postgres_copy_baseline", func() (err error) {
			cs, err = runLoad(ctx, 1, warmup, per, copyOp)
			return err
		}); err != nil {
			return base, meas, nil, fmt.Errorf("postgres_copy_baseline: %w", err)
		}
		b.settle(ctx, db)
		var rs loadStats
		var wall time.Duration
		if err := b.measure("projection_rebuild", func() (err error) {
			rs, wall, err = b.rebuildOnce(ctx)
			return err
		}); err != nil {
			return base, meas, nil, err
		}
		copies, rebuilds, walls = append(copies, cs), append(rebuilds, rs), append(walls, wall)
		rounds = append(rounds, round(rs.opsPerSecond()/(cs.opsPerSecond()*benchCopyChunk), 3))
	}
	base = resultOf("postgres_copy_baseline", "row", 1, merge(copies...), benchCopyChunk)
	base.Note = fmt.Sprintf("p50/p99 are per %d-row COPY transaction", benchCopyChunk)
	rs := merge(rebuilds...)
	meas = resultOf("projection_rebuild", "event", 1, rs, 1)
	var wall time.Duration
	for _, w := range walls {
		wall += w
	}
	meas.Note = fmt.Sprintf("%d rebuild(s) of %d events; p50/p99 are per rebuild chunk (500 to 5000 events); %s on the rebuild's clock, %s wall time with schema creation and switch-over",
		len(rebuilds), rebuilds[0].ops, rs.elapsed.Round(time.Millisecond), wall.Round(time.Millisecond))
	return base, meas, rounds, nil
}

// settle asks Postgres for a checkpoint, so one flushing the WAL of a
// previous measurement does not land in the next one. Without the
// privilege (superuser or pg_checkpoint) it says so once and goes on.
func (b *bench) settle(ctx context.Context, db *sqlx.DB) {
	if b.noCheckpoint {
		return
	}
	if _, err := db.ExecContext(ctx, "CHECKPOINT"); err != nil {
		b.noCheckpoint = true
		fmt.Fprintf(b.stderr, "bench: no CHECKPOINT between rebuild measurements (%v); figures will be noisier\n", err)
	}
}

// copyChunk returns an op that COPYs one chunk of service-account rows
// into the baseline table in a transaction of its own.
func (b *bench) copyChunk(db *sqlx.DB) loadOp {
	roles := []string{authz.RoleViewer}
	return func(ctx context.Context, w, i int) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, pq.CopyIn(benchCopyTable, "tenant", "id", "client_id", "display_name", "description",
			"scope_level", "scope_target", "scope_kind", "roles", "status", "created_by", "created_at", "updated_at"))
		if err != nil {
			return err
		}
		if err := copyRows(ctx, stmt, b.tenant, roles, w, i); err != nil {
			stmt.Close()
			return err
		}
		if err := stmt.Close(); err != nil {
			return err
		}
		return tx.Commit()
	}
}

// rebuildOnce runs one rebuild and returns its events as ops, its own
// clock as elapsed and its chunk times as latencies, with the wall time
// of the whole call.
func (b *bench) rebuildOnce(ctx context.Context) (loadStats, time.Duration, error) {
	var chunks []time.Duration
	var final projections.RebuildProgress
	start := time.Now()
	last := start
	err := b.env.srv.runner.Rebuild(ctx, func(p projections.RebuildProgress) {
		now := time.Now()
		if p.Done {
			final = p
			return
		}
		chunks = append(chunks, now.Sub(last))
		last = now
	})
	wall := time.Since(start)
	if err != nil {
		return loadStats{}, 0, err
	}
	if final.Events == 0 || final.Elapsed <= 0 {
		return loadStats{}, 0, errors.New("rebuild reported no events")
	}
	slices.Sort(chunks)
	return loadStats{ops: int(final.Events), elapsed: final.Elapsed, latencies: chunks}, wall, nil
}

// copyRows sends one chunk of service-account rows, with ids unique per
// (worker, chunk), to a COPY statement and ends the COPY.
func copyRows(ctx context.Context, stmt *sql.Stmt, tenant string, roles []string, w, i int) error {
	now := time.Now().UTC()
	prefix := fmt.Sprintf("%s-%d-%d-", events.NewID(), w, i)
	for j := range benchCopyChunk {
		id := prefix + strconv.Itoa(j)
		if _, err := stmt.ExecContext(ctx, tenant, id, commands.ClientIDPrefix+id, "bench copy row", "created by keyhold bench",
			events.ScopeTenant, tenant, "", pq.Array(roles), commands.StatusActive, "bench", now, now); err != nil {
			return err
		}
	}
	_, err := stmt.ExecContext(ctx)
	return err
}

// generate appends about n events through events.Store.Append from
// --concurrency writers: pairs of a service account created and a client
// secret (credential) added to it, as the commands would record them.
func (b *bench) generate(ctx context.Context, n int) error {
	store := b.env.e.store
	actor := b.actor()
	pairs := int64((n + 1) / 2)
	expires := time.Now().UTC().Add(commands.DefaultCredentialLifetime).Truncate(time.Second)
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for w := range b.opts.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := next.Add(1); k <= pairs && ctx.Err() == nil; k = next.Add(1) {
				if err := b.appendPair(ctx, store, actor, fmt.Sprintf("bench generated %d-%d", w, k), expires); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("generate events: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	d := time.Since(start)
	fmt.Fprintf(b.stderr, "bench: appended %d events in %s (%.0f events/s)\n", 2*pairs, d.Round(time.Millisecond), float64(2*pairs)/d.Seconds())
	return nil
}

// appendPair appends a new service account and then a credential for it,
// each conditional on the aggregate's last sequence.
func (b *bench) appendPair(ctx context.Context, store *events.Store, actor events.Actor, name string, expires time.Time) error {
	id := events.NewID()
	created := events.New(b.tenant, id, actor, events.NewID(), b.serviceAccountCreated(id, name))
	res, err := store.Append(ctx, events.Pending{Aggregate: events.AggregateServiceAccount, Envelope: created, Expect: true, ExpectedSeq: 0})
	if err != nil {
		return err
	}
	var secret [32]byte
	_, _ = rand.Read(secret[:])
	verifier := sha256.Sum256(secret[:])
	cred := events.New(b.tenant, id, actor, events.NewID(), events.CredentialCreated{
		CredentialID: events.NewID(), Verifier: hex.EncodeToString(verifier[:]), ExpiresAt: expires,
	})
	_, err = store.Append(ctx, events.Pending{Aggregate: events.AggregateServiceAccount, Envelope: cred, Expect: true, ExpectedSeq: res.Sequence})
	return err
}
