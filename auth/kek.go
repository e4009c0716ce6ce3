package auth

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

var (
	// ErrInvalidKEK means a key-encryption key is not 32 bytes in base64,
	// or its file cannot be used.
	ErrInvalidKEK = errors.New("auth: invalid key-encryption key")
	// ErrWrongKEK means stored keys were wrapped under a key-encryption key
	// that was not given.
	ErrWrongKEK = errors.New("auth: signing keys were encrypted with another key-encryption key")
)

// KEK is a key-encryption key: it wraps the private signing keys stored
// in Postgres (AES-256-GCM), so a database dump alone cannot sign tokens.
// It lives outside the database: a file (mode 0600) or the environment.
// The zero KEK is not usable.
type KEK struct {
	aead cipher.AEAD
	id   [8]byte
	// mac is the root of the keys MACKey derives, itself derived from the
	// key so that a MAC reveals nothing of what the KEK encrypts.
	mac [32]byte
}

// NewKEK returns a new random key-encryption key.
func NewKEK() (KEK, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return KEK{}, err
	}
	return kekOf(raw[:])
}

// ParseKEK reads a key-encryption key written as base64 (standard or URL
// alphabet, padded or not) of 32 bytes; surrounding space is ignored.
func ParseKEK(text []byte) (KEK, error) {
	s := string(bytes.TrimSpace(text))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(s); err == nil {
			if len(raw) != 32 {
				return KEK{}, fmt.Errorf("%w: %d bytes, want 32", ErrInvalidKEK, len(raw))
			}
			return kekOf(raw)
		}
	}
	return KEK{}, fmt.Errorf("%w: not base64", ErrInvalidKEK)
}

func kekOf(raw []byte) (KEK, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return KEK{}, fmt.Errorf("%w: %w", ErrInvalidKEK, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return KEK{}, fmt.Errorf("%w: %w", ErrInvalidKEK, err)
	}
	k := KEK{aead: aead}
	sum := sha256.Sum256(append([]byte("keyhold kek id\x00"), raw...))
	copy(k.id[:], sum[:])
	m := hmac.New(sha256.New, raw)
	m.Write([]byte("keyhold kek mac\x00"))
	copy(k.mac[:], m.Sum(nil))
	return k, nil
}

// MACKey returns a key for HMAC-SHA256 that authenticates what Keyhold
// keeps outside Postgres for purpose (a directory snapshot in the data
// dir): only holders of the KEK can make a MAC that verifies. Distinct
// purposes get unrelated keys; the zero KEK gives nil.
func (k KEK) MACKey(purpose string) []byte {
	if !k.usable() {
		return nil
	}
	m := hmac.New(sha256.New, k.mac[:])
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// ID names the key in messages and in what it wraps; it reveals nothing
// of the key.
func (k KEK) ID() string { return hex.EncodeToString(k.id[:]) }

func (k KEK) usable() bool { return k.aead != nil }

// kekMagic starts a wrapped private key; a PKCS #8 key starts with 0x30.
var kekMagic = []byte("KHK1")

// seal wraps a private key of signing key kid.
func (k KEK) seal(kid string, der []byte) []byte {
	return k.sealAD([]byte("keyhold signing key "+kid), der)
}

// sealAD wraps plaintext with additional data ad.
func (k KEK) sealAD(ad, plaintext []byte) []byte {
	out := make([]byte, 0, len(kekMagic)+len(k.id)+k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	out = append(out, kekMagic...)
	out = append(out, k.id[:]...)
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("auth: no randomness for a nonce: " + err.Error())
	}
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, plaintext, ad)
}

// wrappedBy returns the id of the KEK that wrapped blob, or false for a
// key stored in the clear (written before keys were wrapped).
func wrappedBy(blob []byte) (string, bool) {
	if !bytes.HasPrefix(blob, kekMagic) || len(blob) < len(kekMagic)+8 {
		return "", false
	}
	return hex.EncodeToString(blob[len(kekMagic) : len(kekMagic)+8]), true
}

