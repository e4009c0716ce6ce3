package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// perm returns the permission bits of path.
func perm(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestDataDirEnterableNATSStorePrivate starts the embedded NATS the way
// serve does and checks the directories it made: the postgres user of a
// private cluster must be able to enter the data dir, and no one else may
// read the event log.
func TestDataDirEnterableNATSStorePrivate(t *testing.T) {
	tests := []struct {
		name     string
		dataDir  func(t *testing.T) string
		wantData os.FileMode
	}{
		{"fresh", func(t *testing.T) string { return filepath.Join(t.TempDir(), "data") }, 0o755},
		{"fresh with missing parents", func(t *testing.T) string { return filepath.Join(t.TempDir(), "a", "b", "data") }, 0o755},
		{"existing dir keeps its mode", func(t *testing.T) string {
			d := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(d, 0o750); err != nil {
				t.Fatal(err)
			}
			return d
		}, 0o750},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dataDir(t)
			e := &env{cfg: &config{dataDir: dir, natsListen: "127.0.0.1:0"}, log: slog.New(slog.DiscardHandler)}
			t.Cleanup(e.close)
			if err := e.connectNATS(true); err != nil {
				t.Fatalf("connectNATS: %v", err)
			}
			if m := perm(t, dir); m != tt.wantData {
				t.Errorf("data dir mode %v, want %v", m, tt.wantData)
			}
			if m := perm(t, filepath.Join(dir, "nats")); m&0o077 != 0 {
				t.Errorf("NATS store mode %v, want private to its owner", m)
			}
		})
	}
}

func TestRedactNATSURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no user info", "nats://127.0.0.1:4223", "nats://127.0.0.1:4223"},
		{"password", "nats://kh:S3cretPw@127.0.0.1:4223", "nats://kh:xxxxx@127.0.0.1:4223"},
		{"token", "nats://S3cretTok@nats.example:4223", "nats://xxxxx@nats.example:4223"},
		{"no scheme", "kh:S3cretPw@127.0.0.1:4223", "kh:xxxxx@127.0.0.1:4223"},
		{"tls", "tls://kh:S3cretPw@nats.example", "tls://kh:xxxxx@nats.example"},
		{"list", "nats://a:S3cretPw@n1:4223, nats://S3cretTok@n2:4223,nats://n3:4223",
			"nats://a:xxxxx@n1:4223, nats://xxxxx@n2:4223,nats://n3:4223"},
		{"slash and hash in password", "nats://kh:S3c/re#tPw@n1:4223", "nats://kh:xxxxx@n1:4223"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redactNATSURL(tt.in); got != tt.want {
				t.Fatalf("redactNATSURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestNATSConnectErrorHidesSecrets fails to connect to NATS URLs carrying
// secrets (nothing listens on ports 1 and 2) and checks the error names
// the server but not the secret, nor the fragments url.Parse would quote.
func TestNATSConnectErrorHidesSecrets(t *testing.T) {
	tests := []struct {
		name, url string
		hidden    []string
		noServers bool // the error still unwraps to nats.ErrNoServers
	}{
		{"password", "nats://kh:S3cretPw@127.0.0.1:1", []string{"S3cretPw"}, true},
		{"token", "nats://S3cretTok@127.0.0.1:1", []string{"S3cretTok"}, true},
		{"list", "nats://127.0.0.1:2,nats://kh:S3cretPw@127.0.0.1:1", []string{"S3cretPw"}, true},
		{"no scheme", "kh:S3cretPw@127.0.0.1:1", []string{"S3cretPw"}, true},
		{"bad escape in password", "nats://kh:S3c%zzretPw@127.0.0.1:1", []string{"S3c", "%zz", "retPw"}, false},
		{"slash in password", "nats://kh:S3c/retPw@127.0.0.1:1", []string{"S3c", "retPw"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config{dataDir: t.TempDir(), natsURL: tt.url, streamReplicas: 1, waitTimeout: time.Second}
			_, err := openWith(context.Background(), cfg, true, slog.New(slog.DiscardHandler))
			if err == nil {
				t.Fatal("connected, want an error")
			}
			msg := err.Error()
			for _, s := range tt.hidden {
				if strings.Contains(msg, s) {
					t.Errorf("error %q shows %q", msg, s)
				}
			}
			if !strings.Contains(msg, "127.0.0.1:1") {
				t.Errorf("error %q does not name the server", msg)
			}
			if tt.noServers && !errors.Is(err, nats.ErrNoServers) {
				t.Errorf("error %q does not unwrap to nats.ErrNoServers", msg)
			}
		})
	}
}
