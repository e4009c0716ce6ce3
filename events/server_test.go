package events_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/events"
)

// TestEmbeddedLocksItsStore starts a second server on a live store: it
// must be refused, naming the first one's address, and the store must be
// free again once the first one stops.
func TestEmbeddedLocksItsStore(t *testing.T) {
	dir := t.TempDir()
	first, err := events.StartEmbedded(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Shutdown()

	second, err := events.StartEmbedded(dir, "127.0.0.1:0")
	if err == nil {
		second.Shutdown()
		t.Fatal("a second server started on a store in use")
	}
	var inUse *events.StoreInUseError
	if !errors.Is(err, events.ErrStoreInUse) || !errors.As(err, &inUse) || inUse.URL != first.ClientURL() {
		t.Fatalf("error %v, want ErrStoreInUse naming %s", err, first.ClientURL())
	}
	if !strings.Contains(err.Error(), first.ClientURL()) {
		t.Errorf("error %q does not name the running server", err)
	}
	url, running, err := events.RunningEmbedded(dir)
	if err != nil || !running || url != first.ClientURL() {
		t.Fatalf("RunningEmbedded = %q, %v, %v; want %s, true", url, running, err, first.ClientURL())
	}
	// A probe must not keep the holder from its store, nor a server from
	// starting after it.
	first.Shutdown()
	if url, running, err := events.RunningEmbedded(dir); err != nil || running || url != "" {
		t.Fatalf("after shutdown RunningEmbedded = %q, %v, %v; want not running", url, running, err)
	}
	again, err := events.StartEmbedded(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("restart on a released store: %v", err)
	}
	again.Shutdown()
}

// TestEmbeddedIgnoresStaleAddress covers a holder killed with SIGKILL: the
// kernel released its lock, but its address file stayed behind. Nobody
// may trust it, and a new server takes the store.
func TestEmbeddedIgnoresStaleAddress(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"keyhold.lock": "", "keyhold.addr": "nats://127.0.0.1:1\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if url, running, err := events.RunningEmbedded(dir); err != nil || running || url != "" {
		t.Fatalf("RunningEmbedded = %q, %v, %v; want not running", url, running, err)
	}
	srv, err := events.StartEmbedded(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("start over a stale address: %v", err)
	}
	defer srv.Shutdown()
	if url, running, err := events.RunningEmbedded(dir); err != nil || !running || url != srv.ClientURL() {
		t.Fatalf("RunningEmbedded = %q, %v, %v; want %s", url, running, err, srv.ClientURL())
	}
}
