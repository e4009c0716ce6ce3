// Package deploy holds Keyhold's deployment files (Compose, Kubernetes, NATS
// cluster and stream configuration, Postgres settings); its tests parse each
// of them with the parser that will read it and check the facts the
// deployment relies on.
package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"gopkg.in/yaml.v3"

	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

// readFile returns the contents of a file under deploy/.
func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b
}

// yamlDocs decodes every document of a YAML file into generic maps.
func yamlDocs(t *testing.T, name string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, name)))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("parse %s document %d: %v", name, len(docs)+1, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		t.Fatalf("%s holds no YAML document", name)
	}
	return docs
}

func TestEveryYAMLFileParses(t *testing.T) {
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found YAML files %v, want at least compose.yaml and kubernetes/keyhold.yaml", files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) { yamlDocs(t, f) })
	}
}

// composeFile is the part of a Compose file the tests look at.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Profiles    []string          `yaml:"profiles"`
	Build       struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal(readFile(t, "compose.yaml"), &c); err != nil {
		t.Fatalf("parse compose.yaml: %v", err)
	}
	return c
}

// natsVersionAtLeast tells whether a nats image tag such as "2.12-alpine"
// is of version major.minor or newer.
func natsVersionAtLeast(image string, major, minor int) bool {
	tag, ok := strings.CutPrefix(image, "nats:")
	if !ok {
		return false
	}
	tag, _, _ = strings.Cut(tag, "-")
	parts := strings.Split(tag, ".")
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	return err1 == nil && err2 == nil && (ma > major || ma == major && mi >= minor)
}

func TestCompose(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"postgres", "nats", "keyhold"} {
		svc, ok := c.Services[name]
		if !ok {
			t.Fatalf("compose.yaml lacks service %q", name)
		}
		if len(svc.Profiles) > 0 {
			t.Errorf("service %q is in profiles %v; it must start by default", name, svc.Profiles)
		}
	}

	t.Run("postgres", func(t *testing.T) {
		pg := c.Services["postgres"]
		if pg.Image != "postgres:15" {
			t.Errorf("image = %q, want postgres:15", pg.Image)
		}
		if pg.Healthcheck == nil || !strings.Contains(strings.Join(pg.Healthcheck.Test, " "), "pg_isready") {
			t.Errorf("healthcheck = %+v, want a pg_isready check", pg.Healthcheck)
		}
		checkMountsExist(t, pg.Volumes)
		if !slices.ContainsFunc(pg.Command, func(s string) bool { return strings.HasPrefix(s, "config_file=") }) {
			t.Errorf("command %v does not load deploy/postgres/postgresql.conf", pg.Command)
		}
	})

	t.Run("nats", func(t *testing.T) {
		n := c.Services["nats"]
		if !natsVersionAtLeast(n.Image, 2, 12) || !strings.HasSuffix(n.Image, "-alpine") {
			t.Errorf("image = %q, want nats:2.12-alpine or newer (atomic batch publish needs 2.12)", n.Image)
		}
		cmd := strings.Join(n.Command, " ")
		for _, want := range []string{"-js", "-sd /data"} {
			if !strings.Contains(cmd, want) {
				t.Errorf("command %q lacks %q", cmd, want)
			}
		}
		if n.Healthcheck == nil {
			t.Error("nats has no healthcheck, but keyhold waits for it to be healthy")
		}
	})

	t.Run("keyhold", func(t *testing.T) {
		k := c.Services["keyhold"]
		if k.Build.Context != ".." || k.Build.Dockerfile != "Dockerfile" {
			t.Errorf("build = %+v, want the Dockerfile at the repository root", k.Build)
		}
		if _, err := os.Stat(filepath.Join(k.Build.Context, k.Build.Dockerfile)); err != nil {
			t.Errorf("Dockerfile: %v", err)
		}
		for _, v := range []string{"KEYHOLD_DATABASE_URL", "KEYHOLD_NATS_URL", "KEYHOLD_HTTP_ADDR"} {
			if k.Environment[v] == "" {
				t.Errorf("environment lacks %s", v)
			}
		}
		if got := k.Environment["KEYHOLD_HTTP_ADDR"]; got != "0.0.0.0:8080" {
			t.Errorf("KEYHOLD_HTTP_ADDR = %q, want 0.0.0.0:8080", got)
		}
		if !strings.Contains(k.Environment["KEYHOLD_DATABASE_URL"], "@postgres:5432/") {
			t.Errorf("KEYHOLD_DATABASE_URL = %q does not name the postgres service", k.Environment["KEYHOLD_DATABASE_URL"])
		}
		for _, dep := range []string{"postgres", "nats"} {
			if got := k.DependsOn[dep].Condition; got != "service_healthy" {
				t.Errorf("depends_on %s condition = %q, want service_healthy", dep, got)
			}
		}
	})

	t.Run("cluster profile", func(t *testing.T) {
		for i := 1; i <= 3; i++ {
			name := "nats-" + strconv.Itoa(i)
			svc, ok := c.Services[name]
			if !ok {
				t.Fatalf("compose.yaml lacks service %q", name)
			}
			if !slices.Contains(svc.Profiles, "cluster") {
				t.Errorf("%s profiles = %v, want cluster", name, svc.Profiles)
			}
			if !slices.Contains(svc.Volumes, "./nats/"+name+".conf:/etc/nats/nats.conf:ro") {
				t.Errorf("%s volumes = %v, want its nats/%s.conf", name, svc.Volumes, name)
			}
			checkMountsExist(t, svc.Volumes)
		}
	})

	t.Run("named volumes are declared", func(t *testing.T) {
		for name, svc := range c.Services {
			for _, v := range svc.Volumes {
				src, _, _ := strings.Cut(v, ":")
				if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
					continue
				}
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("service %s uses volume %q, not declared under volumes", name, src)
				}
			}
		}
	})
}

