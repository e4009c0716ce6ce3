package commands_test

import (
	"context"
	"errors"
	"fmt"
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

// world is a log with a directory following it, deciding for the
// commands as the server's does.
type world struct {
	t    *testing.T
	st   *events.Store
	dir  *query.Directory
	cmds *commands.Commands
	// personal is shared by every writer, as replicas share one key store.
	personal *privacy.Store
}

func newWorld(t *testing.T) *world {
	t.Helper()
	st, _ := testenv.Store(t)
	personal := privacy.NewMemory()
	w := &world{t: t, st: st, dir: query.NewDirectory(query.WithPersonal(personal)), personal: personal}
	w.cmds = w.writer()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	_, err := w.dir.Run(ctx, st, nil)
	testenv.Must(t, err, "run directory")
	return w
}

// writer returns another command handler set on the same log and
// directory, as another replica would have.
func (w *world) writer() *commands.Commands {
	w.t.Helper()
	cmds, err := commands.New(w.st, commands.WithAuthorizer(w.dir.Authorizer()), commands.WithPersonalData(w.personal))
	testenv.Must(w.t, err, "commands")
	return cmds
}

// sync waits until the directory applied seq, as a write's response does.
func (w *world) sync(seq uint64) {
	w.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for w.dir.Sequence() < seq {
		if time.Now().After(deadline) {
			w.t.Fatalf("directory at %d, want %d", w.dir.Sequence(), seq)
		}
		time.Sleep(time.Millisecond)
	}
}

// operator is the operator's principal acting in tenant.
func operator(tenant string) commands.Meta { return commands.Meta{Caller: auth.SystemIn(tenant)} }

// user creates a user with access to tenant and the given role bindings
// (role@namespace for a namespace, role alone for the whole tenant), and
// returns its principal once the directory knows it.
func (w *world) user(name, tenant string, bindings ...string) auth.Principal {
	w.t.Helper()
	ctx := context.Background()
	res, err := w.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: operator(""), Username: name, Email: name + "@example.test", Tenants: []string{tenant}})
	testenv.Must(w.t, err, "create user %s", name)
	seq := res.Sequence
	for _, b := range bindings {
		role, ns, _ := strings.Cut(b, "@")
		scope := events.Scope{Level: events.ScopeTenant}
		if ns != "" {
			scope = events.Scope{Level: events.ScopeNamespace, Target: ns}
		}
		br, err := w.cmds.CreateBinding.Handle(ctx, commands.CreateBinding{Meta: operator(tenant), Role: role, SubjectKind: events.SubjectUser, SubjectID: res.User.ID(), Scope: scope})
		testenv.Must(w.t, err, "bind %s", b)
		seq = br.Sequence
	}
	w.sync(seq)
	p, ok := w.dir.UserInTenant(res.User.ID(), tenant)
	if !ok {
		w.t.Fatalf("user %s not in tenant %s", name, tenant)
	}
	return p
}

func setup(t *testing.T) (*events.Store, *commands.Commands, auth.Principal) {
	t.Helper()
	w := newWorld(t)
	_, err := w.cmds.Bootstrap.Handle(context.Background(), commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "acme", Username: "root", Email: "root@acme.test"})
	testenv.Must(t, err, "bootstrap")
	return w.st, w.cmds, w.user("ops", "acme", authz.RoleTenantAdmin, authz.RoleViewer+"@team")
}

// twoWriters is setup with a second writer on the same log, as another
// replica would have, and the administrator's command metadata.
func twoWriters(t *testing.T) (st *events.Store, a, b *commands.Commands, meta commands.Meta) {
	t.Helper()
	w := newWorld(t)
	_, err := w.cmds.Bootstrap.Handle(context.Background(), commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "acme", Username: "root", Email: "root@acme.test"})
	testenv.Must(t, err, "bootstrap")
	admin := w.user("ops", "acme", authz.RoleTenantAdmin)
	return w.st, w.cmds, w.writer(), commands.Meta{Caller: admin}
}

