package main

// The harness starts a complete Keyhold server in-process for end-to-end
// tests: an embedded NATS server on a random port with its store under a
// temporary data dir, a Postgres database of the test's own, the
// projection runner, and the HTTP handler behind httptest. Everything is
// torn down when the test ends.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/internal/testenv"
)

const (
	saBase       = "/v1/regions/global/iam/service-accounts"
	settingsPath = "/v1/regions/global/iam/settings"
	auditPath    = "/v1/audit/events"
)

// harness is one running server.
type harness struct {
	cfg    *config
	env    *env
	srv    *server
	ts     *httptest.Server
	client *http.Client
	logs   *testenv.SyncBuffer
	cancel context.CancelFunc
	done   <-chan struct{}
	once   sync.Once

	mu      sync.Mutex
	secrets map[string]string // secret -> what it is
}

// testConfig returns a configuration with a data dir and a database of
// the test's own and an embedded NATS server on a random port.
func testConfig(t *testing.T) *config {
	t.Helper()
	return &config{
		httpAddr:       "127.0.0.1:0",
		dataDir:        t.TempDir(),
		databaseURL:    testenv.DatabaseURL(t),
		natsListen:     "127.0.0.1:0",
		streamReplicas: 1,
		logLevel:       "debug",
		waitTimeout:    5 * time.Second,
	}
}

// startServer runs a server over cfg (a fresh one when nil) and waits until it
// is ready. The server is stopped when the test ends, if not before.
func startServer(t *testing.T, cfg *config) *harness {
	t.Helper()
	if cfg == nil {
		cfg = testConfig(t)
	}
	logs := &testenv.SyncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	e, err := openWith(ctx, cfg, true, log)
	if err != nil {
		cancel()
		t.Fatalf("open env: %v", err)
	}
	srv, err := newServer(ctx, e)
	if err != nil {
		cancel()
		e.close()
		t.Fatalf("new server: %v", err)
	}
	h := &harness{cfg: cfg, env: e, srv: srv, logs: logs, cancel: cancel, done: srv.background(ctx), secrets: map[string]string{}}
	h.ts = httptest.NewServer(srv.handler)
	check, err := newAPICheck(http.DefaultTransport, khttp.OpenAPI, h.ts.URL)
	if err != nil {
		h.ts.Close()
		cancel()
		e.close()
		t.Fatal(err)
	}
	h.client = &http.Client{
		// Every response of the k0rdent dialect is checked against the document.
		Transport: check,
		Timeout:   30 * time.Second,
		// Show redirects to the test instead of following them.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(h.stop)
	h.waitReady(t)
	return h
}

// stop shuts the server down: HTTP first, then the runner, then NATS and
// Postgres. Safe to call more than once.
func (h *harness) stop() {
	h.once.Do(func() {
		h.ts.Close()
		h.cancel()
		<-h.done
		h.env.close()
	})
}

// natsAddr is the host:port the embedded NATS server listens on, for CLI
// commands that should join this server.
func (h *harness) natsAddr() string {
	return strings.TrimPrefix(h.env.embedded.ClientURL(), "nats://")
}

// waitReady polls /readyz until it answers 200.
func (h *harness) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := h.client.Get(h.ts.URL + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("server not ready: %d %s", res.StatusCode, body)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("server not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// remember records a secret the test saw, so the secrets check can look
// for it everywhere.
func (h *harness) remember(secret, what string) {
	if secret == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.secrets[secret] = what
}

func (h *harness) seen() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]string, len(h.secrets))
	for k, v := range h.secrets {
		out[k] = v
	}
	return out
}

// httpResp is what a client saw.
type httpResp struct {
	Status int
	Header http.Header
	Body   []byte
	// Path is the request's path; it decides which error shape is due.
	Path string
}

func (r httpResp) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// decode unmarshals the body into v.
func (r httpResp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r, err)
	}
}

// object returns the body as a JSON object.
func (r httpResp) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	r.decode(t, &m)
	return m
}