// checkMountsExist fails the test for a bind mount whose source is missing.
func checkMountsExist(t *testing.T, volumes []string) {
	t.Helper()
	for _, v := range volumes {
		src, _, _ := strings.Cut(v, ":")
		if !strings.HasPrefix(src, ".") {
			continue
		}
		if _, err := os.Stat(src); err != nil {
			t.Errorf("bind mount %q: %v", v, err)
		}
	}
}

func TestDockerfile(t *testing.T) {
	df := string(readFile(t, "../Dockerfile"))
	for _, want := range []string{"FROM golang:1.26 AS build", "FROM gcr.io/distroless/static", "./cmd/keyhold", "CGO_ENABLED=0"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// k8sObject is the part of a Kubernetes object the tests look at.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Template struct {
			Spec struct {
				Containers []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		Ports []struct {
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name  string    `yaml:"name"`
	Ports []k8sPort `yaml:"ports"`
	Env   []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	EnvFrom        []k8sEnvFrom `yaml:"envFrom"`
	ReadinessProbe *k8sProbe    `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe    `yaml:"livenessProbe"`
}

type k8sPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

type k8sEnvFrom struct {
	SecretRef *struct {
		Name string `yaml:"name"`
	} `yaml:"secretRef"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

func TestKubernetes(t *testing.T) {
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, "kubernetes/keyhold.yaml")))
	objects := map[string]k8sObject{}
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("parse kubernetes/keyhold.yaml: %v", err)
		}
		if o.Kind == "" {
			continue
		}
		if o.APIVersion == "" || o.Metadata.Name == "" {
			t.Errorf("%s object lacks apiVersion or metadata.name", o.Kind)
		}
		objects[o.Kind] = o
	}

	dep, ok := objects["Deployment"]
	if !ok {
		t.Fatal("no Deployment")
	}
	if _, ok := objects["Service"]; !ok {
		t.Error("no Service")
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("Deployment replicas = %v, want 2", dep.Spec.Replicas)
	}
	cs := dep.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("Deployment has %d containers, want 1", len(cs))
	}
	c := cs[0]
	probes := []struct {
		name  string
		probe *k8sProbe
		path  string
	}{
		{"readiness", c.ReadinessProbe, "/readyz"},
		{"liveness", c.LivenessProbe, "/healthz"},
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Fatalf("no HTTP %s probe", p.name)
			}
			if p.probe.HTTPGet.Path != p.path {
				t.Errorf("%s probe path = %q, want %q", p.name, p.probe.HTTPGet.Path, p.path)
			}
			if !slices.ContainsFunc(c.Ports, func(cp k8sPort) bool { return cp.Name == p.probe.HTTPGet.Port }) {
				t.Errorf("%s probe port %q names no container port", p.name, p.probe.HTTPGet.Port)
			}
		})
	}
	if !slices.ContainsFunc(c.EnvFrom, func(e k8sEnvFrom) bool { return e.SecretRef != nil && e.SecretRef.Name != "" }) {
		t.Error("container takes no environment from a Secret")
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["KEYHOLD_HTTP_ADDR"] != "0.0.0.0:8080" || env["KEYHOLD_STREAM_REPLICAS"] != "3" {
		t.Errorf("env = %v, want KEYHOLD_HTTP_ADDR=0.0.0.0:8080 and KEYHOLD_STREAM_REPLICAS=3", env)
	}
}

