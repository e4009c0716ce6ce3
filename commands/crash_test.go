package commands

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/privacy"
)

// TestUniquenessSurvivesCrashMidBatch runs a bootstrap whose process dies
// at the worst moment for its uniqueness claims: events.Store.Append has
// sent the first parts of the atomic batch (the claims among them) and
// the connection breaks while it writes the commit. Nothing may be
// stored, and the username must stay free for the next claimant.
func TestUniquenessSurvivesCrashMidBatch(t *testing.T) {
	srv := testenv.NATS(t, "")
	nc := testenv.Conn(t, srv)
	opts := testenv.StreamOptions()
	st, err := events.Open(context.Background(), nc, opts...)
	testenv.Must(t, err, "open store")

	// Watch what reaches the server, so the test cannot pass by crashing
	// before the batch began.
	parts := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(st.Prefix()+".>", parts)
	testenv.Must(t, err, "watch the stream's subjects")
	defer sub.Unsubscribe() //nolint:errcheck // the connection closes with the test
	testenv.Must(t, nc.Flush(), "flush the subscription")

	addr, cut := cutBefore(t, strings.TrimPrefix(srv.ClientURL(), "nats://"), []byte("Nats-Batch-Commit"))
	crashing, err := nats.Connect("nats://"+addr, nats.Name("crashing"), nats.NoReconnect())
	testenv.Must(t, err, "connect through the proxy")
	defer crashing.Close()
	dying, err := events.Open(context.Background(), crashing, opts...)
	testenv.Must(t, err, "open store through the proxy")
	personal := privacy.NewMemory() // one key store for both processes, as replicas share one
	doomed, err := New(dying, WithPersonalData(personal))
	testenv.Must(t, err, "commands")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := doomed.Bootstrap.Handle(ctx, Bootstrap{Meta: Meta{Caller: auth.System()}, Tenant: "acme", Username: "alice", Email: "alice@acme.test"}); err == nil {
		t.Fatal("the bootstrap succeeded although its connection broke before the commit")
	}
	select {
	case <-cut:
	default:
		t.Fatal("the bootstrap failed without writing a batch commit: the crash was not mid-batch")
	}
	claims := 0
	check := func(m *nats.Msg) {
		if m.Header.Get("Nats-Batch-Id") == "" || m.Header.Get("Nats-Batch-Commit") != "" {
			t.Fatalf("reached the server: %s with headers %v, want only uncommitted batch parts", m.Subject, m.Header)
		}
		if strings.Contains(m.Subject, "."+events.AggregateUnique+".") {
			claims++
		}
	}
	// The server passes on what the dying connection sent as it gets to
	// it, not before this connection's flush returns: wait for a claim.
	deadline := time.After(5 * time.Second)
	for claims == 0 {
		select {
		case m := <-parts:
			check(m)
		case <-deadline:
			t.Fatal("no uniqueness claim reached the server before the crash")
		}
	}
	testenv.Must(t, nc.Flush(), "flush")
	for len(parts) > 0 {
		check(<-parts)
	}

	if seq, err := st.LastSequence(context.Background()); err != nil || seq != 0 {
		t.Fatalf("stream holds %d events after an uncommitted batch (err %v), want 0", seq, err)
	}
	cmds, err := New(st, WithPersonalData(personal))
	testenv.Must(t, err, "commands")
	_, err = cmds.Bootstrap.Handle(context.Background(), Bootstrap{Meta: Meta{Caller: auth.System()}, Tenant: "beta", Username: "alice", Email: "alice@beta.test"})
	testenv.Must(t, err, "bootstrap after the crash")
}

// cutBefore proxies one TCP connection to target until the client sends
// marker, then closes both sides before forwarding the marker: the
// message holding it never arrives whole, as when a process dies while
// writing it. It returns the proxy's address and a channel closed at the
// cut.
func cutBefore(t *testing.T, target string, marker []byte) (string, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testenv.Must(t, err, "listen")
	t.Cleanup(func() { ln.Close() })
	cut := make(chan struct{})
	go func() {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		defer client.Close()
		server, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer server.Close()
		go func() { _, _ = io.Copy(client, server) }()
		// tail keeps the last bytes forwarded, for a marker split
		// across reads.
		var tail []byte
		buf := make([]byte, 32<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				seen := append(tail, buf[:n]...)
				if i := bytes.Index(seen, marker); i >= 0 {
					if i > len(tail) {
						_, _ = server.Write(seen[len(tail):i])
					}
					close(cut)
					return
				}
				if _, err := server.Write(buf[:n]); err != nil {
					return
				}
				tail = append([]byte(nil), seen[max(0, len(seen)-len(marker)+1):]...)
			}
			if err != nil {
				return
			}
		}
	}()
	return ln.Addr().String(), cut
}

// TestConcurrentClaimsOneWinner races bootstraps of different tenants
// for one username through separate handler sets (separate caches, as on
// separate replicas): exactly one may win.
func TestConcurrentClaimsOneWinner(t *testing.T) {
	st, _ := testenv.Store(t)
	const n = 8
	var wg sync.WaitGroup
	results := make(chan error, n)
	personal := privacy.NewMemory() // shared, as replicas share one
	for i := range n {
		cmds, err := New(st, WithPersonalData(personal))
		testenv.Must(t, err, "commands")
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant := string(rune('a'+i)) + "-corp"
			_, err := cmds.Bootstrap.Handle(context.Background(), Bootstrap{Meta: Meta{Caller: auth.System()}, Tenant: tenant, Username: "same", Email: tenant + "@x.test"})
			results <- err
		}()
	}
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case errors.Is(err, ErrAlreadyExists), errors.Is(err, ErrConcurrentChange):
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d bootstraps claimed the same username, want exactly 1", won)
	}
	var users int
	err := st.Read(context.Background(), events.Filter{}, func(e events.Envelope) error {
		if e.Type == "iam.user.created" {
			users++
		}
		return nil
	})
	testenv.Must(t, err, "read")
	if users != 1 {
		t.Fatalf("log holds %d users, want 1", users)
	}
}
