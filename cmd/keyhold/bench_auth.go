package main

import (
	"context"
	"encoding/base64"
	"strings"
)

// benchPassword is the bench administrator's password, for basic_auth_http.
const benchPassword = "bench administrator password"

// basicAuth measures one authenticated GET with HTTP Basic against the
// same GET with the administrator's personal API token.
func (b *bench) basicAuth(ctx context.Context) (base, meas benchResult, rounds []float64, err error) {
	c := min(b.opts.concurrency, listConcurrency)
	addr := strings.TrimPrefix(b.env.baseURL, "http://")
	path := "/v1/audit/events?aggregate=" + b.adminID
	bearer, err := newWireClient(addr, c, "Authorization", "Bearer "+b.token)
	if err != nil {
		return base, meas, nil, err
	}
	defer bearer.Close()
	basic, err := newWireClient(addr, c, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("bench-admin:"+benchPassword)))
	if err != nil {
		return base, meas, nil, err
	}
	defer basic.Close()
	// The figure is of repeated requests: one request first pays the
	// password hash, which every worker would otherwise pay at once.
	if err := getOK(basic, path)(ctx, 0, 0); err != nil {
		return base, meas, nil, err
	}
	bs, ms, rounds, err := b.interleave(ctx, loadSpec{name: "bearer_auth_http", concurrency: c, op: getOK(bearer, path)}, loadSpec{name: "basic_auth_http", concurrency: c, op: getOK(basic, path)})
	if err != nil {
		return base, meas, nil, err
	}
	return resultOf("bearer_auth_http", "request", c, bs, 1), resultOf("basic_auth_http", "request", c, ms, 1), rounds, nil
}
