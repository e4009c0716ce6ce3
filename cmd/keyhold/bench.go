package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// benchOptions are the flags of keyhold bench.
type benchOptions struct {
	duration      time.Duration
	warmup        time.Duration
	rounds        int
	concurrency   int
	quick         bool
	rebuildEvents int
	listAccounts  int
	// roles is how many roles the role search scenario pages through.
	roles int
	// scale, when positive, replaces the scenarios with the scale run:
	// that many service accounts loaded, then memory, restart and latency.
	scale      int
	cpuProfile string
	// profileScenario limits the CPU profile to the measured part of one
	// scenario; empty profiles the whole run.
	profileScenario string
	// only names the pairs to run (by either scenario of a pair); empty
	// runs them all.
	only []string
}

func (o benchOptions) validate() error {
	switch {
	case o.duration <= 0 || o.duration > 10*time.Minute:
		return fmt.Errorf("--duration must be between 1ns and 10m, not %s", o.duration)
	case o.warmup < 0 || o.warmup > time.Minute:
		return fmt.Errorf("--warmup must be between 0 and 1m, not %s", o.warmup)
	case o.rounds < 1 || o.rounds > 100:
		return fmt.Errorf("--rounds must be between 1 and 100, not %d", o.rounds)
	case o.concurrency < 1 || o.concurrency > 1024:
		return fmt.Errorf("--concurrency must be between 1 and 1024, not %d", o.concurrency)
	case o.rebuildEvents < 0 || o.rebuildEvents > 10_000_000:
		return fmt.Errorf("--rebuild-events must be between 0 and 10000000, not %d", o.rebuildEvents)
	case o.roles < benchRolesPage || o.roles > 1_000_000:
		return fmt.Errorf("--roles must be between %d and 1000000, not %d", benchRolesPage, o.roles)
	case o.listAccounts < 1 || o.listAccounts > 10_000_000:
		return fmt.Errorf("--list-accounts must be between 1 and 10000000, not %d", o.listAccounts)
	case o.scale < 0 || o.scale > maxScaleAccounts:
		return fmt.Errorf("--scale must be between 0 (off) and %d, not %d", maxScaleAccounts, o.scale)
	case o.scale > 0 && o.profileScenario != "":
		return errors.New("--cpuprofile-scenario profiles a scenario; --scale runs none (use --cpuprofile)")
	case o.profileScenario != "" && o.cpuProfile == "":
		return errors.New("--cpuprofile-scenario needs --cpuprofile")
	case o.profileScenario != "" && !slices.Contains(scenarioNames(), o.profileScenario):
		return fmt.Errorf("--cpuprofile-scenario: no scenario %q (one of %v)", o.profileScenario, scenarioNames())
	case o.scale > 0 && len(o.only) > 0:
		return errors.New("--only picks scenarios; --scale runs none")
	}
	for _, name := range o.only {
		if !slices.Contains(scenarioNames(), name) {
			return fmt.Errorf("--only: no scenario %q (one of %v)", name, scenarioNames())
		}
	}
	if o.profileScenario != "" && len(o.only) > 0 && !o.runs(o.profileScenario) {
		return fmt.Errorf("--cpuprofile-scenario %s is not among --only %v", o.profileScenario, o.only)
	}
	return nil
}

// runs reports whether the pair holding scenario name runs.
func (o benchOptions) runs(name string) bool {
	if len(o.only) == 0 {
		return true
	}
	for _, p := range benchPairs {
		if p.baseline == name || p.measured == name {
			return slices.Contains(o.only, p.baseline) || slices.Contains(o.only, p.measured)
		}
	}
	return false
}