// httpReq describes a request. Body is sent as is when a string or []byte and
// as JSON otherwise; nil sends no body.
type httpReq struct {
	method, path, token string
	body                any
	header              map[string]string
}

// send makes the request; transport failures fail the test.
func (h *harness) send(t *testing.T, r httpReq) httpResp {
	t.Helper()
	res, err := h.try(r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// try makes the request and returns transport failures; unlike send it
// may be called from any goroutine.
func (h *harness) try(r httpReq) (httpResp, error) {
	var body io.Reader
	ctype := ""
	switch b := r.body.(type) {
	case nil:
	case string:
		body, ctype = strings.NewReader(b), "application/json"
	case []byte:
		body, ctype = bytes.NewReader(b), "application/json"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return httpResp{}, fmt.Errorf("marshal body: %w", err)
		}
		body, ctype = bytes.NewReader(raw), "application/json"
	}
	hr, err := http.NewRequest(r.method, h.ts.URL+r.path, body)
	if err != nil {
		return httpResp{}, fmt.Errorf("new request: %w", err)
	}
	if ctype != "" {
		hr.Header.Set("Content-Type", ctype)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		if v == "" {
			hr.Header.Del(k)
			continue
		}
		hr.Header.Set(k, v)
	}
	res, err := h.client.Do(hr)
	if err != nil {
		return httpResp{}, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return httpResp{}, fmt.Errorf("read %s %s: %w", r.method, r.path, err)
	}
	return httpResp{Status: res.StatusCode, Header: res.Header, Body: raw, Path: r.path}, nil
}

func (h *harness) do(t *testing.T, method, path, token string, body any) httpResp {
	t.Helper()
	return h.send(t, httpReq{method: method, path: path, token: token, body: body})
}

// expectStatus fails the test unless r has status want.
func expectStatus(t *testing.T, r httpResp, want int, what string) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, want, r.Body)
	}
}

// admin is a bootstrapped tenant administrator.
type admin struct {
	tenant, userID, token string
}

// bootstrap creates tenant and its first administrator through the
// command handler (the CLI's path) and waits until the server sees them.
func (h *harness) bootstrap(t *testing.T, tenant string) admin {
	t.Helper()
	ctx := context.Background()
	res, err := h.srv.cmds.Bootstrap.Handle(ctx, commands.Bootstrap{
		Meta: commands.Meta{Caller: auth.System()}, Tenant: tenant, Username: "admin-" + tenant, Email: "admin@" + tenant + ".example",
	})
	if err != nil {
		t.Fatalf("bootstrap %s: %v", tenant, err)
	}
	h.remember(res.Token, "API token of "+tenant)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.srv.progress.Wait(wctx, res.Sequence, readSide...); err != nil {
		t.Fatalf("wait for bootstrap: %v", err)
	}
	return admin{tenant: tenant, userID: res.UserID, token: res.Token}
}

// role creates a custom role in tenant, as the operator, allowing
// actions, and returns its id once this replica's directory knows it.
func (h *harness) role(t *testing.T, tenant, name string, actions ...string) string {
	t.Helper()
	res, err := h.srv.cmds.CreateRole.Handle(context.Background(), commands.CreateRole{Meta: operatorIn(tenant), RoleInput: commands.RoleInput{
		Name: name, Rules: []authz.Rule{{Effect: authz.Allow, Actions: actions}},
	}})
	h.applied(t, res.Sequence, err, "create role "+name)
	return res.Role.ID()
}

// sa is a service account on the wire (the draft's ServiceAccount).
type sa struct {
	SelfLink              string   `json:"selfLink"`
	UID                   string   `json:"uid"`
	ID                    string   `json:"id"`
	DisplayName           string   `json:"displayName"`
	Description           string   `json:"description"`
	ClientID              string   `json:"clientId"`
	Scope                 string   `json:"scope"`
	ScopeID               string   `json:"scopeId"`
	Roles                 []string `json:"roles"`
	Status                string   `json:"status"`
	CreatedBy             string   `json:"createdBy"`
	CreatedAt             string   `json:"createdAt"`
	UpdatedAt             string   `json:"updatedAt"`
	ActiveCredentialCount int      `json:"activeCredentialCount"`
}