func TestBootstrapTwiceFails(t *testing.T) {
	_, cmds, _ := setup(t)
	ctx := context.Background()
	tests := []struct{ name, tenant, user, email string }{
		{"same tenant", "acme", "other", "other@acme.test"},
		{"same username", "beta", "root", "x@beta.test"},
		{"same email, other case", "gamma", "someone", "ROOT@acme.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: tt.tenant, Username: tt.user, Email: tt.email})
			if !errors.Is(err, commands.ErrAlreadyExists) {
				t.Fatalf("err = %v, want ErrAlreadyExists", err)
			}
		})
	}
}

func TestServiceAccountRules(t *testing.T) {
	_, cmds, admin := setup(t)
	ctx := context.Background()
	meta := commands.Meta{Caller: admin}
	nonAdmin := commands.Meta{Caller: auth.Principal{ID: "x", Kind: auth.KindUser, Tenant: "acme"}}

	_, err := cmds.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: nonAdmin, DisplayName: "ci", Scope: events.Scope{Level: "tenant"}})
	if !errors.Is(err, commands.ErrForbidden) {
		t.Fatalf("non-admin create: %v", err)
	}
	res, err := cmds.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: meta, DisplayName: "ci", Scope: events.Scope{Level: "namespace", Target: "team.app"}, Roles: []string{"viewer"}})
	testenv.Must(t, err, "create")
	sa := res.ServiceAccount
	if sa.ClientID() != commands.ClientIDPrefix+sa.ID() || sa.Status() != "active" {
		t.Fatalf("created %+v", sa)
	}

	// Scope-down: a role whose rules the tenant administrator does not hold.
	flows, err := cmds.CreateRole.Handle(ctx, commands.CreateRole{Meta: operator("acme"), RoleInput: commands.RoleInput{
		Name: "flows", Rules: []authz.Rule{{Effect: authz.Allow, Actions: []string{"vault.secrets.*"}}},
	}})
	testenv.Must(t, err, "create role")
	roles := []string{"viewer", flows.Role.ID()}
	_, err = cmds.UpdateServiceAccount.Handle(ctx, commands.UpdateServiceAccount{Meta: meta, ID: sa.ID(), Roles: &roles})
	var ce *commands.Error
	if !errors.As(err, &ce) || !errors.Is(err, commands.ErrForbidden) || ce.Field != "roles" || !strings.Contains(ce.Message, "vault.secrets.*") {
		t.Fatalf("scope-down: %v", err)
	}
	// The administrator holds auditor's rules, so it may assign it.
	auditor := []string{"viewer", "auditor"}
	if _, err := cmds.UpdateServiceAccount.Handle(ctx, commands.UpdateServiceAccount{Meta: meta, ID: sa.ID(), Roles: &auditor}); err != nil {
		t.Fatalf("assign a role whose rules the caller holds: %v", err)
	}
	unknown := []string{"01nosuchrole"}
	if _, err := cmds.UpdateServiceAccount.Handle(ctx, commands.UpdateServiceAccount{Meta: meta, ID: sa.ID(), Roles: &unknown}); !errors.Is(err, commands.ErrInvalid) {
		t.Fatalf("unknown role: %v", err)
	}
	// Acting for an account needs its rules too: the operator made one
	// holding flows; the administrator may not mint its credentials.
	strong, err := cmds.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: operator("acme"), DisplayName: "strong", Scope: events.Scope{Level: "tenant"}, Roles: []string{flows.Role.ID()}})
	testenv.Must(t, err, "create as operator")
	if _, err := cmds.CreateCredential.Handle(ctx, commands.CreateCredential{Meta: meta, ServiceAccountID: strong.ServiceAccount.ID()}); !errors.Is(err, commands.ErrForbidden) {
		t.Fatalf("credential for an account with rules the caller lacks: %v", err)
	}
	_, err = cmds.UpdateServiceAccount.Handle(ctx, commands.UpdateServiceAccount{Meta: nonAdmin, ID: sa.ID(), Roles: &roles})
	if !errors.Is(err, commands.ErrNotFound) {
		t.Fatalf("non-admin update: %v", err)
	}

	for i := 0; i < commands.MaxActiveCredentials; i++ {
		_, err := cmds.CreateCredential.Handle(ctx, commands.CreateCredential{Meta: meta, ServiceAccountID: sa.ID()})
		testenv.Must(t, err, "credential %d", i)
	}
	_, err = cmds.CreateCredential.Handle(ctx, commands.CreateCredential{Meta: meta, ServiceAccountID: sa.ID()})
	if !errors.Is(err, commands.ErrLimit) {
		t.Fatalf("sixth credential: %v", err)
	}
}