func newBench(cfg *config) *cobra.Command {
	o := benchOptions{duration: 5 * time.Second, warmup: time.Second, rounds: 5, concurrency: 32, rebuildEvents: 50_000, listAccounts: 200_000, roles: 10_000}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput against baselines from the same run",
		Long: `Measure Keyhold's hot paths, each against a baseline measured in the same run on the
same machine, so the ratios hold on a noisy machine where absolute figures do not.

The bench builds a private environment and removes it at the end, also on error or
Ctrl-C: a temporary data dir with an embedded NATS server on a random port, a temporary
database keyhold_bench_<random> on the --database-url server (only the server is used),
and the fully wired server on a random local port.

Scenarios come in pairs, a baseline and the scenario measured against it
(C = --concurrency):
  jetstream_occ_publish        conditional JetStream publishes (expected subject
                               sequence 0, a new subject each) through events.Store.Append
                               from C publishers
  create_service_account_http  POST /v1/regions/global/iam/service-accounts over HTTP
                               with C connections, each answered after the projections
                               applied it (target ratio >= 0.2)
  oauth2_token_floor           the minimal token handler (oauth2.NewFloor) over HTTP
  oauth2_token_http            POST /oauth2/token of the wired server, same credential
                               and concurrency (target ratio >= 0.7)
  postgres_copy_baseline       COPY into a service_accounts-shaped table, 5000 rows a
                               transaction with synchronous_commit off, in rows/s
  projection_rebuild           projections rebuild of the whole log (at least
                               --rebuild-events events) in events/s (target >= 0.5)
  list_first_page_query        query.ListServiceAccounts in process, first page, with a
                               tenant of at least --list-accounts accounts, from
                               min(C, 8) workers
  list_service_accounts_http   GET .../service-accounts, the same page over HTTP (target
                               ratio >= 0.5; its note also checks p99 < 5 ms)
  list_no_match_query          the same with ?status=disabled, which matches no account
  list_service_accounts_no_match_http
                               its HTTP side (target ratio >= 0.5, p99 < 5 ms)
  audit_aggregate_query        query.Audit in process: one service account's history
  audit_aggregate_http         GET /v1/audit/events?aggregate=ID (target ratio >= 0.5,
                               p99 < 5 ms)
  bearer_auth_http             the administrator's history over HTTP with a personal
                               API token (Bearer)
  basic_auth_http              the same request with HTTP Basic, username and password,
                               the password check cached after the first (target
                               ratio >= 0.7)
  authz_check_floor            a handler on the server's router stack (request id,
                               logging, metrics) that decodes the decision API's JSON
                               body and answers a constant decision, C connections
  authz_check_http             POST /v1/authz/check of the wired server with the same
                               body: API token authentication, the subject's lookup
                               and the decision (target ratio >= 0.8)
  kestra_roles_search_query    query.SearchRoles in process: a page of 10 from a tenant
                               of --roles roles (10000; appended in atomic batches of
                               100), from min(C, 8) workers
  kestra_roles_search_http     GET /api/v1/{tenant}/roles/search?size=10, the same page
                               over HTTP (target ratio >= 0.5, p99 < 5 ms)
A pair alternates in --rounds rounds that share --duration (the rebuild runs once a
round), so a change in the machine's background load hits both sides alike. Before
each side of the rebuild pair the COPY table is emptied and Postgres is asked for a
CHECKPOINT, so neither side pays for the other's WAL. The HTTP scenarios use a lean
HTTP/1.1 client (one keep-alive connection per worker, like wrk) on both sides.

With --scale N the scenarios above do not run. Instead N service accounts, with one
client secret each, are published straight to the stream (async publishes, progress on
stderr), and once the directory and the projections applied them the run reports: the
process's RSS before, after catching up and after a restart (NATS, directory and
projector share the process), the live heap per account, the directory's bytes per
account over JetStream's own (the heap a second directory folded from the same log
holds; target <= 700), the restart-to-ready time (NATS recovering the data dir to
/readyz ready), and the p50/p99 of the first list page and of one decision about a
loaded account, over HTTP with min(C, 8) connections for --duration each.
make bench-scale runs it with N = 1000000 (SCALE=N to change).

Each result is one JSON object a line on stdout: name, ops_per_s, p50_ms, p99_ms,
concurrency, unit, ops, errors and, against a baseline, baseline, ratio, target,
target_met and round_ratios. Latencies are per operation; for COPY per 5000-row
transaction, for a rebuild per chunk (500 events at first, doubling up to 5000).
Progress goes to stderr.`,
		Example: `  keyhold bench --quick
  keyhold bench --scale 200000
  keyhold bench --only list_service_accounts_http,audit_aggregate_http
  keyhold bench --duration 10s --concurrency 16`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fl := cmd.Flags()
			if o.quick {
				if !fl.Changed("duration") {
					o.duration = time.Second
				}
				if !fl.Changed("warmup") {
					o.warmup = 200 * time.Millisecond
				}
				if !fl.Changed("rebuild-events") {
					o.rebuildEvents = 10_000
				}
				if !fl.Changed("list-accounts") {
					o.listAccounts = 5_000
				}
				if !fl.Changed("roles") {
					o.roles = 2_000
				}
				if !fl.Changed("rounds") {
					o.rounds = 2
				}
			}
			if o.profileScenario != "" {
				// A profile covers one stretch of time: no interleaving.
				o.rounds = 1
			}
			if err := o.validate(); err != nil {
				return err
			}
			bc := *cfg
			// Per-run noise (NATS start, database created) only distracts
			// from the figures, unless asked for.
			if f := cmd.Flag("log-level"); (f == nil || !f.Changed) && os.Getenv("KEYHOLD_LOG_LEVEL") == "" {
				bc.logLevel = "warn"
			}
			return runBench(cmd.Context(), &bc, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&o.duration, "duration", o.duration, "measured time of each scenario, shared by its --rounds")
	fl.DurationVar(&o.warmup, "warmup", o.warmup, "unmeasured warm-up before each load scenario")
	fl.IntVar(&o.rounds, "rounds", o.rounds, "rounds a scenario and its baseline alternate in, splitting --duration")
	fl.IntVar(&o.concurrency, "concurrency", o.concurrency, "concurrent publishers or HTTP connections")
	fl.BoolVar(&o.quick, "quick", false, "a smoke run: 1s scenarios in 2 rounds, 200ms warm-ups, 10000 rebuild events, 5000 list accounts, 2000 roles (explicit flags win)")
	fl.IntVar(&o.rebuildEvents, "rebuild-events", o.rebuildEvents, "events the log holds at least before the rebuild (more are generated if needed)")
	fl.IntVar(&o.roles, "roles", o.roles, "roles the tenant holds before the role search scenario")
	fl.IntVar(&o.listAccounts, "list-accounts", o.listAccounts, "service accounts the tenant holds at least before the list scenarios (more are generated if needed)")
	fl.IntVar(&o.scale, "scale", 0, fmt.Sprintf("instead of the scenarios, load this many service accounts (make bench-scale: %d) and report memory, restart-to-ready and p99s at that size", DefaultScaleAccounts))
	fl.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run (load generator and server together) to this file")
	fl.StringVar(&o.profileScenario, "cpuprofile-scenario", "", "profile only the measured part of this scenario (implies --rounds 1)")
	fl.StringSliceVar(&o.only, "only", nil, "run only the pairs holding these scenarios (comma-separated names from the list above)")
	return cfg.use(cmd, "database-url", "log-level", "read-wait")
}

