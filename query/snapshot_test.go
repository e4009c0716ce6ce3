package query_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/privacy"
	"github.com/keyhold/keyhold/query"
)

// Secrets of the credentials and API tokens in history.
var (
	liveSecret    = auth.NewSecret(auth.PrefixClientSecret)
	deletedSecret = auth.NewSecret(auth.PrefixClientSecret)
	revokedToken  = auth.NewSecret(auth.PrefixAPIToken)
)

// history appends a log with every kind of event the directory folds,
// including ones that undo earlier ones, and returns its last sequence.
func history(t *testing.T, st *events.Store) uint64 {
	t.Helper()
	ctx := context.Background()
	var last uint64
	put := func(agg, tenant, subject string, e events.Event) {
		t.Helper()
		res, err := st.Append(ctx, events.Pending{Aggregate: agg, Envelope: events.New(tenant, subject, events.System, "", e)})
		testenv.Must(t, err, "append %s", e.EventType())
		last = res.Sequence
	}
	verifier := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	later := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	ns := events.Scope{Level: events.ScopeNamespace, Target: "team.a"}
	tenantScope := events.Scope{Level: events.ScopeTenant, Target: "acme"}
	const sa, sb, sc, named, u1, u2, u3, g1 = "sa-a", "sa-b", "sa-c", "sa-named", "user-1", "user-2", "user-3", "group-1"

	put(events.AggregateTenant, "acme", "acme", events.TenantCreated{})
	put(events.AggregateTenant, "beta", "beta", events.TenantCreated{})
	rules := []events.Rule{{Effect: "allow", Actions: []string{"iam.serviceAccounts.list"}}, {Effect: "deny", Actions: []string{"iam.*"}, Resources: []string{"/x/*"}}}
	put(events.AggregateRole, "acme", "reader", events.RoleCreated{Name: "reader", Rules: rules})
	put(events.AggregateRole, "acme", "member", events.RoleCreated{Name: "member", Default: true, Rules: rules[:1]})
	put(events.AggregateRole, "acme", "gone", events.RoleCreated{Name: "gone", Rules: rules[:1]})
	renamed, def := "readers", true
	put(events.AggregateRole, "acme", "reader", events.RoleUpdated{Name: &renamed, Default: &def})
	put(events.AggregateRole, "acme", "gone", events.RoleDeleted{})

	put(events.AggregateUser, events.InstanceTenant, u1, events.UserCreated{Personal: &events.Personal{Username: "Ann", Email: "ann@acme.test"}, Status: events.UserStatusActive, PasswordVerifier: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"})
	put(events.AggregateUser, events.InstanceTenant, u2, events.UserCreated{Personal: &events.Personal{Username: "bob", Email: "bob@acme.test"}, Status: events.UserStatusActive})
	put(events.AggregateUser, events.InstanceTenant, u1, events.UserUpdated{Personal: &events.Personal{Username: "ann", Email: "ann@beta.test"}})
	put(events.AggregateUser, events.InstanceTenant, u1, events.UserTenantAccessGranted{Tenant: "acme"})
	put(events.AggregateUser, events.InstanceTenant, u1, events.UserTenantAccessGranted{Tenant: "beta"})
	put(events.AggregateUser, events.InstanceTenant, u2, events.UserTenantAccessGranted{Tenant: "acme"})
	put(events.AggregateUser, events.InstanceTenant, u1, events.UserRoleGranted{Role: "tenant-admin", Tenant: "acme", Scope: tenantScope})
	put(events.AggregateUser, events.InstanceTenant, u1, events.UserRoleGranted{Role: "viewer", Tenant: "acme", Scope: ns})
	put(events.AggregateUser, events.InstanceTenant, u1, events.UserRoleGranted{Role: auth.RoleSuperadmin, Scope: events.Scope{Level: events.ScopeInstance}})
	put(events.AggregateUser, events.InstanceTenant, u1, events.UserRoleRevoked{Role: "viewer", Tenant: "acme", Scope: ns})
	put(events.AggregateUser, events.InstanceTenant, u1, events.PasswordChanged{Verifier: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdDI$aGFzaDI"})
	put(events.AggregateUser, events.InstanceTenant, u1, events.APITokenIssued{TokenID: "tok-1", Verifier: verifier("t1"), ExpiresAt: &later})
	put(events.AggregateUser, events.InstanceTenant, u1, events.APITokenIssued{TokenID: "tok-2", Verifier: auth.Verifier(revokedToken)})
	put(events.AggregateUser, events.InstanceTenant, u1, events.APITokenRevoked{TokenID: "tok-2"})
	put(events.AggregateUser, events.InstanceTenant, u2, events.UserDisabled{})
	put(events.AggregateUser, events.InstanceTenant, u2, events.UserEnabled{})
	put(events.AggregateUser, events.InstanceTenant, u2, events.UserTenantAccessRevoked{Tenant: "acme"})
	put(events.AggregateUser, events.InstanceTenant, u2, events.PersonalDataErased{})
	put(events.AggregateUser, events.InstanceTenant, u3, events.UserCreated{Personal: &events.Personal{Username: "cy", Email: "cy@acme.test"}, Status: events.UserStatusActive})
	put(events.AggregateUser, events.InstanceTenant, u3, events.UserTenantAccessGranted{Tenant: "acme"})
	put(events.AggregateBinding, "acme", "bind-user3", events.BindingCreated{Role: "reader", SubjectKind: events.SubjectUser, SubjectID: u3, Scope: ns})

	for _, id := range []string{sa, sb, sc} {
		put(events.AggregateServiceAccount, "acme", id, events.ServiceAccountCreated{ClientID: auth.PrefixClientID + id, Scope: ns, Roles: []string{"viewer", "reader"}, Status: "active"})
	}
	put(events.AggregateServiceAccount, "acme", named, events.ServiceAccountCreated{Name: "ci-bot", ClientID: "custom-client", Scope: tenantScope, Roles: []string{"tenant-admin"}, Status: "active"})
	put(events.AggregateServiceAccount, "beta", "sa-beta", events.ServiceAccountCreated{ClientID: auth.PrefixClientID + "sa-beta", Scope: events.Scope{Level: events.ScopeTenant, Target: "beta"}, Roles: []string{"viewer"}, Status: "active"})
	put(events.AggregateServiceAccount, "acme", sa, events.CredentialCreated{CredentialID: "cred-1", Verifier: auth.Verifier(deletedSecret), ExpiresAt: later})
	put(events.AggregateServiceAccount, "acme", sa, events.CredentialCreated{CredentialID: "cred-2", Verifier: auth.Verifier(liveSecret), ExpiresAt: later})
	put(events.AggregateServiceAccount, "acme", sa, events.CredentialDeleted{CredentialID: "cred-1"})
	put(events.AggregateServiceAccount, "acme", sa, events.CredentialCreated{CredentialID: "cred-bad", Verifier: "not hex"})
	put(events.AggregateServiceAccount, "acme", sa, events.AccessTokenRevoked{TokenID: "jwt-1", ExpiresAt: later})
	put(events.AggregateServiceAccount, "acme", sa, events.AccessTokenRevoked{TokenID: "jwt-2", ExpiresAt: later.Add(time.Hour)})
	put(events.AggregateServiceAccount, "acme", sa, events.AccessTokensInvalidated{})
	disabled, fewer := "disabled", []string{"viewer"}
	put(events.AggregateServiceAccount, "acme", sb, events.ServiceAccountUpdated{Status: &disabled})
	put(events.AggregateServiceAccount, "acme", sb, events.ServiceAccountUpdated{Roles: &fewer})
	put(events.AggregateServiceAccount, "acme", sc, events.APITokenIssued{TokenID: "tok-sa", PrincipalKind: events.SubjectServiceAccount, Verifier: verifier("t3")})
	put(events.AggregateServiceAccount, "acme", named, events.APITokenIssued{TokenID: "tok-named", PrincipalKind: events.SubjectServiceAccount, Verifier: verifier("t4")})
	put(events.AggregateBinding, "acme", "bind-sa", events.BindingCreated{Role: "reader", SubjectKind: events.SubjectServiceAccount, SubjectID: sc, Scope: tenantScope})
	put(events.AggregateBinding, "acme", "bind-sa2", events.BindingCreated{Role: "member", SubjectKind: events.SubjectServiceAccount, SubjectID: sa, Scope: ns})
	put(events.AggregateBinding, "acme", "bind-sa2", events.BindingDeleted{})
	put(events.AggregateBinding, "acme", "bind-user", events.BindingCreated{Role: "reader", SubjectKind: events.SubjectUser, SubjectID: u1, Scope: ns})
	put(events.AggregateBinding, "acme", "bind-user2", events.BindingCreated{Role: "member", SubjectKind: events.SubjectUser, SubjectID: u1, Scope: tenantScope})
	put(events.AggregateBinding, "acme", "bind-group", events.BindingCreated{Role: "reader", SubjectKind: events.SubjectGroup, SubjectID: g1, Scope: tenantScope})
	put(events.AggregateGroup, "acme", g1, events.GroupMemberSet{MemberKind: events.SubjectUser, MemberID: u1, Membership: events.MembershipOwner})
	put(events.AggregateGroup, "acme", g1, events.GroupMemberSet{MemberKind: events.SubjectServiceAccount, MemberID: sa, Membership: events.MembershipMember})
	put(events.AggregateGroup, "acme", g1, events.GroupMemberSet{MemberKind: events.SubjectServiceAccount, MemberID: sb, Membership: events.MembershipMember})
	put(events.AggregateGroup, "acme", g1, events.GroupMemberRemoved{MemberID: sb})
	put(events.AggregateGroup, "acme", "group-2", events.GroupMemberSet{MemberKind: events.SubjectUser, MemberID: u1, Membership: events.MembershipMember})
	put(events.AggregateGroup, "acme", "group-2", events.GroupDeleted{})
	put(events.AggregateServiceAccount, "acme", sc, events.ServiceAccountDeleted{})
	put(events.AggregateTenant, "beta", "beta", events.TenantDeleted{})
	return last
}

// replayed is a stream holding history and a directory that replayed it.
type replayed struct {
	st     *events.Store
	stream string // the stream's identity
	last   uint64
	full   *query.Directory
}

func replayHistory(t *testing.T) replayed {
	t.Helper()
	st, _ := testenv.Store(t)
	stream, err := st.Identity(context.Background())
	testenv.Must(t, err, "identity")
	r := replayed{st: st, stream: stream, last: history(t, st), full: query.NewDirectory()}
	runToEnd(t, r.full, st)
	return r
}

func snapshotOf(t *testing.T, d *query.Directory, stream string) []byte {
	t.Helper()
	var b bytes.Buffer
	testenv.Must(t, d.WriteSnapshot(&b, stream), "write snapshot")
	return b.Bytes()
}

func runToEnd(t *testing.T, d *query.Directory, st *events.Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ready, err := d.Run(ctx, st, nil)
	testenv.Must(t, err, "run")
	waitClosed(t, ready)
}

// A directory loaded from a snapshot taken at any point of the log and
// then following the rest holds what one that replayed the whole log
// holds, byte for byte, logins included.
func TestSnapshotAndTheRestEqualAReplay(t *testing.T) {
	r := replayHistory(t)
	st, stream, last, full := r.st, r.stream, r.last, r.full
	ctx := context.Background()
	want := snapshotOf(t, full, stream)
	if n := len(query.Logins(full)); n != 4 {
		t.Fatalf("the replay has %d logins, want ann's and cy's", n)
	}
	if len(full.Failures()) == 0 {
		t.Fatal("the malformed verifier left no failure")
	}

	for cut := uint64(0); cut <= last; cut++ {
		part := query.NewDirectory()
		err := st.Read(ctx, events.Filter{StartSeq: 1}, func(env events.Envelope) error {
			if env.Sequence > cut {
				return events.ErrStop
			}
			part.Apply(env)
			return nil
		})
		if err != nil && !errors.Is(err, events.ErrStop) {
			t.Fatalf("read: %v", err)
		}
		loaded := query.NewDirectory()
		testenv.Must(t, loaded.LoadSnapshot(ctx, bytes.NewReader(snapshotOf(t, part, stream)), st, stream), "load at %d", cut)
		if got := loaded.Sequence(); got != part.Sequence() {
			t.Fatalf("cut %d: loaded at %d, want %d", cut, got, part.Sequence())
		}
		runToEnd(t, loaded, st)
		if got := snapshotOf(t, loaded, stream); !bytes.Equal(got, want) {
			t.Fatalf("cut %d: the loaded directory's snapshot differs from the replay's", cut)
		}
		if got, want := query.Dump(loaded), query.Dump(full); got != want {
			t.Fatalf("cut %d: the loaded directory differs from the replay:\n%s\nwant\n%s", cut, got, want)
		}
	}

	// What it answers, not only what it holds.
	loaded := query.NewDirectory()
	testenv.Must(t, loaded.LoadSnapshot(ctx, bytes.NewReader(want), st, stream), "load")
	runToEnd(t, loaded, st)
	now := time.Now()
	if _, err := loaded.AuthenticateClient(auth.PrefixClientID+"sa-a", liveSecret, now); err != nil {
		t.Fatalf("a live credential after loading: %v", err)
	}
	if _, err := loaded.AuthenticateClient(auth.PrefixClientID+"sa-a", deletedSecret, now); !errors.Is(err, query.ErrInvalidClient) {
		t.Fatalf("a deleted credential after loading: %v", err)
	}
	if _, err := loaded.APITokenPrincipal(revokedToken, now); err == nil {
		t.Fatal("a revoked API token authenticates after loading")
	}
	claims := func(id string, gen uint64) auth.AccessClaims {
		return auth.AccessClaims{Subject: "sa-a", Tenant: "acme", ClientID: auth.PrefixClientID + "sa-a", CredentialID: "cred-2",
			ID: id, Generation: gen, Expiry: now.Add(time.Hour)}
	}
	for _, tt := range []struct {
		name string
		c    auth.AccessClaims
		ok   bool
	}{{"current", claims("jwt-ok", 1), true}, {"revoked", claims("jwt-1", 1), false}, {"an older generation", claims("jwt-old", 0), false}} {
		_, ferr := full.AccessTokenPrincipal(tt.c, now)
		_, lerr := loaded.AccessTokenPrincipal(tt.c, now)
		if (ferr == nil) != tt.ok || (lerr == nil) != tt.ok {
			t.Errorf("access token %s: replay %v, loaded %v, want accepted %v", tt.name, ferr, lerr, tt.ok)
		}
	}
	if got, want := loaded.Tenants(), full.Tenants(); !equalStrings(got, want) {
		t.Fatalf("tenants %v, want %v", got, want)
	}
	at := authz.Scope{Tenant: "acme", Node: "team.a"}
	for _, tt := range []struct {
		principal, resource string
		want                bool
	}{{"sa-a", "", true}, {"sa-a", "/x/y", false}, {"user-3", "", true}, {"user-2", "", false}} {
		req := authz.Request{Action: "iam.serviceAccounts.list", Resource: tt.resource, Scope: at}
		if got, want := loaded.Authorizer().Can(tt.principal, req), full.Authorizer().Can(tt.principal, req); got != want || got.Allowed != tt.want {
			t.Fatalf("%s on %q: loaded %+v, replayed %+v, want allowed %v", tt.principal, tt.resource, got, want, tt.want)
		}
	}
}

// A snapshot of another stream, of a log it runs ahead of, or cut short is
// refused, and the directory stays new: a replay from the start follows.
func TestSnapshotRefused(t *testing.T) {
	r := replayHistory(t)
	st, stream, full := r.st, r.stream, r.full
	ctx := context.Background()
	snap := snapshotOf(t, full, stream)
	shorter, _ := testenv.Store(t)
	other, err := shorter.Identity(ctx)
	testenv.Must(t, err, "identity")
	_, err = shorter.Append(ctx, events.Pending{Aggregate: events.AggregateTenant, Envelope: events.New("acme", "acme", events.System, "", events.TenantCreated{})})
	testenv.Must(t, err, "append")

	tests := []struct {
		name     string
		snapshot []byte
		log      *events.Store
		stream   string
		want     error
	}{
		{"another stream", snap, shorter, other, query.ErrSnapshotMismatch},
		{"ahead of the log", snap, shorter, stream, query.ErrSnapshotMismatch},
		{"cut short", snap[:len(snap)*3/4], st, stream, nil},
		{"not a snapshot", []byte("keyhold"), st, stream, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := query.NewDirectory()
			err := d.LoadSnapshot(ctx, bytes.NewReader(tt.snapshot), tt.log, tt.stream)
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if d.Sequence() != 0 || len(d.Tenants()) != 0 || len(query.Logins(d)) != 0 {
				t.Fatalf("a refused snapshot left state: at %d, tenants %v", d.Sequence(), d.Tenants())
			}
			runToEnd(t, d, tt.log)
			if tt.log == st && !bytes.Equal(snapshotOf(t, d, stream), snap) {
				t.Fatal("the replay after a refused snapshot differs")
			}
		})
	}
	loaded := query.NewDirectory()
	testenv.Must(t, loaded.LoadSnapshot(ctx, bytes.NewReader(snap), st, stream), "load")
	if err := loaded.LoadSnapshot(ctx, bytes.NewReader(snap), st, stream); !errors.Is(err, query.ErrSnapshotTarget) {
		t.Fatalf("a second load: %v", err)
	}
}

// A snapshot holds no personal data: users' logins are read again from
// the log through the key store, so an erasure after the snapshot erases
// them from what the snapshot loads too.
func TestSnapshotHoldsNoPersonalData(t *testing.T) {
	st, _ := testenv.Store(t)
	ctx := context.Background()
	stream, err := st.Identity(ctx)
	testenv.Must(t, err, "identity")
	personal := privacy.NewMemory()
	cmds, err := commands.New(st, commands.WithPersonalData(personal))
	testenv.Must(t, err, "commands")
	sys := commands.Meta{Caller: auth.System()}
	res, err := cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "Zelda", Email: "zelda@hyrule.test", DisplayName: "Zelda Hyrule"})
	testenv.Must(t, err, "create")
	full := query.NewDirectory(query.WithPersonal(personal))
	runToEnd(t, full, st)
	snap := snapshotOf(t, full, stream)
	for _, plain := range []string{"zelda", "hyrule"} {
		if bytes.Contains(bytes.ToLower(snap), []byte(plain)) {
			t.Fatalf("the snapshot holds %q", plain)
		}
	}
	loaded := query.NewDirectory(query.WithPersonal(personal))
	testenv.Must(t, loaded.LoadSnapshot(ctx, bytes.NewReader(snap), st, stream), "load")
	if got := query.Logins(loaded); got["zelda"] != res.User.ID() || got["zelda@hyrule.test"] != res.User.ID() {
		t.Fatalf("logins after loading: %v", got)
	}

	_, err = cmds.ErasePersonalData.Handle(ctx, commands.ErasePersonalData{Meta: sys, PrincipalID: res.User.ID()})
	testenv.Must(t, err, "erase")
	old := query.NewDirectory(query.WithPersonal(personal))
	testenv.Must(t, old.LoadSnapshot(ctx, bytes.NewReader(snap), st, stream), "load the older snapshot")
	if got := query.Logins(old); len(got) != 0 {
		t.Fatalf("an erased user's logins came back from a snapshot: %v", got)
	}
	runToEnd(t, old, st)
	runToEnd(t, query.NewDirectory(), st) // the log itself still loads
	if got := query.Logins(old); len(got) != 0 {
		t.Fatalf("logins after the erase: %v", got)
	}
}

func equalStrings(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

// Run tells a directory loaded from a snapshot's caller that it is at the
// snapshot's sequence at once, as a replay does once it gets there: writes
// answering with an earlier sequence (a keyed retry) must not wait for an
// event the directory will never apply again.
func TestLoadedDirectoryReportsItsSequence(t *testing.T) {
	r := replayHistory(t)
	st, stream, last, full := r.st, r.stream, r.last, r.full
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loaded := query.NewDirectory()
	testenv.Must(t, loaded.LoadSnapshot(ctx, bytes.NewReader(snapshotOf(t, full, stream)), st, stream), "load")
	if _, err := loaded.AuthenticateClient(auth.PrefixClientID+"sa-a", liveSecret, time.Now()); !errors.Is(err, query.ErrDirectoryLoading) {
		t.Fatalf("a loaded directory answered before following the log: %v", err)
	}
	var reported atomic.Uint64
	ready, err := loaded.Run(ctx, st, func(seq uint64) { reported.Store(max(reported.Load(), seq)) })
	testenv.Must(t, err, "run")
	waitClosed(t, ready)
	if got := reported.Load(); got != last {
		t.Fatalf("a directory loaded at %d reported %d", last, got)
	}
}

// failingPersonal is a key store that fails its first reads.
type failingPersonal struct {
	mu    sync.Mutex
	fails int
}

func (f *failingPersonal) Personal(_ context.Context, _ string, e events.Event) (events.Personal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return events.Personal{}, errors.New("key store unavailable")
	}
	if u, ok := e.(events.UserCreated); ok && u.Personal != nil {
		return *u.Personal, nil
	}
	return events.Personal{}, nil
}

// A key store that failed while a directory read a user's logins does not
// leave the failure in the directory's snapshot: loading it reads the
// logins again, and is as healthy as a replay.
func TestSnapshotLeavesPassingFailuresBehind(t *testing.T) {
	st, _ := testenv.Store(t)
	ctx := context.Background()
	stream, err := st.Identity(ctx)
	testenv.Must(t, err, "identity")
	_, err = st.Append(ctx, events.Pending{Aggregate: events.AggregateUser, Envelope: events.New(events.InstanceTenant, "u1", events.System, "",
		events.UserCreated{Status: events.UserStatusActive, Personal: &events.Personal{Username: "ann"}})})
	testenv.Must(t, err, "append")
	first := query.NewDirectory(query.WithPersonal(&failingPersonal{fails: 1}))
	runToEnd(t, first, st)
	if degraded, _ := first.Readiness(); degraded == "" {
		t.Fatal("the failed read left no failure")
	}
	loaded := query.NewDirectory(query.WithPersonal(&failingPersonal{}))
	testenv.Must(t, loaded.LoadSnapshot(ctx, bytes.NewReader(snapshotOf(t, first, stream)), st, stream), "load")
	runToEnd(t, loaded, st)
	if degraded, err := loaded.Readiness(); degraded != "" || err != nil {
		t.Fatalf("loaded: degraded %q, %v", degraded, err)
	}
	if got := query.Logins(loaded); got["ann"] != "u1" {
		t.Fatalf("logins %v", got)
	}
}

// A snapshot file carries a MAC under the instance's key: one changed on
// disk, cut short, or written under another key is refused before
// anything is loaded, and the directory stays new.
func TestSnapshotFileIsAuthenticated(t *testing.T) {
	r := replayHistory(t)
	st, stream, full := r.st, r.stream, r.full
	ctx := context.Background()
	key, other := []byte("instance key"), []byte("another key")
	path := filepath.Join(t.TempDir(), "directory.snapshot")
	testenv.Must(t, full.WriteSnapshotFile(path, stream, key), "write")
	fi, err := os.Stat(path)
	testenv.Must(t, err, "stat")
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file mode %v", fi.Mode().Perm())
	}
	good, err := os.ReadFile(path)
	testenv.Must(t, err, "read")

	loaded := query.NewDirectory()
	testenv.Must(t, loaded.LoadSnapshotFile(ctx, path, st, stream, key), "load")
	if loaded.Sequence() != full.Sequence() {
		t.Fatalf("loaded at %d, want %d", loaded.Sequence(), full.Sequence())
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 1
	for _, tt := range []struct {
		name string
		file []byte
		key  []byte
	}{
		{"changed", flipped, key},
		{"cut short", good[:len(good)-10], key},
		{"another key", good, other},
		{"empty", nil, key},
	} {
		t.Run(tt.name, func(t *testing.T) {
			testenv.Must(t, os.WriteFile(path, tt.file, 0o600), "write file")
			d := query.NewDirectory()
			if err := d.LoadSnapshotFile(ctx, path, st, stream, tt.key); !errors.Is(err, query.ErrSnapshotMismatch) {
				t.Fatalf("got %v, want ErrSnapshotMismatch", err)
			}
			if d.Sequence() != 0 || len(d.Tenants()) != 0 {
				t.Fatalf("a refused file left state at %d", d.Sequence())
			}
		})
	}
}

// A directory made Loading answers no authentication question until Run
// has caught up, even before a snapshot is loaded into it: a server
// serving while it loads never judges anybody by an empty directory.
func TestLoadingDirectoryAnswersOnceCaughtUp(t *testing.T) {
	st, _ := testenv.Store(t)
	history(t, st)
	d := query.NewDirectory(query.Loading())
	if _, err := d.AuthenticateClient(auth.PrefixClientID+"sa-a", liveSecret, time.Now()); !errors.Is(err, query.ErrDirectoryLoading) {
		t.Fatalf("before Run: %v", err)
	}
	if _, err := d.Readiness(); err == nil {
		t.Fatal("ready before Run")
	}
	runToEnd(t, d, st)
	if _, err := d.AuthenticateClient(auth.PrefixClientID+"sa-a", liveSecret, time.Now()); err != nil {
		t.Fatalf("caught up: %v", err)
	}
}