// A credential may not outlive the tenant's maximum credential lifetime.
// The account holds no credential, so no other rule can refuse it: a
// request is refused for its expiry or not at all.
func TestCredentialExpiryBeyondTenantMaximum(t *testing.T) {
	st, cmds, admin := setup(t)
	ctx := context.Background()
	meta := commands.Meta{Caller: admin}
	// A maximum of its own, far below commands.MaxCredentialLifetime, so
	// the rule tested is the tenant's setting and not a constant.
	const maxDays = 30
	def, max := int64(7*24*3600), int64(maxDays*24*3600)
	_, err := cmds.ChangeTenantSettings.Handle(ctx, commands.ChangeTenantSettings{Meta: meta, Tenant: "acme", CredentialDefaultLifetime: &def, CredentialMaxLifetime: &max})
	testenv.Must(t, err, "set the maximum lifetime")
	res, err := cmds.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: meta, DisplayName: "ci", Scope: events.Scope{Level: "tenant"}})
	testenv.Must(t, err, "create service account")
	saID := res.ServiceAccount.ID()

	day := 24 * time.Hour
	tests := []struct {
		name    string
		expires time.Duration
		refused bool
	}{
		{"a day beyond the maximum", (maxDays + 1) * day, true},
		{"a minute beyond the maximum", maxDays*day + time.Minute, true},
		{"beyond the built-in maximum", commands.MaxCredentialLifetime + day, true},
		{"an hour within the maximum", maxDays*day - time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := time.Now().Add(tt.expires)
			cr, err := cmds.CreateCredential.Handle(ctx, commands.CreateCredential{Meta: meta, ServiceAccountID: saID, ExpiresAt: &at})
			if !tt.refused {
				testenv.Must(t, err, "create a credential expiring at %s", at)
				if !cr.Credential.ExpiresAt().Equal(at.UTC().Truncate(time.Second)) {
					t.Fatalf("expires at %s, want %s", cr.Credential.ExpiresAt(), at.UTC().Truncate(time.Second))
				}
				return
			}
			var ce *commands.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *commands.Error", err)
			}
			if ce.Kind != commands.ErrInvalid || ce.Field != "expires_at" || ce.Code() != "invalid_input" {
				t.Fatalf("err = %v (kind %v, field %q, code %s), want invalid_input on expires_at", err, ce.Kind, ce.Field, ce.Code())
			}
			if !strings.Contains(ce.Message, fmt.Sprintf("%d days", maxDays)) {
				t.Errorf("message %q does not name the tenant's maximum (%d days)", ce.Message, maxDays)
			}
		})
	}
	// Refused requests recorded nothing: only the accepted one is in the log.
	created := 0
	err = st.Read(ctx, events.Filter{}, func(e events.Envelope) error {
		if e.Type == (events.CredentialCreated{}).EventType() {
			created++
		}
		return nil
	})
	testenv.Must(t, err, "read the log")
	if created != 1 {
		t.Fatalf("the log holds %d created credentials, want 1: a refused request recorded one", created)
	}
}

