package projections_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/privacy"
	"github.com/keyhold/keyhold/projections"
)

type fixture struct {
	store    *events.Store
	cmds     *commands.Commands
	db       *sqlx.DB
	dsn      string
	admin    auth.Principal
	progress *projections.Progress
	iam      projections.IAM
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, _ := testenv.Store(t)
	personal := privacy.NewMemory()
	cmds, err := commands.New(st, commands.WithPersonalData(personal))
	testenv.Must(t, err, "commands")
	dsn := testenv.DatabaseURL(t)
	db, err := sqlx.Open("postgres", dsn)
	testenv.Must(t, err, "open db")
	t.Cleanup(func() { db.Close() })
	_, err = cmds.Bootstrap.Handle(context.Background(), commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "acme", Username: "root", Email: "root@acme.test"})
	testenv.Must(t, err, "bootstrap")
	// The operator acting in acme: these tests are about projections, not
	// authorization.
	admin := auth.SystemIn("acme")
	return &fixture{store: st, cmds: cmds, db: db, dsn: dsn, admin: admin, progress: projections.NewProgress(), iam: projections.IAM{Personal: personal}}
}

// start runs a runner until the test ends.
func (f *fixture) start(t *testing.T, opts ...projections.RunnerOption) *projections.Runner {
	t.Helper()
	opts = append([]projections.RunnerOption{projections.WithLockRetry(50 * time.Millisecond)}, opts...)
	r, err := projections.NewRunner(f.db, f.dsn, f.store, f.progress, []projections.Projector{f.iam}, opts...)
	testenv.Must(t, err, "runner")
	ctx, cancel := context.WithCancel(context.Background())
	testenv.Must(t, r.Prepare(ctx), "prepare")
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// workload creates service accounts, credentials, updates and deletions.
func (f *fixture) workload(t *testing.T, n int) uint64 {
	t.Helper()
	ctx := context.Background()
	meta := commands.Meta{Caller: f.admin}
	var last uint64
	for i := 0; i < n; i++ {
		res, err := f.cmds.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: meta, DisplayName: fmt.Sprintf("sa %d", i), Scope: events.Scope{Level: "namespace", Target: fmt.Sprintf("ns%d", i%3)}, Roles: []string{"viewer"}})
		testenv.Must(t, err, "create %d", i)
		id := res.ServiceAccount.ID()
		cred, err := f.cmds.CreateCredential.Handle(ctx, commands.CreateCredential{Meta: meta, ServiceAccountID: id})
		testenv.Must(t, err, "credential %d", i)
		last = cred.Sequence
		switch i % 4 {
		case 1:
			name := fmt.Sprintf("renamed %d", i)
			r, err := f.cmds.UpdateServiceAccount.Handle(ctx, commands.UpdateServiceAccount{Meta: meta, ID: id, DisplayName: &name})
			testenv.Must(t, err, "update %d", i)
			last = r.Sequence
		case 2:
			last, err = f.cmds.DeleteCredential.Handle(ctx, commands.DeleteCredential{Meta: meta, ServiceAccountID: id, CredentialID: cred.Credential.ID()})
			testenv.Must(t, err, "delete credential %d", i)
		case 3:
			last, err = f.cmds.DeleteServiceAccount.Handle(ctx, commands.DeleteServiceAccount{Meta: meta, ID: id})
			testenv.Must(t, err, "delete %d", i)
		}
	}
	return last
}

func (f *fixture) wait(t *testing.T, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	testenv.Must(t, f.progress.Wait(ctx, seq, "iam"), "wait for iam to reach %d", seq)
}

// snapshot returns every read table's rows in a stable order.
func snapshot(t *testing.T, db *sqlx.DB) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	for _, table := range (projections.IAM{}).Tables() {
		rows, err := db.Queryx("SELECT * FROM " + table + " ORDER BY 1, 2")
		testenv.Must(t, err, "select %s", table)
		for rows.Next() {
			m := map[string]any{}
			testenv.Must(t, rows.MapScan(m), "scan")
			for k, v := range m {
				if b, ok := v.([]byte); ok {
					m[k] = string(b)
				}
			}
			out[table] = append(out[table], m)
		}
		rows.Close()
	}
	return out
}

