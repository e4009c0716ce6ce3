package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	fastjson "github.com/segmentio/encoding/json"

	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/http/decision"
	"github.com/keyhold/keyhold/http/k0rdent"
	"github.com/keyhold/keyhold/query"
)

// Scale run limits and settings.
const (
	// DefaultScaleAccounts is what make bench-scale loads.
	DefaultScaleAccounts = 1_000_000
	maxScaleAccounts     = 10_000_000
	// scaleMaxPending bounds the async publishes in flight.
	scaleMaxPending = 8192
	// scaleStallWait is how long a publish waits for room in the window.
	scaleStallWait = time.Minute
	// scaleProgress is how often loading and catching up report.
	scaleProgress = 2 * time.Second
	// scaleCatchUp bounds the wait for the read side after loading.
	scaleCatchUp = 30 * time.Minute
	// directoryTargetBytes is the memory an account should cost the
	// directory at rest.
	directoryTargetBytes = 700
	// hdrEventType is the header events.Store.Append sets on every event.
	hdrEventType = "Keyhold-Type"
)

// scaleResult is the line keyhold bench --scale prints about memory and
// restart; its latencies are in the scale_* results printed with it.
type scaleResult struct {
	Name     string `json:"name"`
	Accounts int    `json:"accounts"`
	// LoadS is the time to publish every event and have it acked;
	// CatchUpS the further time until the directory and the projections
	// applied the last one.
	LoadS    float64 `json:"load_s"`
	CatchUpS float64 `json:"catch_up_s"`
	// RSS of the whole process (NATS server, directory, projector, load
	// generator) before loading, after the read side caught up, and after
	// the restart, each after a garbage collection; HeapMB is the live
	// heap after catching up.
	RSSBeforeMB  float64 `json:"rss_before_mb"`
	RSSMB        float64 `json:"rss_mb"`
	RSSRestartMB float64 `json:"rss_after_restart_mb"`
	HeapMB       float64 `json:"heap_mb"`
	// RSSPeakMB is the process's peak RSS up to catching up (VmHWM):
	// loading buffers events the read side has yet to apply.
	RSSPeakMB float64 `json:"rss_peak_mb"`
	// HeapRestartMB is the live heap after the restart.
	HeapRestartMB float64 `json:"heap_after_restart_mb"`
	// RSSPerAccount and HeapPerAccount are the growth per account loaded.
	RSSPerAccount  float64 `json:"rss_bytes_per_account"`
	HeapPerAccount float64 `json:"heap_bytes_per_account"`
	// DirectoryPerAccount is what the directory holds per account over
	// JetStream's own: the live heap a second directory folded from the
	// same log adds. JetStreamPerAccount is the heap growth left once the
	// live directory's share is taken off: JetStream's per-subject state
	// and caches, and whatever else grew (pools, buffers).
	DirectoryPerAccount float64 `json:"directory_bytes_per_account"`
	JetStreamPerAccount float64 `json:"jetstream_bytes_per_account"`
	DirectoryTarget     float64 `json:"directory_target_bytes"`
	DirectoryTargetMet  bool    `json:"directory_target_met"`
	DirectoryReplayS    float64 `json:"directory_replay_s"`
	// RestartToReadyS runs from starting NATS on the data dir again to
	// /readyz answering ready.
	RestartToReadyS float64 `json:"restart_to_ready_s"`
}