func TestConcurrentUpdatesAllLand(t *testing.T) {
	// A second handler set over the same stream has its own cache, like a replica.
	st, cmds, other, meta := twoWriters(t)
	admin := meta.Caller
	ctx := context.Background()
	res, err := cmds.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: commands.Meta{Caller: admin}, DisplayName: "ci", Scope: events.Scope{Level: "tenant"}})
	testenv.Must(t, err, "create")
	id := res.ServiceAccount.ID()

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			h := cmds
			if i%2 == 1 {
				h = other
			}
			_, err := h.CreateCredential.Handle(ctx, commands.CreateCredential{Meta: commands.Meta{Caller: admin}, ServiceAccountID: id})
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	ok, limited := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, commands.ErrLimit), errors.Is(err, commands.ErrConcurrentChange):
			limited++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != commands.MaxActiveCredentials {
		t.Fatalf("%d credentials created concurrently, want exactly %d", ok, commands.MaxActiveCredentials)
	}
	envs, _, err := st.Load(ctx, "acme", events.AggregateServiceAccount, id)
	testenv.Must(t, err, "load")
	if n := len(envs) - 1; n != commands.MaxActiveCredentials {
		t.Fatalf("log holds %d credential events, want %d", n, commands.MaxActiveCredentials)
	}
}

// TestDecisionsWithoutAppendSeeOtherReplicas runs two writers (replicas)
// on one log. A writer whose cached service account is stale must not
// decide "nothing to do" or "not found" from it: such decisions append
// nothing, so no conditional append would catch the stale state.
func TestDecisionsWithoutAppendSeeOtherReplicas(t *testing.T) {
	st, a, b, meta := twoWriters(t)
	ctx := context.Background()
	active, disabled := commands.StatusActive, commands.StatusDisabled

	res, err := a.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: meta, DisplayName: "shared", Scope: events.Scope{Level: "tenant"}})
	testenv.Must(t, err, "create on a")
	id := res.ServiceAccount.ID()
	// b caches the account, then a adds a credential b does not know of.
	_, err = b.UpdateServiceAccount.Handle(ctx, commands.UpdateServiceAccount{Meta: meta, ID: id, Status: &disabled})
	testenv.Must(t, err, "disable on b")

	t.Run("enable from a stale cache", func(t *testing.T) {
		// lastStatus is the status the log's last event of the account sets.
		lastStatus := func(t *testing.T) string {
			t.Helper()
			envs, _, err := st.Load(ctx, "acme", events.AggregateServiceAccount, id)
			testenv.Must(t, err, "load")
			// The last status change; an invalidation of tokens may follow it.
			for i := len(envs) - 1; i >= 0; i-- {
				e, err := events.Decode(envs[i])
				testenv.Must(t, err, "decode")
				if _, ok := e.(events.AccessTokensInvalidated); ok {
					continue
				}
				if u, ok := e.(events.ServiceAccountUpdated); ok && u.Status != nil {
					return *u.Status
				}
				return ""
			}
			return ""
		}
		// a's cache still says active, from the creation.
		up, err := a.UpdateServiceAccount.Handle(ctx, commands.UpdateServiceAccount{Meta: meta, ID: id, Status: &active})
		testenv.Must(t, err, "enable on a")
		if up.ServiceAccount.Status() != active || lastStatus(t) != active {
			t.Fatalf("enable on a: answered %q, the log's last status %q", up.ServiceAccount.Status(), lastStatus(t))
		}
		// b's cache still says disabled, from its own write.
		_, err = b.UpdateServiceAccount.Handle(ctx, commands.UpdateServiceAccount{Meta: meta, ID: id, Status: &disabled})
		testenv.Must(t, err, "disable again on b")
		if got := lastStatus(t); got != disabled {
			t.Fatalf("disable again on b: the log's last status %q", got)
		}
	})
	t.Run("delete a credential made on another replica", func(t *testing.T) {
		cred, err := a.CreateCredential.Handle(ctx, commands.CreateCredential{Meta: meta, ServiceAccountID: id})
		testenv.Must(t, err, "credential on a")
		if _, err := b.DeleteCredential.Handle(ctx, commands.DeleteCredential{Meta: meta, ServiceAccountID: id, CredentialID: cred.Credential.ID()}); err != nil {
			t.Fatalf("delete on b of a's credential: %v", err)
		}
	})
}

