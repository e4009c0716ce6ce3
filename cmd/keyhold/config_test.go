package main

import (
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// runConfig binds a config to a root command as newRoot does, runs args
// (a subcommand "sub" exists) and returns the config and what validate
// said.
func runConfig(t *testing.T, args ...string) (*config, error) {
	t.Helper()
	cfg := &config{}
	cfg.bind()
	root := &cobra.Command{Use: "keyhold", SilenceUsage: true, SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) { cfg.running(cmd) }}
	root.AddCommand(cfg.use(&cobra.Command{Use: "sub", RunE: func(*cobra.Command, []string) error { return cfg.validate() }}, serveFlags...))
	root.SetArgs(args)
	return cfg, root.Execute()
}

// unsetenv removes name from the environment for the rest of the test;
// t.Setenv arranges for its value to come back afterwards.
func unsetenv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "")
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}

func TestEnvValuePrecedence(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantErr  []string // substrings of the error; none means success
		notInErr []string
		replicas int
		wait     time.Duration
	}{
		{"defaults", nil, []string{"sub"}, nil, nil, 1, 2 * time.Second},
		{"good env values apply", map[string]string{"KEYHOLD_READ_WAIT": "5s", "KEYHOLD_STREAM_REPLICAS": "3"}, []string{"sub"}, nil, nil, 3, 5 * time.Second},
		{"flags beat good env values", map[string]string{"KEYHOLD_READ_WAIT": "5s", "KEYHOLD_STREAM_REPLICAS": "3"},
			[]string{"sub", "--read-wait", "3s", "--stream-replicas", "1"}, nil, nil, 1, 3 * time.Second},
		{"flag after subcommand beats bad read wait", map[string]string{"KEYHOLD_READ_WAIT": "5"}, []string{"sub", "--read-wait", "3s"}, nil, nil, 1, 3 * time.Second},
		{"flag before subcommand beats bad read wait", map[string]string{"KEYHOLD_READ_WAIT": "5"}, []string{"--read-wait=3s", "sub"}, nil, nil, 1, 3 * time.Second},
		{"flag beats bad replicas", map[string]string{"KEYHOLD_STREAM_REPLICAS": "three"}, []string{"sub", "--stream-replicas", "3"}, nil, nil, 3, 2 * time.Second},
		{"bad read wait without flag", map[string]string{"KEYHOLD_READ_WAIT": "5"}, []string{"sub"},
			[]string{`KEYHOLD_READ_WAIT="5"`, "is not a duration such as 2s", "--read-wait"}, nil, 0, 0},
		{"bad replicas without flag", map[string]string{"KEYHOLD_STREAM_REPLICAS": "three"}, []string{"sub"},
			[]string{`KEYHOLD_STREAM_REPLICAS="three"`, "is not a whole number", "--stream-replicas"}, nil, 0, 0},
		{"only the variable without its flag is reported", map[string]string{"KEYHOLD_READ_WAIT": "5", "KEYHOLD_STREAM_REPLICAS": "three"},
			[]string{"sub", "--read-wait", "3s"}, []string{"KEYHOLD_STREAM_REPLICAS"}, []string{"KEYHOLD_READ_WAIT"}, 0, 0},
		{"both reported without flags", map[string]string{"KEYHOLD_READ_WAIT": "5", "KEYHOLD_STREAM_REPLICAS": "three"},
			[]string{"sub"}, []string{"KEYHOLD_STREAM_REPLICAS", "KEYHOLD_READ_WAIT"}, nil, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The caller's environment must not leak into a case.
			for _, name := range []string{"KEYHOLD_READ_WAIT", "KEYHOLD_STREAM_REPLICAS"} {
				if v, ok := tt.env[name]; ok {
					t.Setenv(name, v)
				} else {
					unsetenv(t, name)
				}
			}
			cfg, err := runConfig(t, tt.args...)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				if cfg.streamReplicas != tt.replicas || cfg.waitTimeout != tt.wait {
					t.Fatalf("replicas %d, read wait %s; want %d, %s", cfg.streamReplicas, cfg.waitTimeout, tt.replicas, tt.wait)
				}
				return
			}
			if err == nil {
				t.Fatal("no error, want one")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			for _, not := range tt.notInErr {
				if strings.Contains(err.Error(), not) {
					t.Errorf("error %q names %q, whose flag was given", err, not)
				}
			}
		})
	}
}

// TestReadWaitFlagBeatsBadEnvInCommand runs the commands from the bug
// report: a bad KEYHOLD_READ_WAIT must not stop serve --read-wait 3s (which
// then goes on to find its address taken), must stop serve without the
// flag, and does not concern projections status, which takes no
// --read-wait.
func TestReadWaitFlagBeatsBadEnvInCommand(t *testing.T) {
	t.Setenv("KEYHOLD_READ_WAIT", "5")
	cfg := testConfig(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	serve := []string{"serve", "--http-addr", taken.Addr().String()}
	for _, tt := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"flag given", append(slices.Clone(serve), "--read-wait", "3s"), "address in use"},
		{"flag not given", serve, "KEYHOLD_READ_WAIT"},
		{"command without the flag", []string{"projections", "status"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cli(t, cfg, "", tt.args...)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestIssuerFlag(t *testing.T) {
	tests := []struct {
		name    string
		env     string // KEYHOLD_ISSUER; "-" leaves it unset
		args    []string
		want    string
		wantErr string
	}{
		{"default", "-", []string{"sub"}, "keyhold", ""},
		{"from the environment", "https://iam.example.test", []string{"sub"}, "https://iam.example.test", ""},
		{"flag beats the environment", "https://old.example.test", []string{"sub", "--issuer", "https://iam.example.test/keyhold"}, "https://iam.example.test/keyhold", ""},
		{"http on localhost", "-", []string{"sub", "--issuer", "http://localhost:8080"}, "http://localhost:8080", ""},
		{"http elsewhere", "-", []string{"sub", "--issuer", "http://iam.example.test"}, "", "must use https"},
		{"query", "-", []string{"sub", "--issuer", "https://iam.example.test/?tenant=a"}, "", "no query or fragment"},
		{"fragment", "-", []string{"sub", "--issuer", "https://iam.example.test/#x"}, "", "no query or fragment"},
		{"no host", "-", []string{"sub", "--issuer", "https:///path"}, "", "needs a host"},
		{"space", "-", []string{"sub", "--issuer", "key hold"}, "", "--issuer"},
		{"empty", "", []string{"sub"}, "", "--issuer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env == "-" {
				unsetenv(t, "KEYHOLD_ISSUER")
			} else {
				t.Setenv("KEYHOLD_ISSUER", tt.env)
			}
			cfg, err := runConfig(t, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v, want none", err)
			}
			if got := cfg.tokenIssuer(); got != tt.want {
				t.Fatalf("issuer %q, want %q", got, tt.want)
			}
		})
	}
	// Operators learn from the help why the default is not their URL.
	cfg := &config{}
	cfg.bind()
	if help := cfg.flags.Lookup("issuer").Usage; !strings.Contains(help, "invalidates the tokens already") || !strings.Contains(help, "KEYHOLD_ISSUER") {
		t.Errorf("--issuer help %q does not say why the default stays", help)
	}
}
