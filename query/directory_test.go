package query_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
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

// fixture is a real stream, the real command handlers and a directory
// following the stream.
type fixture struct {
	t      *testing.T
	store  *events.Store
	cmds   *commands.Commands
	dir    *query.Directory
	admin  auth.Principal
	userID string
	token  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, _ := testenv.Store(t)
	personal := privacy.NewMemory()
	dir := query.NewDirectory(query.WithPersonal(personal))
	cmds, err := commands.New(store, commands.WithAuthorizer(dir.Authorizer()), commands.WithPersonalData(personal))
	testenv.Must(t, err, "commands")
	boot, err := cmds.Bootstrap.Handle(context.Background(), commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "acme", Username: "root", Email: "root@acme.test"})
	testenv.Must(t, err, "bootstrap")
	f := &fixture{t: t, store: store, cmds: cmds, dir: dir, userID: boot.UserID, token: boot.Token}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ready, err := f.dir.Run(ctx, store, nil)
	testenv.Must(t, err, "run directory")
	waitClosed(t, ready)
	f.admin, err = f.dir.APITokenPrincipal(boot.Token, time.Now())
	testenv.Must(t, err, "bootstrap token principal")
	return f
}

func waitClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("directory did not catch up")
	}
}

// sync waits until the directory has applied seq.
func (f *fixture) sync(seq uint64) {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.dir.Sequence() < seq {
		if time.Now().After(deadline) {
			f.t.Fatalf("directory at %d, want %d", f.dir.Sequence(), seq)
		}
		time.Sleep(time.Millisecond)
	}
}

func (f *fixture) meta() commands.Meta { return commands.Meta{Caller: f.admin} }

func (f *fixture) serviceAccount(scope events.Scope, roles ...string) *commands.ServiceAccount {
	f.t.Helper()
	res, err := f.cmds.CreateServiceAccount.Handle(context.Background(), commands.CreateServiceAccount{Meta: f.meta(), DisplayName: "ci", Scope: scope, Roles: roles})
	testenv.Must(f.t, err, "create service account")
	f.sync(res.Sequence)
	return res.ServiceAccount
}

func (f *fixture) credential(saID string, expires *time.Time) commands.CredentialResult {
	f.t.Helper()
	res, err := f.cmds.CreateCredential.Handle(context.Background(), commands.CreateCredential{Meta: f.meta(), ServiceAccountID: saID, ExpiresAt: expires})
	testenv.Must(f.t, err, "create credential")
	f.sync(res.Sequence)
	return res
}

func (f *fixture) setStatus(saID, status string) {
	f.t.Helper()
	res, err := f.cmds.UpdateServiceAccount.Handle(context.Background(), commands.UpdateServiceAccount{Meta: f.meta(), ID: saID, Status: &status})
	testenv.Must(f.t, err, "set status %s", status)
	f.sync(res.Sequence)
}

func (f *fixture) deleteCredential(saID, credID string) {
	f.t.Helper()
	seq, err := f.cmds.DeleteCredential.Handle(context.Background(), commands.DeleteCredential{Meta: f.meta(), ServiceAccountID: saID, CredentialID: credID})
	testenv.Must(f.t, err, "delete credential")
	f.sync(seq)
}

func (f *fixture) deleteServiceAccount(saID string) {
	f.t.Helper()
	seq, err := f.cmds.DeleteServiceAccount.Handle(context.Background(), commands.DeleteServiceAccount{Meta: f.meta(), ID: saID})
	testenv.Must(f.t, err, "delete service account")
	f.sync(seq)
}

var tenantScope = events.Scope{Level: events.ScopeTenant}