// credential is a credential on the wire (the draft's
// ServiceAccountCredential); ClientSecret only in the creation response.
type credential struct {
	SelfLink         string  `json:"selfLink"`
	UID              string  `json:"uid"`
	ID               string  `json:"id"`
	ServiceAccountID string  `json:"serviceAccountId"`
	Status           string  `json:"status"`
	ExpiresAt        string  `json:"expiresAt"`
	CreatedBy        string  `json:"createdBy"`
	CreatedAt        string  `json:"createdAt"`
	ClientSecret     *string `json:"clientSecret"`
}

// pageJSON is a page of the audit trail.
type pageJSON[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"nextCursor"`
}

// saPage and credentialPage are pages of the k0rdent lists.
type saPage struct {
	ServiceAccounts []sa    `json:"serviceAccounts"`
	NextPageToken   *string `json:"nextPageToken"`
}

type credentialPage struct {
	Credentials   []credential `json:"credentials"`
	NextPageToken *string      `json:"nextPageToken"`
}

// testTenant is the tenant most tests bootstrap and work in.
const testTenant = "acme"

// tenantSA is the body of a service account with roles scoped to the
// whole of testTenant (the draft's organization scope).
func tenantSA(name string, roles ...string) map[string]any { return orgSA(testTenant, name, roles...) }

// orgSA is the body of a service account with roles scoped to tenant.
func orgSA(tenant, name string, roles ...string) map[string]any {
	if roles == nil {
		roles = []string{}
	}
	return map[string]any{"displayName": name, "scope": "organization", "scopeId": tenant, "roles": roles}
}

// nodeSA is the body of a service account scoped to a folder or project.
func nodeSA(name, kind, path string, roles ...string) map[string]any {
	body := map[string]any{"displayName": name, "scope": kind, "scopeId": path}
	if roles != nil {
		body["roles"] = roles
	}
	return body
}

func (h *harness) createSA(t *testing.T, token string, body any) sa {
	t.Helper()
	r := h.do(t, http.MethodPost, saBase, token, body)
	expectStatus(t, r, http.StatusCreated, "create service account")
	var out sa
	r.decode(t, &out)
	return out
}

func (h *harness) createCredential(t *testing.T, token, saID string, body any) credential {
	t.Helper()
	r := h.do(t, http.MethodPost, saBase+"/"+saID+"/credentials", token, body)
	expectStatus(t, r, http.StatusCreated, "create credential")
	var out credential
	r.decode(t, &out)
	if out.ClientSecret == nil {
		t.Fatalf("credential without clientSecret: %s", r.Body)
	}
	h.remember(*out.ClientSecret, "client secret "+out.ID)
	return out
}

func (h *harness) listSAs(t *testing.T, token, query string) []sa {
	t.Helper()
	r := h.do(t, http.MethodGet, saBase+query, token, nil)
	expectStatus(t, r, http.StatusOK, "list service accounts")
	var p saPage
	r.decode(t, &p)
	return p.ServiceAccounts
}

// form posts an OAuth2 form, with Basic credentials when basicID is set.
func (h *harness) form(t *testing.T, path string, v url.Values, basicID, basicSecret string) httpResp {
	t.Helper()
	hr, err := http.NewRequest(http.MethodPost, h.ts.URL+path, strings.NewReader(v.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		hr.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	res, err := h.client.Do(hr)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return httpResp{Status: res.StatusCode, Header: res.Header, Body: raw}
}

// grant asks for an access token with client credentials in the form.
func (h *harness) grant(t *testing.T, clientID, secret string) httpResp {
	t.Helper()
	return h.form(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}}, "", "")
}

// accessToken gets an access token for a client, optionally narrowed to scope.
func (h *harness) accessToken(t *testing.T, clientID, secret string, scope ...string) string {
	t.Helper()
	v := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}}
	if len(scope) > 0 {
		v.Set("scope", strings.Join(scope, " "))
	}
	r := h.form(t, "/oauth2/token", v, "", "")
	expectStatus(t, r, http.StatusOK, "token grant")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	r.decode(t, &tok)
	h.remember(tok.AccessToken, "access token of "+clientID)
	return tok.AccessToken
}

// principal creates a service account with roles scoped to the whole of
// testTenant, a credential, and returns an access token for it.
func (h *harness) principal(t *testing.T, adminToken, name string, roles ...string) (sa, string) {
	t.Helper()
	return h.principalIn(t, testTenant, adminToken, name, roles...)
}

// principalIn is principal in tenant, which adminToken administers.
func (h *harness) principalIn(t *testing.T, tenant, adminToken, name string, roles ...string) (sa, string) {
	t.Helper()
	s := h.createSA(t, adminToken, orgSA(tenant, name, roles...))
	c := h.createCredential(t, adminToken, s.ID, nil)
	return s, h.accessToken(t, s.ClientID, *c.ClientSecret)
}

// auditAll walks every page of the audit trail for query (which must not
// hold cursor) and returns the events.
func (h *harness) auditAll(t *testing.T, token, query string) []events.Envelope {
	t.Helper()
	var all []events.Envelope
	cursor := ""
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("audit pagination does not end")
		}
		q := url.Values{}
		if query != "" {
			var err error
			if q, err = url.ParseQuery(query); err != nil {
				t.Fatal(err)
			}
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r := h.do(t, http.MethodGet, auditPath+"?"+q.Encode(), token, nil)
		expectStatus(t, r, http.StatusOK, "audit "+query)
		var p pageJSON[events.Envelope]
		r.decode(t, &p)
		all = append(all, p.Items...)
		if p.NextCursor == nil {
			return all
		}
		cursor = *p.NextCursor
	}
}

// iamPrefix is where the k0rdent dialect answers errors in the draft's
// envelope rather than as problem details.
const iamPrefix = "/v1/regions/global/iam/"

// authPrefix is where the k0rdent dialect serves the draft's auth
// endpoints, with the same envelope.
const authPrefix = "/v1/regions/global/auth/"

// kestraPath reports whether path is the Kestra dialect's.
func kestraPath(path string) bool {
	return strings.HasPrefix(path, "/api/v1/") || strings.HasPrefix(path, "/v1/api/")
}

// k0rdentPath reports whether path is the k0rdent dialect's.
func k0rdentPath(path string) bool {
	return strings.HasPrefix(path, iamPrefix) || strings.HasPrefix(path, authPrefix)
}

// checkProblem asserts r is an error response with status want in the
// shape its path promises: the k0rdent envelope under iamPrefix (see
// checkEnvelope), an RFC 9457 problem elsewhere. It returns the error as
// a map with "status", "field" and "detail" either way, so one table can
// test both shapes.
func checkProblem(t *testing.T, r httpResp, want int) map[string]any {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %d, want %d; body %s", r.Status, want, r.Body)
	}
	if k0rdentPath(r.Path) {
		e := checkEnvelope(t, r, want)
		field := ""
		if len(e.Details) > 0 {
			field = e.Details[0].Field
		}
		return map[string]any{"status": float64(e.Code), "field": field, "detail": e.Message}
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json; body %s", ct, r.Body)
	}
	p := r.object(t)
	if s, _ := p["status"].(float64); int(s) != want {
		t.Errorf("problem status %v, want %d", p["status"], want)
	}
	if title, _ := p["title"].(string); title != http.StatusText(want) {
		t.Errorf("problem title %q, want %q", title, http.StatusText(want))
	}
	if d, _ := p["detail"].(string); d == "" {
		t.Errorf("problem without detail: %s", r.Body)
	}
	id, _ := p["request_id"].(string)
	if id == "" || id != r.Header.Get("X-Request-Id") {
		t.Errorf("problem request_id %q, header X-Request-Id %q", id, r.Header.Get("X-Request-Id"))
	}
	return p
}

// apiError is the k0rdent draft's error envelope.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"details"`
	RequestID string `json:"requestId"`
}