// TestRevocationsStayOffTheAccount: revoking access tokens appends to the
// account's revocation aggregate, so the account's own history (loaded by
// every command on it) does not grow with them, and a command decided
// before them still appends without a conflict.
func TestRevocationsStayOffTheAccount(t *testing.T) {
	st, a, b, meta := twoWriters(t)
	ctx := context.Background()
	res, err := a.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: meta, DisplayName: "busy", Scope: events.Scope{Level: "tenant"}})
	testenv.Must(t, err, "create")
	id := res.ServiceAccount.ID()
	name := "renamed"
	_, err = b.UpdateServiceAccount.Handle(ctx, commands.UpdateServiceAccount{Meta: meta, ID: id, Description: &name})
	testenv.Must(t, err, "b caches the account")

	self := commands.Meta{Caller: auth.Principal{ID: id, Kind: auth.KindServiceAccount, Tenant: "acme"}}
	for i := range 20 {
		_, err := a.RevokeAccessToken.Handle(ctx, commands.RevokeAccessToken{Meta: self, Tenant: "acme", ServiceAccountID: id,
			TokenID: fmt.Sprintf("tok%d", i), ExpiresAt: time.Now().Add(time.Hour)})
		testenv.Must(t, err, "revoke %d", i)
	}
	account, _, err := st.Load(ctx, "acme", events.AggregateServiceAccount, id)
	testenv.Must(t, err, "load account")
	revoked, _, err := st.Load(ctx, "acme", events.AggregateTokenRevocations, id)
	testenv.Must(t, err, "load revocations")
	if len(account) != 2 || len(revoked) != 20 {
		t.Fatalf("account has %d events, revocations %d; want 2 and 20", len(account), len(revoked))
	}
	up, err := b.UpdateServiceAccount.Handle(ctx, commands.UpdateServiceAccount{Meta: meta, ID: id, DisplayName: &name})
	testenv.Must(t, err, "update decided from b's cache")
	if up.ServiceAccount.DisplayName() != name {
		t.Fatalf("display name %q", up.ServiceAccount.DisplayName())
	}
}

