// Package auth holds principals and their role bindings, the built-in
// roles, and the generation and verification of secrets (client secrets,
// API tokens). Secrets are never stored: only their verifiers are.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"math/big"
	"strings"
)

// Secret prefixes. Prefixed, checksummed secrets let scanners spot leaked
// Keyhold secrets and let Keyhold reject mistyped ones without a lookup.
const (
	PrefixClientSecret = "khcs_"
	PrefixAPIToken     = "khpat_"
)

// PrefixClientID starts every service account's client id: the prefix
// plus the account's id. Not a secret.
const PrefixClientID = "khc-"

// ErrMalformedSecret is returned for a string that is not a Keyhold secret
// of the expected kind (wrong prefix, length or checksum).
var ErrMalformedSecret = errors.New("auth: malformed secret")

const (
	base62   = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	bodyLen  = 43 // 256 bits of randomness in base62
	checkLen = 6
)

// NewSecret returns a new secret with the given prefix: 256 random bits in
// base62 followed by a 6-character base62 CRC-32 of prefix and body.
func NewSecret(prefix string) string {
	var b strings.Builder
	b.WriteString(prefix)
	max := big.NewInt(62)
	for range bodyLen {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic("auth: crypto/rand failed: " + err.Error())
		}
		b.WriteByte(base62[n.Int64()])
	}
	s := b.String()
	return s + checksum(s)
}

func checksum(s string) string {
	c := crc32.ChecksumIEEE([]byte(s))
	out := make([]byte, checkLen)
	for i := checkLen - 1; i >= 0; i-- {
		out[i] = base62[c%62]
		c /= 62
	}
	return string(out)
}

// CheckFormat reports whether s looks like a secret with prefix: right
// length, base62 body, valid checksum.
func CheckFormat(prefix, s string) error {
	if len(s) != len(prefix)+bodyLen+checkLen || !strings.HasPrefix(s, prefix) {
		return ErrMalformedSecret
	}
	body := s[:len(s)-checkLen]
	for i := len(prefix); i < len(body); i++ {
		if strings.IndexByte(base62, body[i]) < 0 {
			return ErrMalformedSecret
		}
	}
	if subtle.ConstantTimeCompare([]byte(checksum(body)), []byte(s[len(body):])) != 1 {
		return ErrMalformedSecret
	}
	return nil
}

// Verifier returns the stored verifier of a high-entropy secret: the hex
// SHA-256 of it. A fast hash is right here: the secret has 256 random bits,
// so there is nothing to brute-force.
func Verifier(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Matches compares a presented secret with a stored verifier in constant time.
func Matches(secret, verifier string) bool {
	sum := sha256.Sum256([]byte(secret))
	want, err := hex.DecodeString(verifier)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(sum[:], want) == 1
}
