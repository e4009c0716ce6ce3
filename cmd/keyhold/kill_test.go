package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/keyhold/keyhold/internal/testenv"
)

// serveProcess is `keyhold serve` in a process of its own.
type serveProcess struct {
	cmd  *exec.Cmd
	url  string
	logs *bytes.Buffer
}

// freeAddr returns a local address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs keyhold serve over cfg's data dir and database, on
// httpAddr and natsAddr, and waits until it is ready.
func startServe(t *testing.T, cfg *config, httpAddr, natsAddr string) *serveProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--data-dir", cfg.dataDir, "--database-url", cfg.databaseURL,
		"--http-addr", httpAddr, "--nats-listen", natsAddr, "--nats-url", "", "--log-level", "warn")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	p := &serveProcess{cmd: cmd, url: "http://" + httpAddr, logs: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(p.url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("keyhold serve not ready after 60s: %v\n%s", err, p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL: no shutdown code runs.
func (p *serveProcess) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
	}
}

// TestKeyedCreatesSurviveSIGKILL kills a real server process with SIGKILL
// while keyed creates are in flight, starts it again on the same data, and
// retries every key: each key ends up with exactly one account, a retry of
// a key that reached the log answers with what it created, and nothing is
// created twice. Half the creates go through the k0rdent API, half through
// Kestra's (whose service-account names are not unique, so only the key
// keeps a retry from creating a second account).
func TestKeyedCreatesSurviveSIGKILL(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	httpAddr, natsAddr := freeAddr(t), freeAddr(t)
	p := startServe(t, cfg, httpAddr, natsAddr)
	out, err := cli(t, cfg, natsAddr, "bootstrap", "--tenant", "acme", "--username", "root", "--email", "root@acme.example")
	testenv.Must(t, err, "bootstrap")
	var boot struct{ Token string }
	testenv.Must(t, json.Unmarshal([]byte(out[:strings.Index(out, "\n")+1]), &boot), "bootstrap output %q", out)

	client := &http.Client{Timeout: 10 * time.Second}
	// Each dialect's create and the status it answers a create with.
	dialects := []struct {
		path    string
		body    func(name string) map[string]any
		created int
	}{
		{saBase, func(name string) map[string]any { return orgSA("acme", name) }, http.StatusCreated},
		{"/api/v1/acme/service-accounts", func(name string) map[string]any { return map[string]any{"name": name} }, http.StatusOK},
	}
	create := func(url string, i int) (int, string, error) {
		d, key := dialects[i%len(dialects)], fmt.Sprintf("kill-%d", i)
		body, _ := json.Marshal(d.body(key))
		req, _ := http.NewRequest(http.MethodPost, url+d.path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+boot.Token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		res, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var got struct{ ID string }
		_ = json.Unmarshal(raw, &got)
		if res.StatusCode == d.created {
			return http.StatusCreated, got.ID, nil
		}
		return res.StatusCode, got.ID, nil
	}

	const n = 40
	firstIDs := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	var once sync.Once
	answered := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if status, id, err := create(p.url, i); err == nil && status == http.StatusCreated {
				firstIDs[i] = id
				once.Do(func() { close(answered) })
			}
		}()
	}
	close(start)
	// Kill as the first answers arrive: others are in flight, some with
	// their events in the log and no answer sent.
	select {
	case <-answered:
	case <-time.After(10 * time.Second):
	}
	p.kill()
	wg.Wait()

	p2 := startServe(t, cfg, httpAddr, natsAddr)
	db, err := sqlx.Open("postgres", cfg.databaseURL)
	testenv.Must(t, err, "open db")
	defer db.Close()
	// Claims of requests the kill cut short hold their lease for a minute;
	// end them now rather than wait.
	res, err := db.Exec(`UPDATE idempotency_keys SET lease_until = now() - interval '1 second' WHERE completed_at IS NULL`)
	testenv.Must(t, err, "end the leases")
	cut, _ := res.RowsAffected()
	done := 0
	for _, id := range firstIDs {
		if id != "" {
			done++
		}
	}
	var inLog int
	testenv.Must(t, db.Get(&inLog, `SELECT count(*) FROM service_accounts WHERE tenant = 'acme'`), "count")
	t.Logf("before the kill %d of %d creates answered; %d reached the log; %d claims were left running", done, n, inLog, cut)
	if cut == 0 {
		t.Log("the kill left no request cut short; this run checked only restarts")
	}

	ids := map[string]string{}
	for i := range n {
		key := fmt.Sprintf("kill-%d", i)
		status, id, err := create(p2.url, i)
		if err != nil || status != http.StatusCreated || id == "" {
			t.Fatalf("retry of %s: status %d, id %q, err %v", key, status, id, err)
		}
		if firstIDs[i] != "" && firstIDs[i] != id {
			t.Fatalf("retry of %s created %s; the first attempt answered %s", key, id, firstIDs[i])
		}
		ids[key] = id
	}
	var names []string
	testenv.Must(t, db.Select(&names, `SELECT display_name FROM service_accounts WHERE tenant = 'acme'`), "list")
	seen := map[string]int{}
	for _, name := range names {
		seen[name]++
	}
	for key := range ids {
		if seen[key] != 1 {
			t.Errorf("%s: %d accounts, want exactly 1", key, seen[key])
		}
	}
	if len(names) != n {
		t.Errorf("%d accounts for %d keys", len(names), n)
	}
}