// checkEnvelope asserts r is {"error": {"code", "message", "details"}}
// with code want, as application/json, and nothing else at the top.
func checkEnvelope(t *testing.T, r httpResp, want int) apiError {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json; body %s", ct, r.Body)
	}
	var top map[string]json.RawMessage
	r.decode(t, &top)
	raw, ok := top["error"]
	if !ok || len(top) != 1 {
		t.Fatalf("not an error envelope: %s", r.Body)
	}
	var e apiError
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("error envelope %s: %v", r.Body, err)
	}
	if e.Code != want {
		t.Errorf("error code %d, want %d", e.Code, want)
	}
	if e.Message == "" {
		t.Errorf("error without message: %s", r.Body)
	}
	if e.Details == nil {
		t.Errorf("error without details array: %s", r.Body)
	}
	for _, d := range e.Details {
		if d.Field == "" || d.Message == "" {
			t.Errorf("detail without field or message: %s", r.Body)
		}
	}
	if e.RequestID == "" || e.RequestID != r.Header.Get("X-Request-Id") {
		t.Errorf("error requestId %q, header X-Request-Id %q", e.RequestID, r.Header.Get("X-Request-Id"))
	}
	return e
}

// assertNoSecretsStored reads every event in the stream, every row of
// every table in the public and generation schemas, and the server's log,
// and fails if any secret the test saw appears in them (as is, or hex
// encoded as a bytea column shows it). As a check that the scan sees the
// data at all, each client secret's and API token's verifier must be in
// the log.
func (h *harness) assertNoSecretsStored(t *testing.T) {
	t.Helper()
	secrets := h.seen()
	if len(secrets) == 0 {
		t.Fatal("no secrets seen: nothing to check")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var log strings.Builder
	n := 0
	err := h.env.store.Read(ctx, events.Filter{}, func(env events.Envelope) error {
		raw, err := json.Marshal(env)
		if err != nil {
			return err
		}
		log.Write(raw)
		log.WriteByte('\n')
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("read the log: %v", err)
	}
	if n == 0 {
		t.Fatal("the log is empty")
	}
	stream := log.String()

	var tables []struct {
		Schema string `db:"table_schema"`
		Name   string `db:"table_name"`
	}
	if err := h.env.db.SQL().SelectContext(ctx, &tables, `SELECT table_schema, table_name FROM information_schema.tables
		WHERE table_schema = 'public' OR table_schema LIKE '%\_g%' ORDER BY 1, 2`); err != nil {
		t.Fatalf("list tables: %v", err)
	}
	var rows strings.Builder
	schemas := map[string]bool{}
	for _, tb := range tables {
		schemas[tb.Schema] = true
		q := "SELECT t::text FROM " + pq.QuoteIdentifier(tb.Schema) + "." + pq.QuoteIdentifier(tb.Name) + " t"
		var texts []string
		if err := h.env.db.SQL().SelectContext(ctx, &texts, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for _, s := range texts {
			fmt.Fprintf(&rows, "%s.%s: %s\n", tb.Schema, tb.Name, s)
		}
	}
	if len(schemas) < 2 {
		t.Fatalf("scanned schemas %v: want public and a generation schema", schemas)
	}
	db := rows.String()
	logs := h.logs.String()

	for secret, what := range secrets {
		forms := []string{secret, hex.EncodeToString([]byte(secret))}
		for _, f := range forms {
			if strings.Contains(stream, f) {
				t.Errorf("%s found in the event log", what)
			}
			if strings.Contains(db, f) {
				t.Errorf("%s found in the database", what)
			}
			if strings.Contains(logs, f) {
				t.Errorf("%s found in the server log", what)
			}
		}
		if strings.HasPrefix(secret, auth.PrefixClientSecret) || strings.HasPrefix(secret, auth.PrefixAPIToken) {
			if !strings.Contains(stream, auth.Verifier(secret)) {
				t.Errorf("verifier of %s not in the log: the scan would miss it", what)
			}
		}
	}
}