func TestNATSClusterConfigs(t *testing.T) {
	// The cluster address each node listens on, by server name.
	clusterAddr := map[string]string{}
	opts := map[string]*server.Options{}
	for i := 1; i <= 3; i++ {
		name := "nats-" + strconv.Itoa(i)
		o, err := server.ProcessConfigFile(filepath.Join("nats", name+".conf"))
		if err != nil {
			t.Fatalf("parse nats/%s.conf: %v", name, err)
		}
		opts[name] = o
		clusterAddr[name] = strconv.Itoa(o.Cluster.Port)
	}
	for name, o := range opts {
		t.Run(name, func(t *testing.T) {
			if o.ServerName != name {
				t.Errorf("server_name = %q, want %q", o.ServerName, name)
			}
			if !o.JetStream {
				t.Error("JetStream is not enabled")
			}
			if o.StoreDir == "" || o.JetStreamMaxStore <= 0 {
				t.Errorf("jetstream store_dir = %q, max_file = %d; want both set", o.StoreDir, o.JetStreamMaxStore)
			}
			if o.Cluster.Name != "keyhold" {
				t.Errorf("cluster name = %q, want keyhold", o.Cluster.Name)
			}
			if o.Port == 4222 || o.Cluster.Port == 0 || o.HTTPPort == 0 {
				t.Errorf("ports: client %d, cluster %d, monitoring %d; want the cluster and monitoring set and the client not on 4222",
					o.Port, o.Cluster.Port, o.HTTPPort)
			}
			if len(o.Routes) != 2 {
				t.Fatalf("routes = %v, want 2", o.Routes)
			}
			var peers []string
			for _, r := range o.Routes {
				host, port, err := net.SplitHostPort(r.Host)
				if err != nil {
					t.Fatalf("route %s: %v", r, err)
				}
				if host == name {
					t.Errorf("route %s points at the node itself", r)
				}
				if clusterAddr[host] != port {
					t.Errorf("route %s: node %s listens for routes on port %s", r, host, clusterAddr[host])
				}
				peers = append(peers, host)
			}
			if slices.Sort(peers); len(slices.Compact(peers)) != 2 {
				t.Errorf("routes %v do not reach the two other nodes", o.Routes)
			}
		})
	}
	t.Run("store directories differ", func(t *testing.T) {
		seen := map[string]string{}
		for name, o := range opts {
			if other, ok := seen[o.StoreDir]; ok {
				t.Errorf("%s and %s share store_dir %q", name, other, o.StoreDir)
			}
			seen[o.StoreDir] = name
		}
	})
}