func TestAPITokens(t *testing.T) {
	w := newWorld(t)
	cmds := w.cmds
	ctx := context.Background()
	boot, err := cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "acme", Username: "root", Email: "root@acme.test"})
	testenv.Must(t, err, "bootstrap")
	admin := w.user("ops", "acme", authz.RoleTenantAdmin)
	system := commands.Meta{Caller: auth.System()}
	self := commands.Meta{Caller: admin}
	tests := []struct {
		name string
		meta commands.Meta
		user string
		want error
	}{
		{"another user's tokens need a superadmin", self, boot.UserID, commands.ErrForbidden},
		{"unknown user", system, "01nosuchuser", commands.ErrNotFound},
		{"malformed user", system, "a.b", commands.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := cmds.IssueAPIToken.Handle(ctx, commands.IssueAPIToken{Meta: tt.meta, UserID: tt.user}); !errors.Is(err, tt.want) {
				t.Errorf("issue: %v, want %v", err, tt.want)
			}
			if _, err := cmds.RevokeAPITokens.Handle(ctx, commands.RevokeAPITokens{Meta: tt.meta, UserID: tt.user}); !errors.Is(err, tt.want) {
				t.Errorf("revoke: %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("a user manages its own tokens", func(t *testing.T) {
		a, err := cmds.IssueAPIToken.Handle(ctx, commands.IssueAPIToken{Meta: self, UserID: admin.ID, Name: "ci"})
		testenv.Must(t, err, "issue own")
		if a.Token == "" || a.TokenID == "" || a.ExpiresAt.Sub(time.Now()) < commands.DefaultAPITokenLifetime-time.Minute {
			t.Fatalf("issue result %+v", a)
		}
		b, err := cmds.IssueAPIToken.Handle(ctx, commands.IssueAPIToken{Meta: self, UserID: admin.ID})
		testenv.Must(t, err, "issue another")
		one, err := cmds.RevokeAPITokens.Handle(ctx, commands.RevokeAPITokens{Meta: self, UserID: admin.ID, TokenID: a.TokenID})
		testenv.Must(t, err, "revoke one")
		if one.Revoked != 1 {
			t.Fatalf("revoked %d, want 1", one.Revoked)
		}
		if _, err := cmds.RevokeAPITokens.Handle(ctx, commands.RevokeAPITokens{Meta: self, UserID: admin.ID, TokenID: a.TokenID}); !errors.Is(err, commands.ErrNotFound) {
			t.Fatalf("revoke a revoked token: %v", err)
		}
		all, err := cmds.RevokeAPITokens.Handle(ctx, commands.RevokeAPITokens{Meta: system, UserID: admin.ID})
		testenv.Must(t, err, "revoke all")
		if all.Revoked != 1 {
			t.Fatalf("revoked %d, want 1 (%s)", all.Revoked, b.TokenID)
		}
	})
	t.Run("the instance's lifetimes apply", func(t *testing.T) {
		day, week := 24*time.Hour, 7*24*time.Hour
		if _, err := cmds.ChangeInstance.Handle(ctx, commands.ChangeInstanceSettings{Meta: self, APITokenDefaultLifetime: &day}); !errors.Is(err, commands.ErrForbidden) {
			t.Fatalf("tenant admin changes instance settings: %v", err)
		}
		if _, err := cmds.ChangeInstance.Handle(ctx, commands.ChangeInstanceSettings{Meta: system, APITokenDefaultLifetime: &week, APITokenMaxLifetime: &day}); !errors.Is(err, commands.ErrInvalid) {
			t.Fatalf("default beyond max: %v", err)
		}
		_, err := cmds.ChangeInstance.Handle(ctx, commands.ChangeInstanceSettings{Meta: system, APITokenDefaultLifetime: &day, APITokenMaxLifetime: &week})
		testenv.Must(t, err, "change settings")
		r, err := cmds.IssueAPIToken.Handle(ctx, commands.IssueAPIToken{Meta: self, UserID: admin.ID})
		testenv.Must(t, err, "issue with the default")
		if d := time.Until(r.ExpiresAt); d > day || d < day-time.Minute {
			t.Fatalf("expires in %s, want the instance default of a day", d)
		}
		if _, err := cmds.IssueAPIToken.Handle(ctx, commands.IssueAPIToken{Meta: self, UserID: admin.ID, Lifetime: 8 * 24 * time.Hour}); !errors.Is(err, commands.ErrInvalid) {
			t.Fatalf("beyond the instance maximum: %v", err)
		}
	})
}

// A create carrying a keyed request's id seed creates under that id once;
// run again (a retry on any replica) it finds what it created, and once the
// account or credential was deleted it refuses instead of bringing it back.
func TestSeededCreatesHappenOnce(t *testing.T) {
	ctx := context.Background()
	_, a, b, meta := twoWriters(t)
	meta.IDSeed = events.NewID()
	create := commands.CreateServiceAccount{Meta: meta, DisplayName: "seeded", Scope: events.Scope{Level: "tenant"}}
	first, err := a.CreateServiceAccount.Handle(ctx, create)
	testenv.Must(t, err, "first create")
	if first.ServiceAccount.ID() != meta.IDSeed || first.Replayed {
		t.Fatalf("first create: id %s replayed %v, want the seed %s, not replayed", first.ServiceAccount.ID(), first.Replayed, meta.IDSeed)
	}
	again, err := b.CreateServiceAccount.Handle(ctx, create)
	testenv.Must(t, err, "again on the other writer")
	if again.ServiceAccount.ID() != meta.IDSeed || !again.Replayed || again.Sequence != first.Sequence {
		t.Fatalf("again: id %s replayed %v seq %d, want the first (seq %d) found", again.ServiceAccount.ID(), again.Replayed, again.Sequence, first.Sequence)
	}

	credMeta := meta
	credMeta.IDSeed = events.NewID()
	cc := commands.CreateCredential{Meta: credMeta, ServiceAccountID: meta.IDSeed}
	c1, err := a.CreateCredential.Handle(ctx, cc)
	testenv.Must(t, err, "credential")
	c2, err := b.CreateCredential.Handle(ctx, cc)
	testenv.Must(t, err, "credential again")
	if c1.Credential.ID() != credMeta.IDSeed || c2.Credential.ID() != c1.Credential.ID() || !c2.Replayed || c2.Secret != "" || c1.Secret == "" {
		t.Fatalf("credential: first %s (secret shown %v), again %s replayed %v secret shown %v", c1.Credential.ID(), c1.Secret != "", c2.Credential.ID(), c2.Replayed, c2.Secret != "")
	}
	_, err = a.DeleteCredential.Handle(ctx, commands.DeleteCredential{Meta: commands.Meta{Caller: meta.Caller}, ServiceAccountID: meta.IDSeed, CredentialID: c1.Credential.ID()})
	testenv.Must(t, err, "delete credential")
	if _, err := b.CreateCredential.Handle(ctx, cc); !errors.Is(err, commands.ErrAlreadyExists) {
		t.Fatalf("credential retried after its deletion: err = %v, want ErrAlreadyExists", err)
	}
	_, err = a.DeleteServiceAccount.Handle(ctx, commands.DeleteServiceAccount{Meta: commands.Meta{Caller: meta.Caller}, ID: meta.IDSeed})
	testenv.Must(t, err, "delete account")
	if _, err := b.CreateServiceAccount.Handle(ctx, create); !errors.Is(err, commands.ErrAlreadyExists) {
		t.Fatalf("create retried after the deletion: err = %v, want ErrAlreadyExists", err)
	}
}

// A keyed delete whose first attempt reached the log (and whose answer
// may have been lost with its process) succeeds again when retried; any
// other request for the gone account or credential is still not found.
func TestSeededDeletesSucceedAgain(t *testing.T) {
	ctx := context.Background()
	_, a, b, meta := twoWriters(t)
	sa, err := a.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: meta, DisplayName: "gone", Scope: events.Scope{Level: "tenant"}})
	testenv.Must(t, err, "create")
	id := sa.ServiceAccount.ID()
	cred, err := a.CreateCredential.Handle(ctx, commands.CreateCredential{Meta: meta, ServiceAccountID: id})
	testenv.Must(t, err, "credential")

	keyed, other := meta, meta
	keyed.IDSeed, other.IDSeed = events.NewID(), events.NewID()
	del := commands.DeleteCredential{Meta: keyed, ServiceAccountID: id, CredentialID: cred.Credential.ID()}
	first, err := a.DeleteCredential.Handle(ctx, del)
	testenv.Must(t, err, "delete credential")
	again, err := b.DeleteCredential.Handle(ctx, del)
	if err != nil || again != first {
		t.Fatalf("retried credential delete on another replica: seq %d (first %d), %v", again, first, err)
	}
	if _, err := a.DeleteCredential.Handle(ctx, commands.DeleteCredential{Meta: other, ServiceAccountID: id, CredentialID: cred.Credential.ID()}); !errors.Is(err, commands.ErrNotFound) {
		t.Fatalf("another request deleting the credential: %v", err)
	}

	first, err = a.DeleteServiceAccount.Handle(ctx, commands.DeleteServiceAccount{Meta: keyed, ID: id})
	testenv.Must(t, err, "delete account")
	again, err = b.DeleteServiceAccount.Handle(ctx, commands.DeleteServiceAccount{Meta: keyed, ID: id})
	if err != nil || again != first {
		t.Fatalf("retried account delete: seq %d (first %d), %v", again, first, err)
	}
	for _, m := range []commands.Meta{other, meta} {
		if _, err := a.DeleteServiceAccount.Handle(ctx, commands.DeleteServiceAccount{Meta: m, ID: id}); !errors.Is(err, commands.ErrNotFound) {
			t.Fatalf("another request deleting the account: %v", err)
		}
	}
}
