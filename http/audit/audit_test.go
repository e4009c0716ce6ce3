package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/http/audit"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/privacy"
	"github.com/keyhold/keyhold/projections"
	"github.com/keyhold/keyhold/query"
)

// tokens authenticates fixed tokens as the principals the directory
// gave: the tests are about the audit endpoint, not about how tokens are
// verified.
type tokens map[string]auth.Principal

func (ts tokens) Authenticate(_ context.Context, token, _ string) (auth.Principal, error) {
	if p, ok := ts[token]; ok {
		return p, nil
	}
	return auth.Principal{}, errors.New("unknown token")
}

// fixture is the audit endpoint over a real JetStream log holding two
// tenants, with a directory following the log to decide as the server's
// does. acme holds three service accounts: ci, and the auditor and viewer
// that act as callers.
type fixture struct {
	url   string
	nc    *nats.Conn
	gate  *query.Gate
	saIDs []string
	ciID  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, nc := testenv.Store(t)
	personal := privacy.NewMemory()
	dir := query.NewDirectory(query.WithPersonal(personal))
	_, err := dir.Run(ctx, st, nil)
	testenv.Must(t, err, "run directory")
	sync := func(seq uint64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for dir.Sequence() < seq {
			if time.Now().After(deadline) {
				t.Fatalf("directory at %d, want %d", dir.Sequence(), seq)
			}
			time.Sleep(time.Millisecond)
		}
	}
	cmds, err := commands.New(st, commands.WithAuthorizer(dir.Authorizer()), commands.WithPersonalData(personal))
	testenv.Must(t, err, "commands")
	var adminToken string
	for _, tenant := range []string{"acme", "beta"} {
		res, err := cmds.Bootstrap.Handle(ctx, commands.Bootstrap{Meta: commands.Meta{Caller: auth.System()}, Tenant: tenant, Username: "root-" + tenant, Email: "root@" + tenant + ".test"})
		testenv.Must(t, err, "bootstrap %s", tenant)
		sync(res.Sequence)
		if tenant == "acme" {
			adminToken = res.Token
		}
	}
	admin, err := dir.APITokenPrincipal(adminToken, time.Now())
	testenv.Must(t, err, "admin principal")

	f := &fixture{nc: nc, gate: query.NewGate(1, 10*time.Millisecond)}
	principals := tokens{"admin": admin, "tenantless": {ID: "nobody", Kind: auth.KindUser}}
	for _, name := range []string{"ci", "auditor", "viewer"} {
		var roles []string
		if name != "ci" {
			roles = []string{name}
		}
		res, err := cmds.CreateServiceAccount.Handle(ctx, commands.CreateServiceAccount{Meta: commands.Meta{Caller: admin}, DisplayName: name, Scope: events.Scope{Level: events.ScopeTenant}, Roles: roles})
		testenv.Must(t, err, "create service account %s", name)
		sa := res.ServiceAccount
		f.saIDs = append(f.saIDs, sa.ID())
		if name == "ci" {
			f.ciID = sa.ID()
			continue
		}
		cred, err := cmds.CreateCredential.Handle(ctx, commands.CreateCredential{Meta: commands.Meta{Caller: admin}, ServiceAccountID: sa.ID()})
		testenv.Must(t, err, "credential of %s", name)
		sync(cred.Sequence)
		c, err := dir.AuthenticateClient(sa.ClientID(), cred.Secret, time.Now())
		testenv.Must(t, err, "authenticate %s", name)
		principals[name] = c.Principal
	}

	kit, err := khttp.NewKit(principals, projections.NewProgress(), nil, time.Second, nil)
	testenv.Must(t, err, "kit")
	router, err := khttp.NewRouter(khttp.Config{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
	testenv.Must(t, err, "router")
	audit.Register(router, kit, query.NewAudit(st, f.gate, dir.Authorizer()))
	ts := httptest.NewServer(router)
	t.Cleanup(ts.Close)
	f.url = ts.URL
	return f
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (f *fixture) get(t *testing.T, token, rawQuery string) response {
	t.Helper()
	return f.do(t, http.MethodGet, token, rawQuery)
}

func (f *fixture) do(t *testing.T, method, token, rawQuery string) response {
	t.Helper()
	u := f.url + audit.Path
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	req, err := http.NewRequest(method, u, nil)
	testenv.Must(t, err, "request")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	testenv.Must(t, err, "%s %s", method, u)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	testenv.Must(t, err, "read body")
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// problem checks r is a problem+json response with status and field.
func problem(t *testing.T, r response, status int, field string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json: %s", ct, r.body)
	}
	var p khttp.Problem
	testenv.Must(t, json.Unmarshal(r.body, &p), "decode problem %s", r.body)
	if p.Status != status || p.Field != field || p.Detail == "" {
		t.Fatalf("problem %+v, want status %d on field %q with a detail", p, status, field)
	}
}

type page struct {
	Items      []events.Envelope `json:"items"`
	NextCursor *string           `json:"nextCursor"`
}

func (f *fixture) page(t *testing.T, token, rawQuery string) page {
	t.Helper()
	r := f.get(t, token, rawQuery)
	if r.status != http.StatusOK {
		t.Fatalf("GET ?%s: status %d: %s", rawQuery, r.status, r.body)
	}
	var p page
	testenv.Must(t, json.Unmarshal(r.body, &p), "decode page %s", r.body)
	return p
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, token, query string
		status             int
		field              string
	}{
		{"no credentials", "", "", http.StatusUnauthorized, ""},
		{"unknown token", "forged", "", http.StatusUnauthorized, ""},
		{"viewer", "viewer", "", http.StatusForbidden, ""},
		{"caller in no tenant", "tenantless", "", http.StatusForbidden, ""},
		{"another tenant", "admin", "tenant=beta", http.StatusForbidden, "tenant"},
		{"instance events", "admin", "tenant=_", http.StatusForbidden, "tenant"},
		{"unknown parameter", "admin", "tenants=acme", http.StatusBadRequest, "tenants"},
		{"repeated parameter", "admin", "type=a&type=b", http.StatusBadRequest, "type"},
		{"unknown event type", "admin", "type=iam.service_account.renamed", http.StatusBadRequest, "type"},
		{"since not a time", "admin", "since=yesterday", http.StatusBadRequest, "since"},
		{"until not a time", "admin", "until=-1h", http.StatusBadRequest, "until"},
		{"until before since", "admin", "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", http.StatusBadRequest, "until"},
		{"limit zero", "admin", "limit=0", http.StatusBadRequest, "limit"},
		{"limit too large", "admin", "limit=" + strconv.Itoa(query.MaxAuditLimit+1), http.StatusBadRequest, "limit"},
		{"limit not a number", "admin", "limit=ten", http.StatusBadRequest, "limit"},
		{"aggregate not an id", "admin", "aggregate=" + url.QueryEscape("a.b"), http.StatusBadRequest, "aggregate"},
		{"cursor not ours", "admin", "cursor=garbage", http.StatusBadRequest, "cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.get(t, tt.token, tt.query)
			problem(t, r, tt.status, tt.field)
			if tt.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	t.Run("other methods", func(t *testing.T) {
		for _, m := range []string{http.MethodPost, http.MethodDelete} {
			if r := f.do(t, m, "admin", ""); r.status != http.StatusMethodNotAllowed {
				t.Errorf("%s: status %d, want 405: %s", m, r.status, r.body)
			}
		}
	})
	t.Run("busy", func(t *testing.T) {
		leave, err := f.gate.Enter(context.Background(), "another tenant")
		testenv.Must(t, err, "take the only slot")
		defer leave()
		r := f.get(t, "admin", "")
		problem(t, r, http.StatusServiceUnavailable, "")
		if r.header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	})
	t.Run("log unavailable", func(t *testing.T) {
		f.nc.Close()
		problem(t, f.get(t, "admin", ""), http.StatusServiceUnavailable, "")
	})
}

func TestReadsTheTenantsTrail(t *testing.T) {
	f := newFixture(t)
	all := f.page(t, "admin", "")
	if all.NextCursor != nil {
		t.Fatalf("nextCursor %q on a trail shorter than a page", *all.NextCursor)
	}
	types := map[string]int{}
	for _, e := range all.Items {
		if e.Tenant != "acme" {
			t.Errorf("event %s of tenant %q in acme's trail", e.ID, e.Tenant)
		}
		if e.Aggregate == events.AggregateUnique {
			t.Errorf("uniqueness reservation %s in the trail", e.Type)
		}
		types[e.Type]++
	}
	if types["iam.tenant.created"] != 1 || types["iam.service_account.created"] != len(f.saIDs) {
		t.Errorf("trail %v, want one tenant and %d service accounts created", types, len(f.saIDs))
	}

	t.Run("auditor, by type", func(t *testing.T) {
		p := f.page(t, "auditor", "type=iam.service_account.created")
		var got []string
		for _, e := range p.Items {
			got = append(got, e.Subject)
		}
		if !slices.Equal(got, f.saIDs) {
			t.Fatalf("service accounts created: %v, want %v", got, f.saIDs)
		}
	})
	t.Run("by aggregate", func(t *testing.T) {
		p := f.page(t, "admin", "aggregate="+f.ciID)
		if len(p.Items) == 0 {
			t.Fatal("no events of the service account")
		}
		for _, e := range p.Items {
			if e.Subject != f.ciID {
				t.Errorf("event %s of %s, want only %s", e.Type, e.Subject, f.ciID)
			}
		}
	})
	t.Run("pages of one", func(t *testing.T) {
		var ids []string
		q := "limit=1"
		for range len(all.Items) + 1 {
			p := f.page(t, "admin", q)
			for _, e := range p.Items {
				ids = append(ids, e.ID)
			}
			if p.NextCursor == nil {
				break
			}
			q = "limit=1&cursor=" + url.QueryEscape(*p.NextCursor)
		}
		if len(ids) != len(all.Items) {
			t.Fatalf("%d events over pages of one, want %d", len(ids), len(all.Items))
		}
		for i, e := range all.Items {
			if ids[i] != e.ID {
				t.Fatalf("page %d holds %s, want %s", i, ids[i], e.ID)
			}
		}
	})
	t.Run("until excludes the future", func(t *testing.T) {
		p := f.page(t, "admin", "until="+url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339)))
		if len(p.Items) != 0 {
			t.Fatalf("%d events before an hour ago, want none", len(p.Items))
		}
	})
}