func TestAuthenticateClient(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	sa := f.serviceAccount(tenantScope, authz.RoleViewer)
	good := f.credential(sa.ID(), nil)
	soon := now.Add(2 * time.Minute)
	expiring := f.credential(sa.ID(), &soon)
	deleted := f.credential(sa.ID(), nil)
	f.deleteCredential(sa.ID(), deleted.Credential.ID())
	other := f.serviceAccount(tenantScope)
	otherCred := f.credential(other.ID(), nil)

	tests := []struct {
		name     string
		clientID string
		secret   string
		now      time.Time
		wantCred string
	}{
		{"valid secret", sa.ClientID(), good.Secret, now, good.Credential.ID()},
		{"second valid secret", sa.ClientID(), expiring.Secret, now, expiring.Credential.ID()},
		{"expired credential", sa.ClientID(), expiring.Secret, now.Add(3 * time.Minute), ""},
		{"other credentials still work after one expired", sa.ClientID(), good.Secret, now.Add(3 * time.Minute), good.Credential.ID()},
		{"deleted credential", sa.ClientID(), deleted.Secret, now, ""},
		{"wrong secret", sa.ClientID(), auth.NewSecret(auth.PrefixClientSecret), now, ""},
		{"another account's secret", sa.ClientID(), otherCred.Secret, now, ""},
		{"malformed secret", sa.ClientID(), "khcs_short", now, ""},
		{"checksum broken", sa.ClientID(), otherLast(good.Secret), now, ""},
		{"API token as secret", sa.ClientID(), f.token, now, ""},
		{"empty secret", sa.ClientID(), "", now, ""},
		{"unknown client", commands.ClientIDPrefix + "01unknown", good.Secret, now, ""},
		{"service account id instead of client id", sa.ID(), good.Secret, now, ""},
		{"empty client", "", good.Secret, now, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := f.dir.AuthenticateClient(tt.clientID, tt.secret, tt.now)
			p, cred := c.Principal, c.CredentialID
			if tt.wantCred == "" {
				if !errors.Is(err, query.ErrInvalidClient) {
					t.Fatalf("err = %v, want ErrInvalidClient", err)
				}
				if p.ID != "" || cred != "" {
					t.Fatalf("failed authentication returned %+v, %q", p, cred)
				}
				return
			}
			testenv.Must(t, err, "authenticate")
			if cred != tt.wantCred {
				t.Fatalf("credential %q, want %q", cred, tt.wantCred)
			}
			want := auth.Principal{ID: sa.ID(), Kind: auth.KindServiceAccount, Tenant: "acme", Bindings: []auth.Binding{
				{Role: authz.RoleViewer, Tenant: "acme", Scope: events.Scope{Level: events.ScopeTenant, Target: "acme"}},
			}}
			if p.ID != want.ID || p.Kind != want.Kind || p.Tenant != want.Tenant || !slices.Equal(p.Bindings, want.Bindings) {
				t.Fatalf("principal %+v, want %+v", p, want)
			}
		})
	}
}

// Each change fails authentication as soon as the directory has applied
// its event; no cache outlives it.
func TestAuthenticationFollowsChangesAtOnce(t *testing.T) {
	f := newFixture(t)
	sa := f.serviceAccount(tenantScope, authz.RoleViewer)
	cred := f.credential(sa.ID(), nil)
	authenticates := func(t *testing.T) bool {
		t.Helper()
		_, err := f.dir.AuthenticateClient(sa.ClientID(), cred.Secret, time.Now())
		if err != nil && !errors.Is(err, query.ErrInvalidClient) {
			t.Fatalf("unexpected error %v", err)
		}
		return err == nil
	}
	steps := []struct {
		name   string
		change func()
		want   bool
	}{
		{"created", func() {}, true},
		{"disabled", func() { f.setStatus(sa.ID(), commands.StatusDisabled) }, false},
		{"enabled again", func() { f.setStatus(sa.ID(), commands.StatusActive) }, true},
		{"credential deleted", func() { f.deleteCredential(sa.ID(), cred.Credential.ID()) }, false},
		{"new credential", func() { cred = f.credential(sa.ID(), nil) }, true},
		{"service account deleted", func() { f.deleteServiceAccount(sa.ID()) }, false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.change()
			if got := authenticates(t); got != s.want {
				t.Fatalf("authenticates = %v, want %v", got, s.want)
			}
		})
	}
	if _, ok := f.dir.ServiceAccountTenant(sa.ID()); ok {
		t.Fatalf("deleted service account still has a tenant")
	}
}

