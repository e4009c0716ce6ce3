package database

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestRedactHidesPasswords checks that redact hides every password a
// Postgres URL or key=value string can carry and keeps the rest readable.
func TestRedactHidesPasswords(t *testing.T) {
	tests := []struct {
		name, in string
		secret   string // must not show
		host     string // must still show; "" when nothing can be shown
		want     string
	}{
		{"url user password", "postgres://u:S3cretPw@db.example:5432/x", "S3cretPw", "db.example:5432",
			"postgres://u:xxxxx@db.example:5432/x"},
		{"url password parameter", "postgres://postgres@127.0.0.1:99999/x?password=S3cretPw", "S3cretPw", "127.0.0.1:99999",
			"postgres://postgres@127.0.0.1:99999/x?password=xxxxx"},
		{"url password among parameters", "postgres://h/x?sslmode=disable&password=S3cretPw&application_name=a@b", "S3cretPw", "h",
			"postgres://h/x?sslmode=disable&password=xxxxx&application_name=a@b"},
		{"url escaped parameter name", "postgresql://h/x?pass%77ord=S3cretPw", "S3cretPw", "h", "postgresql://h/x?pass%77ord=xxxxx"},
		{"url sslpassword", "postgres://h/x?sslpassword=S3cretPw", "S3cretPw", "h", "postgres://h/x?sslpassword=xxxxx"},
		{"url both", "postgres://u:S3cretPw@h/x?password=S3cretPw", "S3cretPw", "h", "postgres://u:xxxxx@h/x?password=xxxxx"},
		{"url slash in password", "postgres://u:S3c/retPw@h:5432/x", "retPw", "h:5432", "postgres://u:xxxxx@h:5432/x"},
		{"url hash in password parameter", "postgres://h/x?password=S3c#retPw", "retPw", "h", "postgres://h/x?password=xxxxx"},
		{"key=value", "host=h port=5432 password=S3cretPw dbname=x", "S3cretPw", "host=h", "host=h port=5432 password=xxxxx dbname=x"},
		{"key=value quoted", `host=h password='S3c ret\'Pw' dbname=x`, "ret", "host=h", "host=h password=xxxxx dbname=x"},
		{"key=value spaces around =", "host=h password = S3cretPw", "S3cretPw", "host=h", "host=h password = xxxxx"},
		{"key=value upper case", "host=h PASSWORD=S3cretPw", "S3cretPw", "host=h", "host=h PASSWORD=xxxxx"},
		{"key=value sslpassword", "host=h sslpassword=S3cretPw", "S3cretPw", "host=h", "host=h sslpassword=xxxxx"},
		{"key=value unterminated quote", "host=h password='S3cretPw dbname=x", "S3cretPw", "host=h", "host=h password=xxxxx"},
		{"key=value unreadable", "host=h S3cretPw password", "S3cretPw", "", "(key=value connection string)"},
		{"url without password", "postgres://u@h/db", "", "h", "postgres://u@h/db"},
		{"url without user", "postgres://h/db?sslmode=disable", "", "h", "postgres://h/db?sslmode=disable"},
		{"url with a bad port", "postgres://u:S3cretPw@h:x/db", "S3cretPw", "h:x", "postgres://u:xxxxx@h:x/db"},
		{"key=value without password", "host=h dbname=d", "", "host=h", "host=h dbname=d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := redact(tt.in)
			if tt.secret != "" && strings.Contains(got, tt.secret) {
				t.Errorf("redact(%q) = %q shows the secret", tt.in, got)
			}
			if !strings.Contains(got, tt.host) {
				t.Errorf("redact(%q) = %q hides the host %q", tt.in, got, tt.host)
			}
			if got != tt.want {
				t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestOpenInvalidURLHidesPassword checks the error Open returns for a URL
// it cannot parse; it fails before connecting anywhere.
func TestOpenInvalidURLHidesPassword(t *testing.T) {
	tests := []struct {
		name, url string
		hidden    []string
	}{
		{"password parameter, bad port", "postgres://postgres@127.0.0.1:99999/x?password=S3cretPw", []string{"S3cretPw"}},
		{"user password, bad port", "postgres://postgres:S3cretPw@127.0.0.1:99999/x", []string{"S3cretPw"}},
		{"bad escape in password", "postgres://postgres:S3c%zzretPw@127.0.0.1/x", []string{"S3c", "%zz", "retPw"}},
		{"key=value, bad port", "host=127.0.0.1 port=99999 password=S3cretPw", []string{"S3cretPw"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(context.Background(), tt.url)
			if !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("Open: %v, want ErrInvalidURL", err)
			}
			for _, s := range tt.hidden {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q shows %q", err, s)
				}
			}
			if !strings.Contains(err.Error(), "127.0.0.1") {
				t.Errorf("error %q does not name the server", err)
			}
		})
	}
}
