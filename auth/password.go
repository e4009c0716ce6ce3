package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password policy limits.
const (
	// MinPasswordRunes is the shortest password accepted, in characters.
	MinPasswordRunes = 12
	// MaxPasswordBytes bounds a password's size, so hashing stays cheap to refuse.
	MaxPasswordBytes = 1024
)

var (
	// ErrWeakPassword means a password breaks the policy (too short, too
	// long, equal to the username or email). The error's text says which
	// rule and never holds the password.
	ErrWeakPassword = errors.New("auth: password breaks the policy")

	// ErrMalformedVerifier means a stored password verifier is not an
	// argon2id PHC string this package can read.
	ErrMalformedVerifier = errors.New("auth: malformed password verifier")
)

// PasswordParams are argon2id's cost parameters. The defaults follow
// OWASP's minimum (m=19 MiB, t=2, p=1); verifiers carry their parameters,
// so raising them later keeps old verifiers readable.
type PasswordParams struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
	SaltLen   int
	KeyLen    uint32
}

// DefaultPasswordParams are the parameters new verifiers use.
var DefaultPasswordParams = PasswordParams{MemoryKiB: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// CheckPassword applies the password policy: at least MinPasswordRunes
// characters, at most MaxPasswordBytes bytes, valid UTF-8, and not equal
// (ignoring case) to the username or the email. Failures wrap
// ErrWeakPassword; the message never holds the password.
func CheckPassword(password, username, email string) error {
	switch {
	case len(password) > MaxPasswordBytes:
		return fmt.Errorf("%w: must be at most %d bytes", ErrWeakPassword, MaxPasswordBytes)
	case !utf8.ValidString(password):
		return fmt.Errorf("%w: must be valid UTF-8", ErrWeakPassword)
	case utf8.RuneCountInString(password) < MinPasswordRunes:
		return fmt.Errorf("%w: must be at least %d characters", ErrWeakPassword, MinPasswordRunes)
	case username != "" && strings.EqualFold(password, username):
		return fmt.Errorf("%w: must not be the username", ErrWeakPassword)
	case email != "" && strings.EqualFold(password, email):
		return fmt.Errorf("%w: must not be the email address", ErrWeakPassword)
	}
	return nil
}

var b64 = base64.RawStdEncoding

// HashPassword returns an argon2id verifier of password with a new random
// salt, in PHC string format:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>. It does not apply the
// policy (see CheckPassword).
func HashPassword(password string, p PasswordParams) string {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		panic("auth: crypto/rand failed: " + err.Error())
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Parameter bounds a verifier may carry; beyond them a stored verifier is
// refused rather than allowed to cost unbounded memory or time.
const (
	maxMemoryKiB = 1 << 21 // 2 GiB
	maxTime      = 64
)

// ParsePasswordVerifier returns the parameters, salt and hash of a PHC
// argon2id verifier, or ErrMalformedVerifier.
func ParsePasswordVerifier(verifier string) (PasswordParams, []byte, []byte, error) {
	parts := strings.Split(verifier, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return PasswordParams{}, nil, nil, ErrMalformedVerifier
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return PasswordParams{}, nil, nil, ErrMalformedVerifier
	}
	var p PasswordParams
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil || n != 3 {
		return PasswordParams{}, nil, nil, ErrMalformedVerifier
	}
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || p.Time < 1 || p.Time > maxTime ||
		p.Threads < 1 || p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB {
		return PasswordParams{}, nil, nil, ErrMalformedVerifier
	}
	p.SaltLen, p.KeyLen = len(salt), uint32(len(key))
	return p, salt, key, nil
}

// PasswordMatches reports whether password matches verifier, comparing in
// constant time. A malformed verifier never matches.
func PasswordMatches(password, verifier string) bool {
	if len(password) > MaxPasswordBytes {
		return false
	}
	p, salt, want, err := ParsePasswordVerifier(verifier)
	if err != nil {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, want) == 1
}

// NeedsRehash reports whether verifier was made with weaker parameters than p.
func NeedsRehash(verifier string, p PasswordParams) bool {
	q, _, _, err := ParsePasswordVerifier(verifier)
	return err != nil || q.MemoryKiB < p.MemoryKiB || q.Time < p.Time || q.KeyLen < p.KeyLen
}