func TestAccessTokenPrincipal(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Now()
	sa := f.serviceAccount(tenantScope, authz.RoleAuditor, authz.RoleViewer)
	cred := f.credential(sa.ID(), nil)
	soon := now.Add(2 * time.Minute)
	short := f.credential(sa.ID(), &soon)
	gone := f.credential(sa.ID(), nil)
	f.deleteCredential(sa.ID(), gone.Credential.ID())
	saClient, err := f.dir.AuthenticateClient(sa.ClientID(), cred.Secret, now)
	saPrincipal := saClient.Principal
	testenv.Must(t, err, "authenticate")

	// A second tenant with a service account of its own.
	boot, err := f.cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "beta", Username: "broot", Email: "root@beta.test"})
	testenv.Must(t, err, "bootstrap beta")
	f.sync(boot.Sequence)
	betaAdmin, ok := f.dir.UserInTenant(boot.UserID, "beta")
	if !ok {
		t.Fatalf("beta admin has no access to beta")
	}
	betaSA, err := f.cmds.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: commands.Meta{Caller: betaAdmin}, DisplayName: "b", Scope: tenantScope})
	testenv.Must(t, err, "beta service account")
	f.sync(betaSA.Sequence)

	// Revoke one token of sa, and the same token id for beta's account:
	// revocations must not leak across accounts.
	revoke := func(caller auth.Principal, tenant, saID, jti string) {
		t.Helper()
		seq, err := f.cmds.RevokeAccessToken.Handle(ctx, commands.RevokeAccessToken{Meta: commands.Meta{Caller: caller}, Tenant: tenant, ServiceAccountID: saID, TokenID: jti, ExpiresAt: now.Add(auth.AccessTokenLifetime)})
		testenv.Must(t, err, "revoke %s", jti)
		f.sync(seq)
	}
	revoke(saPrincipal, "acme", sa.ID(), "01revoked")
	revoke(betaAdmin, "beta", betaSA.ServiceAccount.ID(), "01betaonly")

	base := auth.AccessClaims{
		Subject: sa.ID(), Tenant: "acme", ClientID: sa.ClientID(), CredentialID: cred.Credential.ID(),
		ID: "01live", Scope: "auditor viewer", IssuedAt: now, NotBefore: now, Expiry: now.Add(auth.AccessTokenLifetime),
	}
	tests := []struct {
		name      string
		modify    func(*auth.AccessClaims)
		now       time.Time
		wantRoles []string // nil: want ErrTokenRevoked
	}{
		{"live token", func(*auth.AccessClaims) {}, now, []string{authz.RoleAuditor, authz.RoleViewer}},
		{"scope narrows roles", func(c *auth.AccessClaims) { c.Scope = "viewer" }, now, []string{authz.RoleViewer}},
		{"empty scope holds no roles", func(c *auth.AccessClaims) { c.Scope = "" }, now, []string{}},
		{"other account's revoked id is live here", func(c *auth.AccessClaims) { c.ID = "01betaonly" }, now, []string{authz.RoleAuditor, authz.RoleViewer}},
		{"revoked token", func(c *auth.AccessClaims) { c.ID = "01revoked" }, now, nil},
		{"token expired", func(*auth.AccessClaims) {}, now.Add(auth.AccessTokenLifetime), nil},
		{"credential deleted", func(c *auth.AccessClaims) { c.CredentialID = gone.Credential.ID() }, now, nil},
		{"credential expired", func(c *auth.AccessClaims) { c.CredentialID = short.Credential.ID() }, now.Add(3 * time.Minute), nil},
		{"credential unknown", func(c *auth.AccessClaims) { c.CredentialID = "01nope" }, now, nil},
		{"other tenant claimed", func(c *auth.AccessClaims) { c.Tenant = "beta" }, now, nil},
		{"other client claimed", func(c *auth.AccessClaims) { c.ClientID = betaSA.ServiceAccount.ClientID() }, now, nil},
		{"unknown account", func(c *auth.AccessClaims) { c.Subject = "01nobody" }, now, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.modify(&c)
			p, err := f.dir.AccessTokenPrincipal(c, tt.now)
			if tt.wantRoles == nil {
				if !errors.Is(err, query.ErrTokenRevoked) {
					t.Fatalf("err = %v, want ErrTokenRevoked", err)
				}
				return
			}
			testenv.Must(t, err, "principal")
			roles := []string{}
			for _, b := range p.Bindings {
				roles = append(roles, b.Role)
			}
			if p.ID != sa.ID() || p.Kind != auth.KindServiceAccount || p.Tenant != "acme" || !slices.Equal(roles, tt.wantRoles) {
				t.Fatalf("principal %+v (roles %v), want roles %v", p, roles, tt.wantRoles)
			}
		})
	}

	t.Run("short credential token works before expiry", func(t *testing.T) {
		c := base
		c.CredentialID = short.Credential.ID()
		if _, err := f.dir.AccessTokenPrincipal(c, now); err != nil {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("disabled then deleted account", func(t *testing.T) {
		f.setStatus(sa.ID(), commands.StatusDisabled)
		if _, err := f.dir.AccessTokenPrincipal(base, now); !errors.Is(err, query.ErrTokenRevoked) {
			t.Fatalf("disabled: err = %v", err)
		}
		f.setStatus(sa.ID(), commands.StatusActive)
		// Re-enabling does not revive tokens issued before the account was disabled.
		if _, err := f.dir.AccessTokenPrincipal(base, now); !errors.Is(err, query.ErrTokenRevoked) {
			t.Fatalf("re-enabled, old token: err = %v", err)
		}
		c, err := f.dir.AuthenticateClient(sa.ClientID(), cred.Secret, now)
		testenv.Must(t, err, "authenticate after re-enabling")
		fresh := base
		fresh.Generation = c.Generation
		if _, err := f.dir.AccessTokenPrincipal(fresh, now); err != nil {
			t.Fatalf("re-enabled, new token: err = %v", err)
		}
		f.deleteServiceAccount(sa.ID())
		if _, err := f.dir.AccessTokenPrincipal(base, now); !errors.Is(err, query.ErrTokenRevoked) {
			t.Fatalf("deleted: err = %v", err)
		}
	})
}

func TestAPITokenPrincipal(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"bootstrap token", f.token, true},
		{"unknown token", auth.NewSecret(auth.PrefixAPIToken), false},
		{"client secret prefix", auth.NewSecret(auth.PrefixClientSecret), false},
		{"malformed", "khpat_nope", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := f.dir.APITokenPrincipal(tt.token, now)
			if !tt.ok {
				if !errors.Is(err, query.ErrInvalidAPIToken) {
					t.Fatalf("err = %v, want ErrInvalidAPIToken", err)
				}
				return
			}
			testenv.Must(t, err, "principal")
			if p.ID != f.userID || p.Kind != auth.KindUser || p.Tenant != "acme" {
				t.Fatalf("principal %+v", p)
			}
			az := f.dir.Authorizer()
			for _, c := range []struct {
				action string
				scope  authz.Scope
			}{{authz.ServiceAccountsCreate, authz.TenantScope("acme")}, {authz.AuditEventsList, authz.TenantScope("acme")}, {authz.UsersCreate, authz.Instance}} {
				if d := p.Can(az, c.action, "", c.scope); !d.Allowed {
					t.Fatalf("bootstrap user may not %s at %s: %s", c.action, c.scope, d.Reason)
				}
			}
		})
	}
}