// runScale loads n service accounts with a credential each into the
// bench tenant, then measures memory, a restart, and the p99 of the list
// and the decision API at that size.
func (b *bench) runScale(ctx context.Context, n int, enc *json.Encoder) error {
	res := scaleResult{Name: "scale", Accounts: n, DirectoryTarget: directoryTargetBytes}
	rss0, heap0 := settledMemory()
	res.RSSBeforeMB = mb(rss0)

	t0 := time.Now()
	last, err := b.loadAccounts(ctx, n)
	if err != nil {
		return err
	}
	res.LoadS = round(time.Since(t0).Seconds(), 2)
	t1 := time.Now()
	if err := b.awaitScaleCatchUp(ctx); err != nil {
		return err
	}
	res.CatchUpS = round(time.Since(t1).Seconds(), 2)
	if err := b.analyze(ctx); err != nil {
		return err
	}

	if peak, err := procStatus("VmHWM"); err == nil {
		res.RSSPeakMB = mb(peak)
	}
	rss1, heap1 := settledMemory()
	res.RSSMB, res.HeapMB = mb(rss1), mb(heap1)
	res.RSSPerAccount = perAccount(rss1, rss0, n)
	res.HeapPerAccount = perAccount(heap1, heap0, n)
	dirBytes, replay, err := b.directoryFootprint(ctx)
	if err != nil {
		return err
	}
	res.DirectoryPerAccount = round(float64(dirBytes)/float64(n), 0)
	res.JetStreamPerAccount = round(res.HeapPerAccount-res.DirectoryPerAccount, 0)
	res.DirectoryTargetMet = res.DirectoryPerAccount <= directoryTargetBytes
	res.DirectoryReplayS = round(replay.Seconds(), 2)

	fmt.Fprintf(b.stderr, "bench: scale: restarting the server over %d accounts ...\n", n)
	took, err := b.env.restart(ctx)
	if err != nil {
		return fmt.Errorf("bench: restart: %w", err)
	}
	res.RestartToReadyS = round(took.Seconds(), 2)
	rss2, heap2 := settledMemory()
	res.RSSRestartMB, res.HeapRestartMB = mb(rss2), mb(heap2)

	list, check, err := b.scaleLatencies(ctx, n, last)
	if err != nil {
		return err
	}
	for _, r := range []any{res, list, check} {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	verdict := "met"
	if !res.DirectoryTargetMet {
		verdict = "MISSED"
	}
	fmt.Fprintf(b.stderr, `bench: scale: %d accounts loaded in %.1fs, read side caught up %.1fs later
  RSS %.0f MB -> %.0f MB after catching up (%.0f B/account, peak %.0f MB), %.0f MB after restart; live heap %.0f MB (%.0f B/account), %.0f MB after restart
  directory %.0f B/account (target <= %d: %s), JetStream and the rest %.0f B/account; a second directory replayed the log in %.1fs
  restart to ready %.1fs
  list first page p50 %.3f ms p99 %.3f ms; authz check p50 %.3f ms p99 %.3f ms (%d connections)
`, n, res.LoadS, res.CatchUpS, res.RSSBeforeMB, res.RSSMB, res.RSSPerAccount, res.RSSPeakMB, res.RSSRestartMB, res.HeapMB, res.HeapPerAccount, res.HeapRestartMB,
		res.DirectoryPerAccount, directoryTargetBytes, verdict, res.JetStreamPerAccount, res.DirectoryReplayS,
		res.RestartToReadyS, list.P50ms, list.P99ms, check.P50ms, check.P99ms, list.Concurrency)
	return nil
}

// loadAccounts publishes n service accounts, each created and given one
// client secret, straight to the stream with async publishes from two
// publishers, as the commands would record them (without the conditional
// headers: every subject is new and its two events go out in order on one
// connection). It reports progress until every publish is acked and
// returns the id of the last account.
func (b *bench) loadAccounts(ctx context.Context, n int) (string, error) {
	var failed atomic.Int64
	var errMu sync.Mutex
	var firstErr error
	js, err := jetstream.New(b.env.e.nc, jetstream.WithPublishAsyncMaxPending(scaleMaxPending),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			failed.Add(1)
			errMu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			errMu.Unlock()
		}))
	if err != nil {
		return "", err
	}
	store := b.env.e.store
	actor := b.actor()
	expires := time.Now().UTC().Add(commands.DefaultCredentialLifetime).Truncate(time.Second)
	var published atomic.Int64
	var lastID atomic.Value
	stop := b.reportProgress(ctx, "loading", func() string {
		p := published.Load()
		return fmt.Sprintf("%d of %d accounts published, %d events awaiting their ack", p, n, js.PublishAsyncPending())
	})
	defer stop()
	publish := func(env events.Envelope) error {
		body, err := fastjson.Marshal(env)
		if err != nil {
			return err
		}
		m := nats.NewMsg(store.SubjectOf(env.Tenant, events.AggregateServiceAccount, env.Subject))
		m.Data = body
		m.Header.Set(hdrEventType, env.Type)
		// A full window waits for acks: the server shares the cores with
		// the directory and the projector applying what it stored.
		_, err = js.PublishMsgAsync(m, jetstream.WithStallWait(scaleStallWait))
		return err
	}
	const publishers = 2
	var wg sync.WaitGroup
	errs := make([]error, publishers)
	for w := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; k < n && ctx.Err() == nil && failed.Load() == 0; k += publishers {
				id := events.NewID()
				var secret [32]byte
				_, _ = rand.Read(secret[:])
				verifier := sha256.Sum256(secret[:])
				created := events.New(b.tenant, id, actor, events.NewID(), b.serviceAccountCreated(id, fmt.Sprintf("bench scale %d", k)))
				cred := events.New(b.tenant, id, actor, events.NewID(), events.CredentialCreated{
					CredentialID: events.NewID(), Verifier: hex.EncodeToString(verifier[:]), ExpiresAt: expires,
				})
				if err := errors.Join(publish(created), publish(cred)); err != nil {
					errs[w] = err
					return
				}
				published.Add(1)
				lastID.Store(id)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("bench: scale: publish: %w", err)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return "", ctx.Err()
	case <-time.After(5 * time.Minute):
		return "", errors.New("bench: scale: publishes not acked within 5m")
	}
	if f := failed.Load(); f > 0 {
		return "", fmt.Errorf("bench: scale: %d publishes failed; first: %w", f, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	id, _ := lastID.Load().(string)
	return id, nil
}

// awaitScaleCatchUp waits until the read side (the directory and every
// projection) applied the head of the log, reporting progress.
func (b *bench) awaitScaleCatchUp(ctx context.Context) error {
	head, err := b.env.e.store.LastSequence(ctx)
	if err != nil {
		return err
	}
	progress := b.env.srv.progress
	stop := b.reportProgress(ctx, "catching up", func() string {
		var parts []string
		for _, n := range readSide {
			parts = append(parts, fmt.Sprintf("%s at %d", n, progress.Position(n)))
		}
		return fmt.Sprintf("%s of %d", strings.Join(parts, ", "), head)
	})
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, scaleCatchUp)
	defer cancel()
	if err := progress.Wait(ctx, head, readSide...); err != nil {
		return fmt.Errorf("bench: scale: read side did not reach sequence %d: %w", head, err)
	}
	return nil
}

