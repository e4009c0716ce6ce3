package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMailSettings: serve's mail flags and variables are checked before
// anything starts, with errors that name the setting and never show the
// password.
func TestMailSettings(t *testing.T) {
	const pw = "pw-in-a-file-4471"
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string // empty: valid
	}{
		{"defaults: the outbox", nil, nil, ""},
		{"SMTP with a password file", nil, []string{"--smtp-url", "smtp://keyhold@mail.example:587", "--smtp-password-file", pwFile}, ""},
		{"SMTP from the environment", map[string]string{"KEYHOLD_SMTP_URL": "smtps://keyhold@mail.example", "KEYHOLD_SMTP_PASSWORD": pw}, nil, ""},
		{"public URL", nil, []string{"--public-url", "https://iam.example.com/base"}, ""},
		{"password in the URL", nil, []string{"--smtp-url", "smtp://keyhold:" + pw + "@mail.example"}, "--smtp-url: mail: invalid settings: the SMTP URL holds a password"},
		{"user without password", nil, []string{"--smtp-url", "smtp://keyhold@mail.example"}, "no password is given"},
		{"two passwords", map[string]string{"KEYHOLD_SMTP_PASSWORD": pw}, []string{"--smtp-url", "smtp://keyhold@mail.example", "--smtp-password-file", pwFile}, "both give the SMTP password"},
		{"password without server", map[string]string{"KEYHOLD_SMTP_PASSWORD": pw}, nil, "no --smtp-url"},
		{"missing password file", nil, []string{"--smtp-url", "smtp://keyhold@mail.example", "--smtp-password-file", filepath.Join(dir, "none")}, "--smtp-password-file"},
		{"STARTTLS policy", nil, []string{"--smtp-url", "smtp://mail.example", "--smtp-starttls", "maybe"}, "STARTTLS policy \"maybe\""},
		{"CA file without certificates", nil, []string{"--smtp-url", "smtp://mail.example", "--smtp-ca-file", pwFile}, "holds no PEM certificate"},
		{"sender", nil, []string{"--mail-from", "keyhold at example"}, "--mail-from"},
		{"public URL scheme", nil, []string{"--public-url", "ftp://iam.example.com"}, "--public-url"},
		{"public URL query", nil, []string{"--public-url", "https://iam.example.com/?a=b"}, "no user, query or fragment"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, name := range []string{"KEYHOLD_SMTP_URL", "KEYHOLD_SMTP_PASSWORD", "KEYHOLD_SMTP_PASSWORD_FILE", "KEYHOLD_PUBLIC_URL", "KEYHOLD_MAIL_FROM"} {
				if v, ok := tt.env[name]; ok {
					t.Setenv(name, v)
				} else {
					unsetenv(t, name)
				}
			}
			_, err := runConfig(t, append([]string{"sub"}, tt.args...)...)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), pw):
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}