// applied builds an envelope as if read from the stream at seq.
func applied(seq uint64, tenant, subject string, e events.Event) events.Envelope {
	env := events.New(tenant, subject, events.System, "", e)
	env.Sequence = seq
	return env
}

func TestAPITokenExpiryAndUserTenants(t *testing.T) {
	d := query.NewDirectory()
	now := time.Now()
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	expired, live, forever := auth.NewSecret(auth.PrefixAPIToken), auth.NewSecret(auth.PrefixAPIToken), auth.NewSecret(auth.PrefixAPIToken)
	orphan := auth.NewSecret(auth.PrefixAPIToken)
	u := events.InstanceTenant
	for _, env := range []events.Envelope{
		applied(1, u, "01u", events.UserCreated{Personal: &events.Personal{Username: "u", Email: "u@x.test"}, Status: events.UserStatusActive}),
		applied(2, u, "01u", events.UserTenantAccessGranted{Tenant: "t2"}),
		applied(3, u, "01u", events.UserTenantAccessGranted{Tenant: "t1"}),
		applied(4, u, "01u", events.UserRoleGranted{Role: authz.RoleViewer, Tenant: "t1", Scope: events.Scope{Level: events.ScopeTenant, Target: "t1"}}),
		applied(5, u, "01u", events.APITokenIssued{TokenID: "a", Verifier: auth.Verifier(expired), ExpiresAt: &past}),
		applied(6, u, "01u", events.APITokenIssued{TokenID: "b", Verifier: auth.Verifier(live), ExpiresAt: &future}),
		applied(7, u, "01u", events.APITokenIssued{TokenID: "c", Verifier: auth.Verifier(forever)}),
		// A token for a user the directory never saw is not indexed.
		applied(8, u, "01ghost", events.APITokenIssued{TokenID: "d", Verifier: auth.Verifier(orphan)}),
	} {
		d.Apply(env)
	}
	if d.Sequence() != 8 {
		t.Fatalf("sequence %d, want 8", d.Sequence())
	}
	tokens := []struct {
		name  string
		token string
		ok    bool
	}{
		{"expired", expired, false},
		{"unexpired", live, true},
		{"without expiry", forever, true},
		{"unknown user", orphan, false},
	}
	for _, tt := range tokens {
		t.Run("token "+tt.name, func(t *testing.T) {
			p, err := d.APITokenPrincipal(tt.token, now)
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, query.ErrInvalidAPIToken) {
				t.Fatalf("err = %v, want ErrInvalidAPIToken", err)
			}
			if tt.ok && p.Tenant != "t2" {
				t.Fatalf("acts in %q, want the first granted tenant t2", p.Tenant)
			}
		})
	}
	tenants := []struct {
		name, user, tenant string
		ok                 bool
	}{
		{"granted first", "01u", "t2", true},
		{"granted second", "01u", "t1", true},
		{"not granted", "01u", "t3", false},
		{"unknown user", "01x", "t1", false},
	}
	for _, tt := range tenants {
		t.Run("tenant "+tt.name, func(t *testing.T) {
			p, ok := d.UserInTenant(tt.user, tt.tenant)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok && (p.Tenant != tt.tenant || p.ID != tt.user || p.Kind != auth.KindUser || len(p.Bindings) != 1) {
				t.Fatalf("principal %+v", p)
			}
		})
	}
}

