package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
)

// TestBenchQuick runs keyhold bench --quick against the test Postgres
// server and checks the shape of its output: one JSON object a line for
// every scenario, each with a positive throughput. The targets are not
// asserted: the figures are too noisy on a shared machine. It also checks
// that the bench dropped its private database.
func TestBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("bench smoke test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	root := newRoot()
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs([]string{"bench", "--quick", "--database-url", testenv.AdminURL()})
	start := time.Now()
	err := root.ExecuteContext(ctx)
	t.Logf("bench --quick took %s; stderr:\n%s", time.Since(start).Round(time.Millisecond), stderr.String())
	if err != nil {
		t.Fatalf("bench --quick: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("bench --quick did not finish within 40s")
	}

	results := map[string]map[string]any{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		line := sc.Bytes()
		var r map[string]any
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("stdout line is not a JSON object: %q: %v", line, err)
		}
		name, _ := r["name"].(string)
		if name == "" {
			t.Fatalf("result without a name: %s", line)
		}
		if _, dup := results[name]; dup {
			t.Errorf("scenario %s reported twice", name)
		}
		results[name] = r
	}
	for _, name := range []string{"jetstream_occ_publish", "create_service_account_http", "oauth2_token_floor",
		"oauth2_token_http", "postgres_copy_baseline", "projection_rebuild", "bearer_auth_http", "basic_auth_http",
		"authz_check_floor", "authz_check_http", "kestra_roles_search_query", "kestra_roles_search_http"} {
		r, ok := results[name]
		if !ok {
			t.Errorf("no result for %s", name)
			continue
		}
		for _, f := range []string{"ops_per_s", "p50_ms", "p99_ms"} {
			if _, ok := r[f].(float64); !ok {
				t.Errorf("%s: %s missing or not a number: %v", name, f, r[f])
			}
		}
		if ops, _ := r["ops_per_s"].(float64); ops <= 0 {
			t.Errorf("%s: ops_per_s = %v, want > 0", name, r["ops_per_s"])
		}
	}
	for name, base := range map[string]string{"create_service_account_http": "jetstream_occ_publish",
		"oauth2_token_http": "oauth2_token_floor", "projection_rebuild": "postgres_copy_baseline",
		"authz_check_http": "authz_check_floor", "kestra_roles_search_http": "kestra_roles_search_query"} {
		r := results[name]
		if r == nil {
			continue
		}
		if r["baseline"] != base {
			t.Errorf("%s: baseline = %v, want %s", name, r["baseline"], base)
		}
		for _, f := range []string{"ratio", "target"} {
			if v, ok := r[f].(float64); !ok || v <= 0 {
				t.Errorf("%s: %s = %v, want a positive number", name, f, r[f])
			}
		}
		if _, ok := r["target_met"].(bool); !ok {
			t.Errorf("%s: target_met = %v, want a boolean", name, r["target_met"])
		}
	}

	m := regexp.MustCompile(`private database (keyhold_bench_[0-9a-f]+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatal("stderr does not name the private database")
	}
	if !strings.Contains(stderr.String(), "dropped database "+m[1]) {
		t.Errorf("stderr does not report dropping %s", m[1])
	}
	admin, err := sql.Open("postgres", testenv.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var n int
	if err := admin.QueryRow("SELECT count(*) FROM pg_database WHERE datname = $1", m[1]).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after the bench", m[1])
	}
}
