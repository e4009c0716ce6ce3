package commands_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

func setup(t *testing.T) (*events.Store, *commands.Commands, auth.Principal) {
	t.Helper()
	st, _ := testenv.Store(t)
	cmds, err := commands.New(st)
	testenv.Must(t, err, "new")
	res, err := cmds.Bootstrap.Handle(context.Background(), commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: "acme", Username: "root", Email: "root@acme.test"})
	testenv.Must(t, err, "bootstrap")
	admin := auth.Principal{ID: res.UserID, Kind: auth.KindUser, Tenant: "acme", Bindings: []auth.Binding{
		{Role: auth.RoleTenantAdmin, Tenant: "acme", Scope: events.Scope{Level: events.ScopeTenant, Target: "acme"}},
		{Role: auth.RoleViewer, Tenant: "acme", Scope: events.Scope{Level: events.ScopeNamespace, Target: "team"}},
	}}
	return st, cmds, admin
}

// twoWriters is setup with a second writer on the same log, as another
// replica would have, and the administrator's command metadata.
func twoWriters(t *testing.T) (st *events.Store, a, b *commands.Commands, meta commands.Meta) {
	t.Helper()
	st, a, admin := setup(t)
	b, err := commands.New(st)
	testenv.Must(t, err, "second writer")
	return st, a, b, commands.Meta{Caller: admin}
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

	// Scope-down: the admin holds auditor nowhere, viewer in team (covers team.app).
	roles := []string{"viewer", "auditor"}
	_, err = cmds.UpdateServiceAccount.Handle(ctx, commands.UpdateServiceAccount{Meta: meta, ID: sa.ID(), Roles: &roles})
	var ce *commands.Error
	if !errors.As(err, &ce) || !errors.Is(err, commands.ErrForbidden) || ce.Field != "roles" {
		t.Fatalf("scope-down: %v", err)
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
	far := time.Now().Add(400 * 24 * time.Hour)
	_, err = cmds.CreateCredential.Handle(ctx, commands.CreateCredential{Meta: meta, ServiceAccountID: sa.ID(), ExpiresAt: &far})
	if !errors.Is(err, commands.ErrInvalid) && !errors.Is(err, commands.ErrLimit) {
		t.Fatalf("expiry beyond max: %v", err)
	}
}

func TestConcurrentUpdatesAllLand(t *testing.T) {
	st, cmds, admin := setup(t)
	ctx := context.Background()
	// A second handler set over the same stream has its own cache, like a replica.
	other, err := commands.New(st)
	testenv.Must(t, err, "second instance")
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
			e, err := events.Decode(envs[len(envs)-1])
			testenv.Must(t, err, "decode")
			if u, ok := e.(events.ServiceAccountUpdated); ok && u.Status != nil {
				return *u.Status
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
	_, cmds, admin := setup(t)
	ctx := context.Background()
	system := commands.Meta{Caller: auth.System()}
	userID := admin.ID // the bootstrapped user
	tests := []struct {
		name string
		meta commands.Meta
		user string
		want error
	}{
		{"tenant admin is no superadmin", commands.Meta{Caller: admin}, userID, commands.ErrForbidden},
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
	res, err := cmds.IssueAPIToken.Handle(ctx, commands.IssueAPIToken{Meta: system, UserID: userID})
	testenv.Must(t, err, "issue")
	if res.Token == "" || res.TokenID == "" {
		t.Fatalf("issue result %+v", res)
	}
	// The bootstrap token and the issued one, then none.
	for i, want := range []int{2, 0} {
		got, err := cmds.RevokeAPITokens.Handle(ctx, commands.RevokeAPITokens{Meta: system, UserID: userID})
		testenv.Must(t, err, "revoke")
		if got.Revoked != want {
			t.Fatalf("revoke %d revoked %d, want %d", i+1, got.Revoked, want)
		}
	}
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