func TestApplyOrderingAndIsolation(t *testing.T) {
	d := query.NewDirectory()
	secret := auth.NewSecret(auth.PrefixClientSecret)
	exp := time.Now().Add(time.Hour)
	d.Apply(applied(1, "t1", "01sa", events.ServiceAccountCreated{ClientID: "khc-01sa", Scope: events.Scope{Level: events.ScopeTenant, Target: "t1"}, Roles: []string{"viewer"}, Status: "active"}))
	d.Apply(applied(2, "t1", "01sa", events.CredentialCreated{CredentialID: "c1", Verifier: auth.Verifier(secret), ExpiresAt: exp}))
	// Replayed or out-of-order events at or below the position are ignored.
	d.Apply(applied(2, "t1", "01sa", events.CredentialDeleted{CredentialID: "c1"}))
	// An event naming the account under another tenant must not touch it.
	d.Apply(applied(3, "t2", "01sa", events.CredentialDeleted{CredentialID: "c1"}))
	d.Apply(applied(4, "t2", "01sa", events.ServiceAccountDeleted{}))
	// Types the directory does not fold still advance the position.
	d.Apply(applied(5, "t1", "t1", events.TenantCreated{Name: "t1"}))
	if d.Sequence() != 5 {
		t.Fatalf("sequence %d, want 5", d.Sequence())
	}
	c, err := d.AuthenticateClient("khc-01sa", secret, time.Now())
	p, cred := c.Principal, c.CredentialID
	testenv.Must(t, err, "authenticate")
	if cred != "c1" || p.Tenant != "t1" {
		t.Fatalf("got %+v %q", p, cred)
	}
	if tenant, ok := d.ServiceAccountTenant("01sa"); !ok || tenant != "t1" {
		t.Fatalf("tenant %q %v", tenant, ok)
	}
	// Handed-out bindings are not changed by later role updates.
	roles := []string{"auditor", "viewer"}
	d.Apply(applied(6, "t1", "01sa", events.ServiceAccountUpdated{Roles: &roles}))
	if len(p.Bindings) != 1 || p.Bindings[0].Role != "viewer" {
		t.Fatalf("earlier principal changed: %+v", p.Bindings)
	}
	c2, err := d.AuthenticateClient("khc-01sa", secret, time.Now())
	p2 := c2.Principal
	testenv.Must(t, err, "authenticate after update")
	if len(p2.Bindings) != 2 {
		t.Fatalf("bindings %+v, want auditor and viewer", p2.Bindings)
	}
	if len(d.Failures()) != 0 {
		t.Fatalf("failures %+v", d.Failures())
	}
}