// expectSkipped checks that the one recorded failure is the event at seq
// and that the service accounts around it were applied (sas of them).
func (f *fixture) expectSkipped(t *testing.T, seq uint64, sas int) {
	t.Helper()
	var got uint64
	testenv.Must(t, f.db.Get(&got, "SELECT seq FROM projection_failures"), "the one failure row")
	if got != seq {
		t.Fatalf("failure recorded at %d, want %d", got, seq)
	}
	if n := count(t, f.db, "SELECT count(*) FROM service_accounts"); n != sas {
		t.Fatalf("%d service accounts, want %d", n, sas)
	}
}

func count(t *testing.T, db *sqlx.DB, q string, args ...any) int {
	t.Helper()
	var n int
	testenv.Must(t, db.Get(&n, q, args...), "count %s", q)
	return n
}

func TestLiveProjection(t *testing.T) {
	f := newFixture(t)
	f.start(t)
	f.wait(t, f.workload(t, 8))

	tests := []struct {
		name  string
		query string
		want  int
	}{
		{"tenants", "SELECT count(*) FROM tenants", 1},
		{"users", "SELECT count(*) FROM users WHERE username = 'root'", 1},
		{"admin roles", "SELECT count(*) FROM user_roles", 4},
		{"service accounts without the deleted ones", "SELECT count(*) FROM service_accounts", 6},
		{"renamed", "SELECT count(*) FROM service_accounts WHERE display_name LIKE 'renamed%'", 2},
		{"credentials without the deleted ones", "SELECT count(*) FROM credentials", 4},
		{"no failures", "SELECT count(*) FROM projection_failures", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := count(t, f.db, tt.query); got != tt.want {
				t.Fatalf("%s = %d, want %d", tt.query, got, tt.want)
			}
		})
	}
}