// open unwraps blob, which k must have wrapped.
func (k KEK) open(kid string, blob []byte) ([]byte, error) {
	rest := blob[len(kekMagic)+len(k.id):]
	if len(rest) < k.aead.NonceSize() {
		return nil, fmt.Errorf("%w: key %s is truncated", ErrSigningKeys, kid)
	}
	der, err := k.aead.Open(nil, rest[:k.aead.NonceSize()], rest[k.aead.NonceSize():], []byte("keyhold signing key "+kid))
	if err != nil {
		return nil, fmt.Errorf("%w: key %s does not decrypt with key-encryption key %s", ErrSigningKeys, kid, k.ID())
	}
	return der, nil
}

// encodeKEK returns a raw key as base64 text with a newline, as key files
// hold it.
func encodeKEK(raw []byte) []byte {
	return []byte(base64.StdEncoding.EncodeToString(raw) + "\n")
}

// LoadKEKFile reads a key-encryption key from path. The file must not be
// readable or writable by group or others. With create, a missing file is
// made with a new key (mode 0600); without, it is an error.
func LoadKEKFile(path string, create bool) (KEK, error) {
	text, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		var raw [32]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return KEK{}, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return LoadKEKFile(path, false) // made meanwhile by another process
		}
		if err != nil {
			return KEK{}, fmt.Errorf("%w: create %s: %w", ErrInvalidKEK, path, err)
		}
		_, werr := f.Write(encodeKEK(raw[:]))
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			_ = os.Remove(path)
			return KEK{}, fmt.Errorf("%w: write %s: %w", ErrInvalidKEK, path, werr)
		}
		return kekOf(raw[:])
	}
	if err != nil {
		return KEK{}, fmt.Errorf("%w: %w", ErrInvalidKEK, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return KEK{}, fmt.Errorf("%w: %w", ErrInvalidKEK, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return KEK{}, fmt.Errorf("%w: %s has mode %04o; it must be readable by its owner only (chmod 600)", ErrInvalidKEK, path, st.Mode().Perm())
	}
	k, err := ParseKEK(text)
	if err != nil {
		return KEK{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ErrUnwrap means a wrapped blob was not wrapped by any of the given
// key-encryption keys for the given purpose, or was altered. When its
// key was not given, the error matches ErrWrongKEK too.
var ErrUnwrap = errors.New("auth: cannot unwrap with the given key-encryption keys")

// Wrap seals plaintext under k for purpose, the additional data that binds
// the blob to its use (a row, a principal): it unwraps only for the same
// purpose. The blob names k by ID, so a rotated key can be found.
func (k KEK) Wrap(purpose string, plaintext []byte) []byte {
	return k.sealAD(wrapAD(purpose), plaintext)
}

// wrapAD is the additional data of Wrap: apart from signing keys' by its
// prefix, so no blob of one kind opens as the other.
func wrapAD(purpose string) []byte { return []byte("keyhold wrap\x00" + purpose) }

// Unwrap opens blob, wrapped by Wrap for purpose under one of keks (the
// current key first, then previous ones). It reports whether the key that
// opened it is not keks[0], so the caller can rewrap under the current key.
func Unwrap(keks []KEK, purpose string, blob []byte) (plaintext []byte, rewrap bool, err error) {
	id, ok := wrappedBy(blob)
	if !ok {
		return nil, false, fmt.Errorf("%w: not a wrapped blob", ErrUnwrap)
	}
	for i, k := range keks {
		if !k.usable() || k.ID() != id {
			continue
		}
		rest := blob[len(kekMagic)+len(k.id):]
		if len(rest) < k.aead.NonceSize() {
			return nil, false, fmt.Errorf("%w: truncated", ErrUnwrap)
		}
		p, err := k.aead.Open(nil, rest[:k.aead.NonceSize()], rest[k.aead.NonceSize():], wrapAD(purpose))
		if err != nil {
			return nil, false, fmt.Errorf("%w: wrapped by key-encryption key %s for another purpose, or altered", ErrUnwrap, id)
		}
		return p, i > 0, nil
	}
	known := make([]string, 0, len(keks))
	for _, k := range keks {
		known = append(known, k.ID())
	}
	return nil, false, fmt.Errorf("%w (%w): wrapped by key-encryption key %s, and only %s were given: start with the key file it was made with (give a rotated-out one as the previous key)",
		ErrUnwrap, ErrWrongKEK, id, strings.Join(known, ", "))
}