func TestRunCatchesUpAndReportsProgress(t *testing.T) {
	t.Run("empty stream is ready at once", func(t *testing.T) {
		store, _ := testenv.Store(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ready, err := query.NewDirectory().Run(ctx, store, nil)
		testenv.Must(t, err, "run")
		select {
		case <-ready:
		default:
			t.Fatalf("not ready on an empty stream")
		}
	})

	t.Run("history, an undecodable event, then live events", func(t *testing.T) {
		f := newFixture(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// An event of a known type with a schema version this binary does
		// not know: recorded and skipped, not fatal.
		bad := events.New("acme", "01bad", events.System, "", events.ServiceAccountCreated{ClientID: "khc-01bad", Status: "active"})
		bad.Version = 99
		res, err := f.store.Append(ctx, events.Pending{Aggregate: events.AggregateServiceAccount, Envelope: bad})
		testenv.Must(t, err, "append bad event")
		last, err := f.store.LastSequence(ctx)
		testenv.Must(t, err, "last sequence")

		d := query.NewDirectory()
		var mu sync.Mutex
		var seen []uint64
		if degraded, err := d.Readiness(); err != nil || degraded != "" {
			t.Fatalf("readiness of an empty directory = %q, %v", degraded, err)
		}
		ready, err := d.Run(ctx, f.store, func(seq uint64) {
			mu.Lock()
			seen = append(seen, seq)
			mu.Unlock()
		})
		testenv.Must(t, err, "run")
		waitClosed(t, ready)
		if d.Sequence() < last {
			t.Fatalf("ready at %d, before the last sequence %d", d.Sequence(), last)
		}
		mu.Lock()
		if len(seen) < int(last) || !slices.IsSorted(seen) || seen[0] != 1 {
			t.Fatalf("advanced with %v, want 1..%d in order", seen, last)
		}
		mu.Unlock()
		fails := d.Failures()
		if len(fails) != 1 || fails[0].Sequence != res.Sequence || !errors.Is(fails[0].Err, events.ErrUnknownVersion) {
			t.Fatalf("failures %+v, want the bad event at %d", fails, res.Sequence)
		}
		// Loaded: ready, but degraded by the event it skipped.
		if degraded, err := d.Readiness(); err != nil || !strings.Contains(degraded, "1 event(s) could not be applied") {
			t.Fatalf("readiness = %q, %v; want degraded by the skipped event", degraded, err)
		}
		if _, ok := d.ServiceAccountTenant("01bad"); ok {
			t.Fatalf("undecodable event was applied")
		}
		// Live: a service account created after catch-up shows up.
		sa := f.serviceAccount(tenantScope)
		deadline := time.Now().Add(5 * time.Second)
		for {
			if tenant, ok := d.ServiceAccountTenant(sa.ID()); ok && tenant == "acme" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("live event not applied")
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// BenchmarkAuthenticateClient authenticates against an account holding the
// maximum of five credentials, the worst case.
func BenchmarkAuthenticateClient(b *testing.B) {
	d := query.NewDirectory()
	exp := time.Now().Add(time.Hour)
	d.Apply(applied(1, "t1", "01sa", events.ServiceAccountCreated{ClientID: "khc-01sa", Scope: events.Scope{Level: events.ScopeTenant, Target: "t1"}, Roles: []string{"viewer"}, Status: "active"}))
	var secret string
	for i := range commands.MaxActiveCredentials {
		secret = auth.NewSecret(auth.PrefixClientSecret)
		d.Apply(applied(uint64(i+2), "t1", "01sa", events.CredentialCreated{CredentialID: string(rune('a' + i)), Verifier: auth.Verifier(secret), ExpiresAt: exp}))
	}
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := d.AuthenticateClient("khc-01sa", secret, now); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// otherLast returns s with its last character replaced by a different one.
func otherLast(s string) string {
	last := byte('x')
	if s[len(s)-1] == last {
		last = 'y'
	}
	return s[:len(s)-1] + string(last)
}

// gatedLog is the real store with its live feed held back until open is
// closed, so a directory stays in the middle of replaying the log.
type gatedLog struct {
	*events.Store
	open chan struct{}
}

func (g gatedLog) Follow(ctx context.Context, f events.Filter, fn func(events.Envelope, error)) (func(), error) {
	return g.Store.Follow(ctx, f, func(env events.Envelope, err error) {
		<-g.open
		fn(env, err)
	})
}

// TestLoadingDirectoryDecidesNothing: a directory still replaying the log
// (a replica starting) answers ErrDirectoryLoading to every credential,
// even one that was valid, instead of judging by a past state; once it
// has caught up it answers as usual.
func TestLoadingDirectoryDecidesNothing(t *testing.T) {
	f := newFixture(t)
	sa := f.serviceAccount(tenantScope, authz.RoleViewer)
	cred := f.credential(sa.ID(), nil)
	f.deleteCredential(sa.ID(), cred.Credential.ID())
	live := f.credential(sa.ID(), nil)

	g := gatedLog{Store: f.store, open: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := query.NewDirectory()
	ready, err := d.Run(ctx, g, nil)
	testenv.Must(t, err, "run")
	now := time.Now()
	if _, err := d.AuthenticateClient(sa.ClientID(), cred.Secret, now); !errors.Is(err, query.ErrDirectoryLoading) {
		t.Fatalf("deleted credential while loading: %v, want ErrDirectoryLoading", err)
	}
	if _, err := d.APITokenPrincipal(f.token, now); !errors.Is(err, query.ErrDirectoryLoading) {
		t.Fatalf("API token while loading: %v, want ErrDirectoryLoading", err)
	}
	close(g.open)
	waitClosed(t, ready)
	if _, err := d.AuthenticateClient(sa.ClientID(), cred.Secret, now); !errors.Is(err, query.ErrInvalidClient) {
		t.Fatalf("deleted credential once loaded: %v, want ErrInvalidClient", err)
	}
	if _, err := d.AuthenticateClient(sa.ClientID(), live.Secret, now); err != nil {
		t.Fatalf("live credential once loaded: %v", err)
	}
}

// Token invalidation is an event from version 2 of ServiceAccountUpdated
// on; version 1 updates, written before, leave it to the directory to infer.
func TestTokenInvalidationFollowsTheLog(t *testing.T) {
	d := query.NewDirectory()
	now := time.Now()
	secret := auth.NewSecret(auth.PrefixClientSecret)
	disabled, active := "disabled", "active"
	v1 := func(env events.Envelope) events.Envelope { env.Version = 1; return env }
	d.Apply(applied(1, "acme", "01sa", events.ServiceAccountCreated{ClientID: "khc-01sa", Scope: events.Scope{Level: events.ScopeTenant, Target: "acme"}, Status: active}))
	d.Apply(applied(2, "acme", "01sa", events.CredentialCreated{CredentialID: "01c", Verifier: auth.Verifier(secret), ExpiresAt: now.Add(time.Hour)}))
	steps := []struct {
		name string
		envs []events.Envelope
		want uint64 // generation once active again
	}{
		{"v1 disable infers", []events.Envelope{
			v1(applied(3, "acme", "01sa", events.ServiceAccountUpdated{Status: &disabled})),
			v1(applied(4, "acme", "01sa", events.ServiceAccountUpdated{Status: &active})),
		}, 1},
		{"v2 disable alone does not", []events.Envelope{
			applied(5, "acme", "01sa", events.ServiceAccountUpdated{Status: &disabled}),
			applied(6, "acme", "01sa", events.ServiceAccountUpdated{Status: &active}),
		}, 1},
		{"the event does", []events.Envelope{
			applied(7, "acme", "01sa", events.AccessTokensInvalidated{Reason: "role viewer removed"}),
		}, 2},
	}
	for _, s := range steps {
		for _, env := range s.envs {
			d.Apply(env)
		}
		c, err := d.AuthenticateClient("khc-01sa", secret, now)
		testenv.Must(t, err, "authenticate after %s", s.name)
		if c.Generation != s.want {
			t.Fatalf("after %s: generation %d, want %d", s.name, c.Generation, s.want)
		}
	}
}

// Password checks beyond the directory's bound are refused at once with
// ErrPasswordBusy instead of each taking argon2id's memory and time.
func TestPasswordChecksAreBounded(t *testing.T) {
	d := query.NewDirectory()
	verifier := auth.HashPassword("the right password", auth.DefaultPasswordParams)
	d.Apply(applied(1, events.InstanceTenant, "01u", events.UserCreated{Personal: &events.Personal{Username: "u", Email: "u@x.test"}, Status: events.UserStatusActive, PasswordVerifier: verifier}))
	const n = 32
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			_, err := d.PasswordPrincipal("u", "a wrong password", time.Now())
			errs <- err
		}()
	}
	close(start)
	busy := 0
	for range n {
		switch err := <-errs; {
		case errors.Is(err, query.ErrPasswordBusy):
			busy++
		case !errors.Is(err, query.ErrInvalidPassword):
			t.Fatalf("err = %v", err)
		}
	}
	if busy == 0 {
		t.Fatalf("%d parallel checks all ran argon2id", n)
	}
	if _, err := d.PasswordPrincipal("u", "the right password", time.Now()); err != nil {
		t.Fatalf("a check after the burst: %v", err)
	}
}

// An access token acts with the roles its scope names and nothing else
// the account holds: a role bound to the account later, or one the scope
// left out, does not ride along.
func TestAccessTokensCarryOnlyTheirScope(t *testing.T) {
	d := query.NewDirectory()
	now := time.Now()
	seq := uint64(0)
	apply := func(tenant, subject string, e events.Event) {
		seq++
		d.Apply(applied(seq, tenant, subject, e))
	}
	apply("acme", "acme", events.TenantCreated{Name: "acme"})
	for _, r := range authz.ManagedRoles("acme") {
		apply("acme", r.ID, events.RoleCreated{Name: r.Name, Managed: true, Rules: auth.EventRules(r.Rules)})
	}
	secret := auth.NewSecret(auth.PrefixClientSecret)
	apply("acme", "01sa", events.ServiceAccountCreated{ClientID: "khc-01sa", Scope: events.Scope{Level: events.ScopeTenant, Target: "acme"}, Roles: []string{authz.RoleViewer}, Status: "active"})
	apply("acme", "01sa", events.CredentialCreated{CredentialID: "01c", Verifier: auth.Verifier(secret), ExpiresAt: now.Add(time.Hour)})
	claims := func(scope string) auth.AccessClaims {
		return auth.AccessClaims{Subject: "01sa", Tenant: "acme", ClientID: "khc-01sa", CredentialID: "01c", ID: "01t" + strings.ReplaceAll(scope, " ", ""),
			Scope: scope, IssuedAt: now, NotBefore: now, Expiry: now.Add(auth.AccessTokenLifetime)}
	}
	can := func(scope string) bool {
		t.Helper()
		p, err := d.AccessTokenPrincipal(claims(scope), now)
		testenv.Must(t, err, "principal")
		return p.Can(d.Authorizer(), authz.ServiceAccountsCreate, "", authz.TenantScope("acme")).Allowed
	}
	apply("acme", "01b", events.BindingCreated{Role: authz.RoleTenantAdmin, SubjectKind: events.SubjectServiceAccount, SubjectID: "01sa", Scope: events.Scope{Level: events.ScopeTenant, Target: "acme"}})
	if can("viewer") {
		t.Fatal("a token narrowed to viewer acts as tenant-admin, bound to the account after")
	}
	if !can("tenant-admin viewer") {
		t.Fatal("a token naming the bound role cannot use it")
	}
	c, err := d.AuthenticateClient("khc-01sa", secret, now)
	testenv.Must(t, err, "authenticate")
	var held []string
	for _, b := range c.Principal.Bindings {
		held = append(held, b.Role)
	}
	if !slices.Contains(held, authz.RoleTenantAdmin) {
		t.Fatalf("the account's principal lists %v, not the bound role (tokens could not name it)", held)
	}
	apply("acme", "01b", events.BindingDeleted{})
	if can("tenant-admin viewer") {
		t.Fatal("the role outlived its binding")
	}
}