// benchResult is one line of the bench's output.
type benchResult struct {
	Name        string  `json:"name"`
	OpsPerS     float64 `json:"ops_per_s"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	Concurrency int     `json:"concurrency"`
	// Unit is what one op is: request, publish, row or event.
	Unit   string `json:"unit"`
	Ops    int    `json:"ops"`
	Errors int    `json:"errors"`
	// ReadBehind counts writes answered before the read side caught up.
	ReadBehind int      `json:"read_behind,omitempty"`
	Baseline   string   `json:"baseline,omitempty"`
	Ratio      *float64 `json:"ratio,omitempty"`
	Target     *float64 `json:"target,omitempty"`
	TargetMet  *bool    `json:"target_met,omitempty"`
	// RoundRatios are the ratios of the single rounds the scenario and its
	// baseline alternated in: their spread shows the machine's noise.
	RoundRatios []float64 `json:"round_ratios,omitempty"`
	Note        string    `json:"note,omitempty"`
}

// resultOf turns load statistics into a result; scale multiplies the
// throughput (rows per chunk for chunked scenarios).
func resultOf(name, unit string, concurrency int, st loadStats, scale int) benchResult {
	return benchResult{
		Name: name, Unit: unit, Concurrency: concurrency,
		OpsPerS: round(st.opsPerSecond()*float64(scale), 1),
		P50ms:   ms(st.percentile(0.50)), P99ms: ms(st.percentile(0.99)),
		Ops: st.ops * scale, Errors: st.errors,
	}
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

// benchPair is a scenario measured against its baseline. run returns the
// baseline's result, the scenario's, and the scenario/baseline ratio of
// each round the two alternated in.
type benchPair struct {
	baseline, measured string
	target             float64
	run                func(b *bench, ctx context.Context) (base, meas benchResult, rounds []float64, err error)
}

// benchPairs run in this order.
var benchPairs = []benchPair{
	{baseline: "jetstream_occ_publish", measured: "create_service_account_http", target: 0.2, run: (*bench).writePath},
	{baseline: "oauth2_token_floor", measured: "oauth2_token_http", target: 0.7, run: (*bench).tokenPath},
	{baseline: "postgres_copy_baseline", measured: "projection_rebuild", target: 0.5, run: (*bench).rebuildPath},
	{baseline: "list_first_page_query", measured: "list_service_accounts_http", target: 0.5, run: (*bench).listFirstPage},
	{baseline: "list_no_match_query", measured: "list_service_accounts_no_match_http", target: 0.5, run: (*bench).listNoMatch},
	{baseline: "audit_aggregate_query", measured: "audit_aggregate_http", target: 0.5, run: (*bench).auditAggregate},
	{baseline: "bearer_auth_http", measured: "basic_auth_http", target: 0.7, run: (*bench).basicAuth},
	{baseline: "authz_check_floor", measured: "authz_check_http", target: 0.8, run: (*bench).authzCheck},
	{baseline: "kestra_roles_search_query", measured: "kestra_roles_search_http", target: 0.5, run: (*bench).kestraRolesSearch},
}

// scenarioNames lists every scenario in output order.
func scenarioNames() []string {
	var out []string
	for _, p := range benchPairs {
		out = append(out, p.baseline, p.measured)
	}
	return out
}

// bench is one run of keyhold bench.
type bench struct {
	opts    benchOptions
	env     *benchEnv
	stderr  io.Writer
	results map[string]benchResult

	// profiling is the scenario whose measured part is profiled into
	// profile, if any.
	profiling string
	profile   *os.File

	// Set up once: the bench tenant, its administrator and API token.
	tenant  string
	adminID string
	token   string
	// A service account credential for the token scenarios, and the
	// account's id, the subject of the authz check scenarios.
	clientID, secret, clientSA string
	// noCheckpoint is set once CHECKPOINT was refused.
	noCheckpoint bool
	// listAccounts is how many accounts the list scenarios read from, once
	// filled.
	listAccounts int
}

// runBench sets up the private environment, runs every scenario and
// prints each result as it is measured; the environment is removed on
// every exit path.
func runBench(ctx context.Context, cfg *config, o benchOptions, stdout, stderr io.Writer) (err error) {
	started := time.Now()
	// A reader that goes away (bench | head -1) must not kill the process
	// before it dropped its database: with SIGPIPE handled, writes to the
	// broken pipe fail with EPIPE instead, and the run ends through its
	// cleanup.
	sigpipe := make(chan os.Signal, 1)
	signal.Notify(sigpipe, syscall.SIGPIPE)
	defer signal.Stop(sigpipe)
	var profile *os.File
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if o.profileScenario == "" {
			if err := pprof.StartCPUProfile(f); err != nil {
				return fmt.Errorf("--cpuprofile: %w", err)
			}
			defer pprof.StopCPUProfile()
		} else {
			// Started and stopped around the scenario's measured part.
			profile = f
		}
	}
	be, err := newBenchEnv(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := be.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("bench cleanup: %w", cerr))
		}
	}()
	enc := json.NewEncoder(stdout)
	b := &bench{opts: o, env: be, stderr: stderr, results: map[string]benchResult{},
		profiling: o.profileScenario, profile: profile}
	if err := b.setup(ctx); err != nil {
		return err
	}
	if o.scale > 0 {
		return b.runScale(ctx, o.scale, enc)
	}
	for _, pair := range benchPairs {
		if !o.runs(pair.measured) {
			continue
		}
		fmt.Fprintf(stderr, "bench: %s against %s ...\n", pair.measured, pair.baseline)
		base, meas, rounds, err := pair.run(b, ctx)
		if err != nil {
			return fmt.Errorf("bench %s: %w", pair.measured, err)
		}
		base.Name, meas.Name = pair.baseline, pair.measured
		meas.Baseline = pair.baseline
		if base.OpsPerS > 0 {
			ratio := round(meas.OpsPerS/base.OpsPerS, 3)
			met := ratio >= pair.target
			target := pair.target
			meas.Ratio, meas.Target, meas.TargetMet = &ratio, &target, &met
			meas.RoundRatios = rounds
		}
		for _, r := range []benchResult{base, meas} {
			if r.Errors > 0 {
				fmt.Fprintf(stderr, "bench: %s: %d operations failed\n", r.Name, r.Errors)
			}
			b.results[r.Name] = r
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
	}
	b.summary(time.Since(started))
	return nil
}

// measure runs fn, the measured part of scenario name, under the CPU
// profiler when that scenario was asked for.
func (b *bench) measure(name string, fn func() error) error {
	if b.profiling != name || b.profile == nil {
		return fn()
	}
	if err := pprof.StartCPUProfile(b.profile); err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	defer pprof.StopCPUProfile()
	return fn()
}

// summary prints a table of the results to stderr.
func (b *bench) summary(elapsed time.Duration) {
	tw := tabwriter.NewWriter(b.stderr, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SCENARIO\tOPS/S\tUNIT\tP50 MS\tP99 MS\tRATIO\tTARGET\t")
	for _, name := range scenarioNames() {
		r, ok := b.results[name]
		if !ok {
			continue
		}
		ratio, target := "-", "-"
		if r.Ratio != nil {
			ratio = fmt.Sprintf("%.3f", *r.Ratio)
			met := "missed"
			if *r.TargetMet {
				met = "met"
			}
			target = fmt.Sprintf(">= %.1f %s", *r.Target, met)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.3f\t%.3f\t%s\t%s\t\n", r.Name, r.OpsPerS, r.Unit, r.P50ms, r.P99ms, ratio, target)
	}
	_ = tw.Flush()
	fmt.Fprintf(b.stderr, "bench: done in %s\n", elapsed.Round(100*time.Millisecond))
}
