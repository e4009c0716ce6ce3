package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/auth"
)

// TestTrustedProxies: behind a trusted proxy, failed client
// authentications are throttled per client address from X-Forwarded-For,
// so one client's failures do not lock out the others behind the proxy.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.trustedProxies = "127.0.0.1/32, ::1/128"
	h := startServer(t, cfg)
	a := h.bootstrap(t, "acme")
	var clients []string
	for range 5 {
		clients = append(clients, h.createSA(t, a.token, tenantSA("c")).ClientID)
	}
	wrong := auth.NewSecret(auth.PrefixClientSecret)
	h.remember(wrong, "wrong secret")
	grant := func(t *testing.T, client, forwarded string) int {
		t.Helper()
		v := url.Values{"grant_type": {"client_credentials"}, "client_id": {client}, "client_secret": {wrong}}
		req, err := http.NewRequest(http.MethodPost, h.ts.URL+"/oauth2/token", strings.NewReader(v.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", forwarded)
		res, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	// The address throttle lets 30 failures a minute through, then the
	// 31st sets a delay; the client throttle allows 10 per client id, so
	// four ids share the 31.
	for i := range 31 {
		if got := grant(t, clients[i/10], "203.0.113.7"); got != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i+1, got)
		}
	}
	if got := grant(t, clients[3], "203.0.113.7"); got != http.StatusTooManyRequests {
		t.Fatalf("after 31 failures from one address: status %d, want 429", got)
	}
	// Another client behind the same proxy is not slowed down...
	if got := grant(t, clients[4], "203.0.113.8"); got != http.StatusUnauthorized {
		t.Fatalf("another address behind the proxy: status %d, want 401", got)
	}
	// ...and a client cannot escape its throttle by prepending addresses:
	// the proxy appends the peer it saw, so only the last entry counts.
	if got := grant(t, clients[4], "198.51.100.1, 203.0.113.7"); got != http.StatusTooManyRequests {
		t.Fatalf("forged entry before the real address: status %d, want 429", got)
	}
}
