package auth_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/auth"
)

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		name, password, username, email string
		ok                              bool
	}{
		{"long enough", "correct horse battery", "alice", "alice@example.com", true},
		{"twelve runes of multibyte", "ääääääääääää", "alice", "", true},
		{"eleven characters", "abcdefghijk", "alice", "", false},
		{"eleven runes in more bytes", "ääääääääääa"[:len("ääääääääääa")-1], "alice", "", false},
		{"too many bytes", strings.Repeat("a", auth.MaxPasswordBytes+1), "alice", "", false},
		{"exactly max bytes", strings.Repeat("a", auth.MaxPasswordBytes), "alice", "", true},
		{"username in other case", "Alice.Longname", "alice.longname", "", false},
		{"email in other case", "ALICE@EXAMPLE.COM", "alice", "alice@example.com", false},
		{"invalid utf-8", "abcdefghijkl\xff", "alice", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := auth.CheckPassword(tc.password, tc.username, tc.email)
			if tc.ok != (err == nil) {
				t.Fatalf("CheckPassword = %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, auth.ErrWeakPassword) {
					t.Fatalf("%v is not ErrWeakPassword", err)
				}
				if len(tc.password) > 3 && strings.Contains(err.Error(), tc.password) {
					t.Fatalf("error %q holds the password", err)
				}
			}
		})
	}
}

// fast keeps the tests quick; the format is the same.
var fast = auth.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestPasswordVerifier(t *testing.T) {
	v := auth.HashPassword("correct horse battery", auth.DefaultPasswordParams)
	if !strings.HasPrefix(v, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("verifier %q is not a PHC argon2id string with OWASP parameters", v)
	}
	if strings.Contains(v, "correct horse") {
		t.Fatal("verifier holds the password")
	}
	if v2 := auth.HashPassword("correct horse battery", auth.DefaultPasswordParams); v2 == v {
		t.Fatal("two verifiers of one password are equal: salt not random")
	}
	for _, tc := range []struct {
		name, password, verifier string
		want                     bool
	}{
		{"right password", "correct horse battery", v, true},
		{"wrong password", "correct horse batterz", v, false},
		{"case matters", "Correct horse battery", v, false},
		{"old parameters still verify", "pw of the past", auth.HashPassword("pw of the past", fast), true},
		{"malformed verifier", "correct horse battery", "$argon2id$v=19$m=x", false},
		{"other algorithm", "correct horse battery", strings.Replace(v, "argon2id", "argon2i", 1), false},
		{"absurd memory refused", "correct horse battery", strings.Replace(v, "m=19456", "m=99999999", 1), false},
		{"empty verifier", "correct horse battery", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := auth.PasswordMatches(tc.password, tc.verifier); got != tc.want {
				t.Fatalf("PasswordMatches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNeedsRehash(t *testing.T) {
	if !auth.NeedsRehash(auth.HashPassword("x", fast), auth.DefaultPasswordParams) {
		t.Fatal("weak verifier does not need a rehash")
	}
	if auth.NeedsRehash(auth.HashPassword("x", auth.DefaultPasswordParams), auth.DefaultPasswordParams) {
		t.Fatal("current verifier needs a rehash")
	}
}