func TestRebuildEqualsLive(t *testing.T) {
	f := newFixture(t)
	r := f.start(t)
	f.wait(t, f.workload(t, 12))
	before := snapshot(t, f.db)

	var reports []projections.RebuildProgress
	testenv.Must(t, r.Rebuild(context.Background(), func(p projections.RebuildProgress) { reports = append(reports, p) }), "rebuild")
	if len(reports) == 0 || !reports[len(reports)-1].Done {
		t.Fatalf("no final progress report: %+v", reports)
	}
	after := snapshot(t, f.db)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("rebuilt tables differ:\nbefore %v\nafter  %v", before, after)
	}
	st, err := r.Status(context.Background())
	testenv.Must(t, err, "status")
	if len(st) != 1 || st[0].Generation != 2 || st[0].Lag != 0 {
		t.Fatalf("status after rebuild = %+v", st)
	}
	// The live projector keeps working on the new generation.
	f.wait(t, f.workload(t, 4))
	if got := count(t, f.db, "SELECT count(*) FROM service_accounts"); got != 12 {
		t.Fatalf("after more work: %d service accounts, want 12", got)
	}
	// The new generation has the same indexes as a live one (they are
	// built apart, after the load).
	indexes := func(db *sqlx.DB, schema string) []string {
		t.Helper()
		var names []string
		testenv.Must(t, db.Select(&names, "SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname", schema), "indexes")
		return names
	}
	fresh := newFixture(t)
	fresh.start(t)
	if got, want := indexes(f.db, "iam_g2"), indexes(fresh.db, "iam_g1"); !reflect.DeepEqual(got, want) || !slices.Contains(got, "service_accounts_target") {
		t.Fatalf("rebuilt generation's indexes %v, a live generation's %v", got, want)
	}
	// and planner statistics from the start, so reads after the switch-over
	// are not planned blind.
	if n := count(t, f.db, "SELECT count(*) FROM pg_stats WHERE schemaname = 'iam_g2' AND tablename = 'service_accounts'"); n == 0 {
		t.Fatal("the rebuilt service_accounts table has no planner statistics")
	}
	var old int
	testenv.Must(t, f.db.Get(&old, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'iam_g1'"), "schemata")
	if old != 0 {
		t.Fatal("old generation schema was not dropped")
	}
}

func TestFailedEventIsRecordedAndSkipped(t *testing.T) {
	f := newFixture(t)
	r := f.start(t)
	ctx := context.Background()
	bad := events.New("acme", "broken", events.System, "", events.ServiceAccountDeleted{})
	bad.Version = 99 // a schema version this binary does not know
	res, err := f.store.Append(ctx, events.Pending{Aggregate: events.AggregateServiceAccount, Envelope: bad})
	testenv.Must(t, err, "append bad event")
	f.wait(t, f.workload(t, 2))

	st, err := r.Status(ctx)
	testenv.Must(t, err, "status")
	if st[0].Failures != 1 || st[0].LastFailure == nil {
		t.Fatalf("status = %+v, want one failure", st[0])
	}
	f.expectSkipped(t, res.Sequence, 2)
	// Ready, degraded by the failure; not ready for a head beyond it.
	head, err := f.store.LastSequence(ctx)
	testenv.Must(t, err, "head")
	if degraded, err := r.Readiness(ctx, f.progress, head); err != nil || !strings.Contains(degraded, "1 event(s) could not be applied") {
		t.Fatalf("readiness = %q, %v; want degraded", degraded, err)
	}
	if _, err := r.Readiness(ctx, f.progress, head+1); err == nil || !strings.Contains(err.Error(), "catching up") {
		t.Fatalf("readiness before reaching the head: %v", err)
	}
}

func TestTwoRunnersOneLeader(t *testing.T) {
	f := newFixture(t)
	a := f.start(t)
	// The second runner has its own progress tracker, like another replica.
	other := &fixture{store: f.store, db: f.db, dsn: f.dsn, progress: projections.NewProgress(), iam: f.iam}
	b := other.start(t)
	seq := f.workload(t, 6)
	f.wait(t, seq)
	other.wait(t, seq)
	if a.Leading("iam") == b.Leading("iam") {
		t.Fatalf("leading: a=%v b=%v, want exactly one", a.Leading("iam"), b.Leading("iam"))
	}
	if got := count(t, f.db, "SELECT count(*) FROM projection_failures"); got != 0 {
		t.Fatalf("%d failures: an event was applied twice", got)
	}
}

func TestRestartResumesFromCheckpoint(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	r, err := projections.NewRunner(f.db, f.dsn, f.store, f.progress, []projections.Projector{f.iam})
	testenv.Must(t, err, "runner")
	testenv.Must(t, r.Prepare(ctx), "prepare")
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	f.wait(t, f.workload(t, 3))
	cancel()
	<-done

	more := f.workload(t, 3) // appended while no projector runs
	r2, err := projections.NewRunner(f.db, f.dsn, f.store, projections.NewProgress(), []projections.Projector{f.iam})
	testenv.Must(t, err, "runner 2")
	testenv.Must(t, r2.Prepare(context.Background()), "prepare 2")
	testenv.Must(t, r2.CatchUp(context.Background()), "catch up")
	st, err := r2.Status(context.Background())
	testenv.Must(t, err, "status")
	if st[0].Checkpoint != more || st[0].Failures != 0 {
		t.Fatalf("status = %+v, want checkpoint %d and no failures", st[0], more)
	}
}

// TestLeaderCatchesUpAfterFallingBehind gives the leader a tiny buffer and
// appends faster than it applies, so the live feed overflows it: it must
// start again from its checkpoint and still apply every event exactly once.
func TestLeaderCatchesUpAfterFallingBehind(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r, err := projections.NewRunner(f.db, f.dsn, f.store, f.progress, []projections.Projector{f.iam},
		projections.WithBatchSize(1), projections.WithLockRetry(50*time.Millisecond))
	testenv.Must(t, err, "runner")
	rctx, cancel := context.WithCancel(ctx)
	testenv.Must(t, r.Prepare(rctx), "prepare")
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	head, err := f.store.LastSequence(ctx)
	testenv.Must(t, err, "head")
	f.wait(t, head)

	const n = 200
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n / 4 {
				id := events.NewID()
				_, err := f.store.Append(ctx, events.Pending{Aggregate: events.AggregateServiceAccount, Expect: true,
					Envelope: events.New("acme", id, events.System, "", events.ServiceAccountCreated{ClientID: "khc-" + id,
						DisplayName: fmt.Sprintf("bulk %d-%d", w, i), Scope: events.Scope{Level: "tenant", Target: "acme"}, Roles: []string{}, Status: "active"})})
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	head, err = f.store.LastSequence(ctx)
	testenv.Must(t, err, "head")
	f.wait(t, head)
	if got := count(t, f.db, "SELECT count(*) FROM service_accounts"); got != n {
		t.Fatalf("%d service accounts, want %d", got, n)
	}
	if got := count(t, f.db, "SELECT count(*) FROM projection_failures"); got != 0 {
		t.Fatalf("%d failures", got)
	}
}

// TestCopyAndInsertWriteTheSameRows fills the tables live (small batches
// go in literal INSERTs) with text that needs escaping, then rebuilds
// (large chunks go through COPY): both must store the same rows.
// TestCopyAndInsertWriteTheSameRows rebuilds (COPY, rows sent to the
// driver in runs of many lines) what the live projector wrote (literal
// INSERTs), with values that need escaping, and compares. The rows span
// several runs, and no batch may fail along the way.
func TestCopyAndInsertWriteTheSameRows(t *testing.T) {
	f := newFixture(t)
	var logs testenv.SyncBuffer
	r := f.start(t, projections.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ctx := context.Background()
	meta := commands.Meta{Caller: f.admin}
	tricky := []string{`tab\tescaped`, "new\nline", `back\slash`, `quote"s and 'apostrophes'`, "two\n\nlines", `\N`, "ünïcødé ✓", "{braces},commas"}
	var last uint64
	for i := range 700 {
		desc := tricky[i%len(tricky)]
		res, err := f.cmds.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: meta, DisplayName: fmt.Sprintf("sa %d", i),
			Description: desc, Scope: events.Scope{Level: "tenant"}, Roles: []string{"auditor", "viewer"}})
		testenv.Must(t, err, "create %d", i)
		last = res.Sequence
	}
	f.wait(t, last)
	before := snapshot(t, f.db)
	testenv.Must(t, r.Rebuild(ctx, nil), "rebuild")
	after := snapshot(t, f.db)
	if !reflect.DeepEqual(before, after) {
		for i := range before["service_accounts"] {
			if i < len(after["service_accounts"]) && !reflect.DeepEqual(before["service_accounts"][i], after["service_accounts"][i]) {
				t.Fatalf("row %d differs:\nlive    %v\nrebuilt %v", i, before["service_accounts"][i], after["service_accounts"][i])
			}
		}
		t.Fatal("rebuilt tables differ from the live ones")
	}
	if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("the projector logged trouble:\n%s", logs.String())
	}
	var got string
	testenv.Must(t, f.db.Get(&got, "SELECT description FROM service_accounts WHERE display_name = 'sa 1'"), "read back")
	if got != tricky[1] {
		t.Fatalf("description read back %q, want %q", got, tricky[1])
	}
}

