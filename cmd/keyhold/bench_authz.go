package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyhold/keyhold/authz"
	khttp "github.com/keyhold/keyhold/http"
	"github.com/keyhold/keyhold/http/decision"
)

// authzCheckJSON is the body of POST /v1/authz/check, field for field as
// the decision API decodes it.
type authzCheckJSON struct {
	PrincipalID string `json:"principalId,omitempty"`
	Token       string `json:"token,omitempty"`
	Tenant      string `json:"tenant,omitempty"`
	Scope       string `json:"scope,omitempty"`
	Action      string `json:"action"`
	Resource    string `json:"resource,omitempty"`
}

// authzDecisionJSON is the decision API's answer.
type authzDecisionJSON struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

// authzCheckBody is the question of the authz check scenarios: may the
// token client (viewer and auditor at the tenant) list roles at a node?
func (b *bench) authzCheckBody() string {
	body, _ := json.Marshal(authzCheckJSON{PrincipalID: b.clientSA, Scope: "team.app", Action: authz.RolesList})
	return string(body)
}

// newAuthzFloor returns the baseline of authz_check_http: a router with
// the server's outer middleware (request id, logging, metrics, from
// khttp.NewRouter) serving POST /v1/authz/check with a handler that
// decodes the same body with the same decoder and answers answer, a
// decision fixed in advance. It is what the decision API costs without
// authentication and the decision itself.
func newAuthzFloor(b *bench, answer authzDecisionJSON) (http.Handler, error) {
	r, err := khttp.NewRouter(khttp.Config{Logger: b.env.e.log, Registry: prometheus.NewRegistry(), OpenAPI: []byte("{}")})
	if err != nil {
		return nil, err
	}
	r.Handle(decision.CheckPath, khttp.Methods{http.MethodPost: func(w http.ResponseWriter, r *http.Request) {
		var body authzCheckJSON
		if err := khttp.DecodeJSON(w, r, &body); err != nil {
			khttp.WriteProblem(w, r, http.StatusBadRequest, "", err.Error())
			return
		}
		if body.Action == "" {
			khttp.WriteProblem(w, r, http.StatusBadRequest, "action", "action is required")
			return
		}
		khttp.WriteJSON(w, http.StatusOK, answer)
	}})
	return r, nil
}

// authzCheck measures authz_check_http, POST /v1/authz/check of the
// wired server (authentication with the administrator's API token, the
// subject's lookup, the decision), against authz_check_floor, the same
// body decoded and a constant answer on the same server stack, with
// --concurrency connections and alternating rounds. The floor answers
// exactly what the wired server answered, so both send the same bytes.
func (b *bench) authzCheck(ctx context.Context) (base, meas benchResult, rounds []float64, err error) {
	c := b.opts.concurrency
	body := b.authzCheckBody()
	wired, err := newWireClient(strings.TrimPrefix(b.env.baseURL, "http://"), c+1,
		"Authorization", "Bearer "+b.token, "Content-Type", "application/json")
	if err != nil {
		return base, meas, nil, err
	}
	defer wired.Close()
	// The check op (worker c) insists on the decision the question has.
	answer, err := authzCheckOnce(ctx, wired, c, body)
	if err != nil {
		return base, meas, nil, fmt.Errorf("authz_check_http: %w", err)
	}
	if !answer.Allowed {
		return base, meas, nil, fmt.Errorf("authz_check_http: the token client may not list roles: %s", answer.Reason)
	}
	h, err := newAuthzFloor(b, answer)
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
	floor, err := newWireClient(ln.Addr().String(), c+1, "Authorization", "Bearer "+b.token, "Content-Type", "application/json")
	if err != nil {
		return base, meas, nil, err
	}
	defer floor.Close()
	if got, err := authzCheckOnce(ctx, floor, c, body); err != nil || got != answer {
		return base, meas, nil, fmt.Errorf("authz_check_floor: answered %+v (%v), want %+v", got, err, answer)
	}
	fs, ws, rounds, err := b.interleave(ctx,
		loadSpec{name: "authz_check_floor", concurrency: c, op: postOK(floor, decision.CheckPath, body)},
		loadSpec{name: "authz_check_http", concurrency: c, op: postOK(wired, decision.CheckPath, body)})
	if err != nil {
		return base, meas, nil, err
	}
	base = resultOf("authz_check_floor", "request", c, fs, 1)
	meas = resultOf("authz_check_http", "request", c, ws, 1)
	meas.Note = "one check by principalId, authenticated with a personal API token; the floor decodes the same body and answers a constant"
	return base, meas, rounds, nil
}

// authzCheckOnce asks the check in body on worker w of client and
// returns the decision.
func authzCheckOnce(ctx context.Context, client *wireClient, w int, body string) (authzDecisionJSON, error) {
	var d authzDecisionJSON
	resp, err := client.do(ctx, w, http.MethodPost, decision.CheckPath, body)
	if err != nil {
		return d, err
	}
	if resp.status != http.StatusOK {
		return d, wireStatusError(http.MethodPost, decision.CheckPath, resp, http.StatusOK)
	}
	if err := json.Unmarshal(resp.body, &d); err != nil {
		return d, fmt.Errorf("decision answer %q: %w", resp.body, err)
	}
	if d.Reason == "" {
		return d, errors.New("decision answer without a reason")
	}
	return d, nil
}

// postOK is a load operation that POSTs body to path with client and
// wants 200.
func postOK(client *wireClient, path, body string) loadOp {
	return func(ctx context.Context, w, _ int) error {
		resp, err := client.do(ctx, w, http.MethodPost, path, body)
		if err != nil {
			return err
		}
		if resp.status != http.StatusOK {
			return wireStatusError(http.MethodPost, path, resp, http.StatusOK)
		}
		return nil
	}
}