// reportProgress prints what status says every scaleProgress until the
// returned stop is called.
func (b *bench) reportProgress(ctx context.Context, what string, status func() string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		t := time.NewTicker(scaleProgress)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				fmt.Fprintf(b.stderr, "bench: scale: %s, %s: %s\n", what, time.Since(start).Round(time.Second), status())
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// directoryFootprint folds the whole log into a second directory and
// returns the live heap it holds and how long the replay took.
func (b *bench) directoryFootprint(ctx context.Context) (bytes uint64, replay time.Duration, err error) {
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dir := query.NewDirectory()
	t0 := time.Now()
	ready, err := dir.Run(dctx, b.env.e.store, nil)
	if err != nil {
		return 0, 0, err
	}
	select {
	case <-ready:
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	replay = time.Since(t0)
	_, with := settledMemory()
	runtime.KeepAlive(dir)
	// What the heap loses when the directory goes: measured this way
	// round, JetStream's caches emptying while the replay ran (they do,
	// after a load) cannot count against the directory.
	cancel()
	// The follower's goroutines end and let go of it; the lowest of a few
	// readings is the heap without it.
	without := with
	for range 10 {
		time.Sleep(300 * time.Millisecond)
		if _, h := settledMemory(); h < without {
			without = h
		}
	}
	if with < without {
		return 0, replay, nil
	}
	return with - without, replay, nil
}

// scaleLatencies measures, over HTTP with listConcurrency connections
// for --duration each, the first page of the service-account list and a
// decision about the account with id subject.
func (b *bench) scaleLatencies(ctx context.Context, n int, subject string) (list, check benchResult, err error) {
	c := min(b.opts.concurrency, listConcurrency)
	addr := strings.TrimPrefix(b.env.baseURL, "http://")
	lc, err := newWireClient(addr, c, "Authorization", "Bearer "+b.token)
	if err != nil {
		return list, check, err
	}
	defer lc.Close()
	ls, err := runLoad(ctx, c, b.opts.warmup, b.opts.duration, getOK(lc, k0rdent.Base))
	if err != nil {
		return list, check, fmt.Errorf("scale_list_service_accounts_http: %w", err)
	}
	list = resultOf("scale_list_service_accounts_http", "request", c, ls, 1)
	list.Note = fmt.Sprintf("first page at %d more accounts in the tenant, after a restart", n)

	cc, err := newWireClient(addr, c+1, "Authorization", "Bearer "+b.token, "Content-Type", "application/json")
	if err != nil {
		return list, check, err
	}
	defer cc.Close()
	body, _ := json.Marshal(authzCheckJSON{PrincipalID: subject, Action: authz.RolesList})
	if d, err := authzCheckOnce(ctx, cc, c, string(body)); err != nil || !d.Allowed {
		return list, check, fmt.Errorf("scale_authz_check_http: loaded account %s: %+v (%v), want allowed", subject, d, err)
	}
	cs, err := runLoad(ctx, c, b.opts.warmup, b.opts.duration, postOK(cc, decision.CheckPath, string(body)))
	if err != nil {
		return list, check, fmt.Errorf("scale_authz_check_http: %w", err)
	}
	check = resultOf("scale_authz_check_http", "request", c, cs, 1)
	check.Note = fmt.Sprintf("a decision about one of %d loaded accounts, after a restart", n)
	return list, check, nil
}

// settledMemory collects garbage, returns freed memory to the OS and
// reports the process's resident set and live heap, in bytes. The
// resident set is 0 where /proc/self/status is not there to read.
func settledMemory() (rss, heap uint64) {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ = procStatus("VmRSS")
	return rss, ms.HeapAlloc
}

// procStatus returns a memory figure (VmRSS, VmHWM) of this process
// from /proc/self/status, in bytes.
func procStatus(field string) (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return statusField(f, field)
}

// statusField reads a field given in kB from a /proc/<pid>/status file,
// in bytes.
func statusField(r io.Reader, field string) (uint64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		v, ok := bytes.CutPrefix(sc.Bytes(), []byte(field+":"))
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s %q: %w", field, v, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s line", field)
}

func mb(b uint64) float64 { return round(float64(b)/(1<<20), 1) }

// perAccount is the growth from before to after per account, 0 when the
// figure shrank.
func perAccount(after, before uint64, n int) float64 {
	if after <= before || n <= 0 {
		return 0
	}
	return round(float64(after-before)/float64(n), 0)
}