// TestRejectedStatementIsRecordedAndSkipped covers an event the database
// refuses (a second creation of one service account): its batch fails at
// commit, the event is recorded and skipped, and every other event of the
// batch is applied.
func TestRejectedStatementIsRecordedAndSkipped(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	created := events.ServiceAccountCreated{ClientID: "khc-twice", DisplayName: "twice", Scope: events.Scope{Level: "tenant"}, Roles: []string{"viewer"}, Status: "active"}
	var dup uint64
	for i := range 2 {
		res, err := f.store.Append(ctx, events.Pending{Aggregate: events.AggregateServiceAccount, Envelope: events.New("acme", "twice", events.System, "", created)})
		testenv.Must(t, err, "append creation %d", i)
		dup = res.Sequence
	}
	last := f.workload(t, 3)
	// Started after the appends, the runner sees them all in one batch.
	r := f.start(t)
	f.wait(t, last)

	st, err := r.Status(ctx)
	testenv.Must(t, err, "status")
	if st[0].Failures != 1 {
		t.Fatalf("status = %+v, want one failure", st[0])
	}
	// "twice" plus the workload's three (it deletes only every fourth).
	f.expectSkipped(t, dup, 4)
}

// iamV2 is the IAM projector as a newer binary would carry it.
type iamV2 struct{ projections.IAM }

func (iamV2) Version() int { return projections.IAM{}.Version() + 1 }