// TestStreamConfig compares nats/stream.json, which operators apply to
// create the stream on a cluster (README), with the stream the store
// creates itself (events.Open) on a real server: the two must not
// drift apart. Only the replica count differs, since one test server
// cannot hold three replicas.
func TestStreamConfig(t *testing.T) {
	dec := json.NewDecoder(bytes.NewReader(readFile(t, "nats/stream.json")))
	dec.DisallowUnknownFields() // a misspelt field would silently be ignored by the server
	var file jetstream.StreamConfig
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("parse nats/stream.json: %v", err)
	}
	if file.Replicas != 3 {
		t.Errorf("num_replicas = %d, want 3 (the cluster of nats-1..3.conf)", file.Replicas)
	}

	ctx := context.Background()
	nc := testenv.Conn(t, testenv.NATS(t, ""))
	st, err := events.Open(ctx, nc) // the defaults keyhold serve uses
	if err != nil {
		t.Fatalf("open the store: %v", err)
	}
	stream, err := st.JetStream().Stream(ctx, st.StreamName())
	if err != nil {
		t.Fatalf("look up the stream: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	created := info.Config
	created.Replicas = file.Replicas
	// The server records its own version in the metadata.
	for k := range created.Metadata {
		if strings.HasPrefix(k, "_nats.") {
			delete(created.Metadata, k)
		}
	}
	if len(created.Metadata) == 0 {
		created.Metadata = nil
	}

	want, got := fields(t, created), fields(t, file)
	names := map[string]bool{}
	for k := range want {
		names[k] = true
	}
	for k := range got {
		names[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(names)) {
		if !reflect.DeepEqual(want[k], got[k]) {
			t.Errorf("%s: stream.json has %v, the store creates %v", k, orAbsent(got, k), orAbsent(want, k))
		}
	}
}

// fields returns a stream configuration as its JSON fields.
func fields(t *testing.T, c jetstream.StreamConfig) map[string]any {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("encode stream config: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode stream config: %v", err)
	}
	return m
}

func orAbsent(m map[string]any, k string) any {
	if v, ok := m[k]; ok {
		return v
	}
	return "(absent)"
}

// postgresBinary returns the path of the postgres server binary, or "".
func postgresBinary() string {
	if p, err := exec.LookPath("postgres"); err == nil {
		return p
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(dirs) == 0 {
		return ""
	}
	slices.Sort(dirs)
	return dirs[len(dirs)-1]
}

func TestPostgresSettings(t *testing.T) {
	lines := strings.Split(string(readFile(t, "postgres/postgresql.conf")), "\n")
	settings := map[string]string{}
	for i, line := range lines {
		code, comment, hasComment := strings.Cut(line, "#")
		code = strings.TrimSpace(code)
		if code == "" {
			continue
		}
		name, value, ok := strings.Cut(code, "=")
		if !ok {
			t.Errorf("line %d: %q is not name = value", i+1, line)
			continue
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !hasComment || strings.TrimSpace(comment) == "" {
			t.Errorf("line %d: %s has no comment explaining it", i+1, name)
		}
		if _, dup := settings[name]; dup {
			t.Errorf("line %d: %s set twice", i+1, name)
		}
		settings[name] = value
	}
	for _, want := range []string{"shared_buffers", "max_wal_size", "checkpoint_completion_target", "synchronous_commit"} {
		if _, ok := settings[want]; !ok {
			t.Errorf("no %s setting", want)
		}
	}

	bin := postgresBinary()
	if bin == "" {
		t.Skip("no postgres binary to check the setting names against")
	}
	// --describe-config lists every setting the server knows, one a line.
	out, err := exec.Command(bin, "--describe-config").Output()
	if err != nil {
		t.Skipf("%s --describe-config: %v", bin, err)
	}
	known := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if name, _, ok := strings.Cut(l, "\t"); ok {
			known[name] = true
		}
	}
	for name := range settings {
		if !known[name] {
			t.Errorf("%s is not a setting %s knows", name, bin)
		}
	}
}

func TestREADME(t *testing.T) {
	readme := string(readFile(t, "README.md"))
	for _, want := range []string{"--stream-replicas 3", "KEYHOLD_STREAM_REPLICAS", "--nats-url", "/readyz", "/healthz", "nats-1.conf", "stream.json", "postgresql.conf"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md does not mention %q", want)
		}
	}
}