// TestRollingUpgradeHandsOver runs an old and a new version of a projector
// against one database, as replicas do during a rolling upgrade: the new
// one rebuilds its tables at start, the old leader stops applying events
// to tables of another version and stands by, the new one takes over, and
// an old binary that starts afterwards refuses to rebuild back down.
func TestRollingUpgradeHandsOver(t *testing.T) {
	f := newFixture(t)
	old := f.start(t)
	f.wait(t, f.workload(t, 3))
	if !old.Leading("iam") {
		t.Fatal("the old runner does not lead")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	progress := projections.NewProgress()
	upgraded, err := projections.NewRunner(f.db, f.dsn, f.store, progress, []projections.Projector{iamV2{f.iam}}, projections.WithLockRetry(50*time.Millisecond))
	testenv.Must(t, err, "new runner")
	testenv.Must(t, upgraded.Prepare(ctx), "prepare the new version (rebuild)")
	done := make(chan struct{})
	go func() { defer close(done); _ = upgraded.Run(ctx) }()
	defer func() { cancel(); <-done }()

	last := f.workload(t, 4)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	testenv.Must(t, progress.Wait(wctx, last, "iam"), "the new version applies events written after the upgrade")
	if old.Leading("iam") || !upgraded.Leading("iam") {
		t.Fatalf("leading: old=%v new=%v, want only the new one", old.Leading("iam"), upgraded.Leading("iam"))
	}
	var version int
	testenv.Must(t, f.db.Get(&version, "SELECT version FROM projection_checkpoints WHERE name = 'iam'"), "checkpoint")
	if want := (iamV2{}).Version(); version != want {
		t.Fatalf("checkpoint version %d, want %d", version, want)
	}
	if got := count(t, f.db, "SELECT count(*) FROM projection_failures"); got != 0 {
		t.Fatalf("%d failures recorded across the hand-over", got)
	}
	if got, want := count(t, f.db, "SELECT count(*) FROM service_accounts"), 6; got != want {
		t.Fatalf("%d service accounts, want %d", got, want)
	}

	late, err := projections.NewRunner(f.db, f.dsn, f.store, projections.NewProgress(), []projections.Projector{f.iam})
	testenv.Must(t, err, "old runner")
	if err := late.Prepare(ctx); !errors.Is(err, projections.ErrVersionMismatch) {
		t.Fatalf("an old binary's Prepare over newer tables: %v, want ErrVersionMismatch", err)
	}
}

// TestUndecodableMessageIsRecordedAndSkipped stores a message that is no
// event in the middle of the log: a runner starting behind it (catch-up
// from the stream) and a rebuild both record it as a failure and apply
// everything around it.
func TestUndecodableMessageIsRecordedAndSkipped(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.workload(t, 2)
	ack, err := f.store.JetStream().Publish(ctx, f.store.SubjectOf("acme", events.AggregateServiceAccount, "junk"), []byte("{not json"))
	testenv.Must(t, err, "publish junk")
	// More than a batch behind, so the runner catches up from the stream.
	last := f.workload(t, 3)
	r := f.start(t, projections.WithBatchSize(2))
	f.wait(t, last)
	want := count(t, f.db, "SELECT count(*) FROM service_accounts")
	if want != 5 {
		t.Fatalf("%d service accounts after catch-up, want 5", want)
	}
	for _, step := range []string{"catch-up", "rebuild"} {
		if step == "rebuild" {
			testenv.Must(t, r.Rebuild(ctx, nil), "rebuild")
		}
		t.Run(step, func(t *testing.T) { f.expectSkipped(t, ack.Sequence, want) })
	}
}

// divider is the IAM projector with a statement that divides by zero for
// the service account "div0", like the division the checkpoint fence uses.
type divider struct{ projections.IAM }

func (d divider) Apply(ctx context.Context, tx projections.Tx, batch []events.Envelope) error {
	for _, env := range batch {
		if env.Subject == "div0" {
			if _, err := tx.ExecContext(ctx, "SELECT 1 / 0"); err != nil {
				return err
			}
		}
	}
	return d.IAM.Apply(ctx, tx, batch)
}

// TestDivisionByZeroIsNotTheFence: a projector statement that divides by
// zero fails like any other (recorded and skipped) instead of passing for
// the checkpoint fence, which would retry the batch forever.
func TestDivisionByZeroIsNotTheFence(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := projections.NewRunner(f.db, f.dsn, f.store, f.progress, []projections.Projector{divider{f.iam}}, projections.WithLockRetry(50*time.Millisecond))
	testenv.Must(t, err, "runner")
	testenv.Must(t, r.Prepare(ctx), "prepare")
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	created := events.ServiceAccountCreated{ClientID: "khc-div0", DisplayName: "div0", Scope: events.Scope{Level: "tenant"}, Roles: []string{"viewer"}, Status: "active"}
	res, err := f.store.Append(ctx, events.Pending{Aggregate: events.AggregateServiceAccount, Envelope: events.New("acme", "div0", events.System, "", created)})
	testenv.Must(t, err, "append div0")
	f.wait(t, f.workload(t, 2))
	f.expectSkipped(t, res.Sequence, 2)
}
