// Package privacy keeps users' personal data erasable inside an immutable
// log (crypto-shredding). Each principal has a random 256-bit data key,
// stored in Postgres wrapped by the key-encryption key; events carry
// personal fields only sealed under it. Destroying the key erases those
// fields everywhere the log went, while the events stay.
//
// The package also holds the instance's secret for reservation subjects
// of unique values (Blind), so a subject does not reveal the email or
// username it reserves to whoever can guess it.
package privacy

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
)

//go:embed schema.sql
var schema string

var (
	// ErrErased means the principal's data key was destroyed: its personal
	// data is gone and it cannot get a new key.
	ErrErased = errors.New("privacy: personal data erased")
	// ErrNoKey means the principal has no data key (it was never created).
	ErrNoKey = errors.New("privacy: no data key for principal")
	// ErrCorrupt means a ciphertext or a stored key does not open: it was
	// altered, or sealed for another principal or event type. It is
	// events.ErrPersonalData, so readers outside this package can tell it
	// from an unavailable store.
	ErrCorrupt = events.ErrPersonalData
	// ErrUnavailable means the key store could not be reached; retry.
	ErrUnavailable = errors.New("privacy: key store unavailable")
)

// schemaLock is the transaction-scoped advisory lock key that serialises
// the schema and the instance secret's creation across replicas.
const schemaLock int64 = 0x6b68_5f70_7269_7601 // "kh_priv" + 1

// liveTTL is how long a fetched live key is trusted before it is read
// again: another replica's erase takes effect here within this time. An
// erased key is remembered for good.
const liveTTL = 30 * time.Second

// Store creates, fetches (through an in-memory cache) and destroys data
// keys, seals and opens personal data with them, and blinds unique values.
// Safe for concurrent use; replicas share one through Postgres and the
// same key-encryption key.
type Store struct {
	db     *sql.DB // nil: keys live in memory only (NewMemory)
	keks   []auth.KEK
	secret []byte
	// invitationSecret makes invitations' registration tokens
	// (InvitationToken); it serves nothing else.
	invitationSecret []byte
	now              func() time.Time

	mu    sync.Mutex
	cache map[string]cachedKey
	// preloaded is when Preload last read every key: for liveTTL after,
	// a principal it did not find is taken to have none.
	preloaded time.Time
}

type cachedKey struct {
	// raw is the data key; nil when erased or none. The cipher is made per
	// use: an AES-GCM instance costs far more memory than its 32 bytes.
	raw    []byte
	erased bool
	none   bool // no key (a principal from before keys): plaintext events
	at     time.Time
}

// Open creates the tables if needed and returns a store over db whose keys
// are wrapped by kek; previous keys still unwrap keys wrapped before a
// rotation, which are rewrapped under kek when read.
func Open(ctx context.Context, db *sql.DB, kek auth.KEK, previous ...auth.KEK) (*Store, error) {
	if db == nil {
		return nil, errors.New("privacy: nil database")
	}
	s := &Store{db: db, keks: append([]auth.KEK{kek}, previous...), now: time.Now, cache: map[string]cachedKey{}}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// NewMemory returns a store that keeps its keys in memory only, lost with
// the process: for tests and tools whose log does not outlive them.
func NewMemory() *Store {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		panic("privacy: no randomness: " + err.Error())
	}
	invitation := make([]byte, 32)
	if _, err := rand.Read(invitation); err != nil {
		panic("privacy: no randomness: " + err.Error())
	}
	return &Store{secret: secret, invitationSecret: invitation, now: time.Now, cache: map[string]cachedKey{}}
}

// migrate applies the schema and loads the instance secrets, creating them
// on first use, under a lock so replicas starting together share one.
func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, schemaLock); err != nil {
		return fmt.Errorf("%w: lock: %w", ErrUnavailable, err)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("privacy: create tables: %w", err)
	}
	for _, sec := range []struct {
		name string
		to   *[]byte
	}{{"unique_hmac", &s.secret}, {"invitation_hmac", &s.invitationSecret}} {
		if *sec.to, err = s.loadSecret(ctx, tx, sec.name); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// loadSecret returns the instance secret name, creating it on first use,
// and moves it under the current key-encryption key after a rotation.
func (s *Store) loadSecret(ctx context.Context, tx *sql.Tx, name string) ([]byte, error) {
	var wrapped []byte
	err := tx.QueryRowContext(ctx, `SELECT wrapped FROM privacy_secrets WHERE name = $1`, name).Scan(&wrapped)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO privacy_secrets (name, wrapped) VALUES ($1, $2)`, name, s.keks[0].Wrap(secretPurpose(name), secret)); err != nil {
			return nil, fmt.Errorf("privacy: store secret: %w", err)
		}
		return secret, nil
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	secret, rewrap, err := auth.Unwrap(s.keks, secretPurpose(name), wrapped)
	if err != nil {
		return nil, fmt.Errorf("privacy: instance secret %s: %w", name, err)
	}
	if rewrap {
		if _, err := tx.ExecContext(ctx, `UPDATE privacy_secrets SET wrapped = $2 WHERE name = $1`, name, s.keks[0].Wrap(secretPurpose(name), secret)); err != nil {
			return nil, fmt.Errorf("privacy: rewrap secret: %w", err)
		}
	}
	return secret, nil
}

func secretPurpose(name string) string   { return "privacy secret " + name }
func keyPurpose(principal string) string { return "privacy data key " + principal }

// Blind maps a unique value of a kind (username, email, ...) to a subject
// token: HMAC-SHA256 under the instance secret of kind and the lower-cased
// value, hex, 128 bits. Without the secret the token reveals nothing, not
// even to someone who guesses the value.
func (s *Store) Blind(kind, value string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(kind + "\x00" + strings.ToLower(value)))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// Create makes sure principal has a data key, making one if it has none.
// It is idempotent: every call, from any replica, ends with the same key.
// A principal whose key was destroyed gets ErrErased.
func (s *Store) Create(ctx context.Context, principal string) error {
	if c, ok := s.cached(principal); ok && !c.none {
		if c.erased {
			return fmt.Errorf("%w: %s", ErrErased, principal)
		}
		return nil
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	if s.db == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		if c, ok := s.cache[principal]; !ok || c.none {
			s.cache[principal] = cachedKey{raw: raw, at: s.now()}
		}
		return nil
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO privacy_keys (principal_id, wrapped) VALUES ($1, $2) ON CONFLICT (principal_id) DO NOTHING`,
		principal, s.keks[0].Wrap(keyPurpose(principal), raw))
	if err != nil {
		return fmt.Errorf("%w: create key: %w", ErrUnavailable, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		s.mu.Lock()
		s.cache[principal] = cachedKey{raw: raw, at: s.now()}
		s.mu.Unlock()
		return nil
	}
	// Another call made the key first (or it was erased): use what it stored.
	_, err = s.key(ctx, principal)
	return err
}

// Erase destroys principal's data key, so nothing sealed under it opens
// again, here or (within 30 seconds) on any replica. It is idempotent, and
// a principal without a key is marked so it never gets one.
func (s *Store) Erase(ctx context.Context, principal string) error {
	if s.db != nil {
		if _, err := s.db.ExecContext(ctx, `INSERT INTO privacy_keys (principal_id, wrapped, erased_at) VALUES ($1, NULL, now())
			ON CONFLICT (principal_id) DO UPDATE SET wrapped = NULL, erased_at = COALESCE(privacy_keys.erased_at, now())`, principal); err != nil {
			return fmt.Errorf("%w: erase key: %w", ErrUnavailable, err)
		}
	}
	s.mu.Lock()
	s.cache[principal] = cachedKey{erased: true}
	s.mu.Unlock()
	return nil
}

func (s *Store) cached(principal string) (cachedKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cache[principal]
	if !ok || (!c.erased && s.db != nil && s.now().Sub(c.at) > liveTTL) {
		return cachedKey{}, false
	}
	return c, true
}

// key returns principal's data key: ErrErased, ErrNoKey, or the key.
func (s *Store) key(ctx context.Context, principal string) (cipher.AEAD, error) {
	if c, ok := s.cached(principal); ok {
		switch {
		case c.erased:
			return nil, fmt.Errorf("%w: %s", ErrErased, principal)
		case c.none:
			return nil, fmt.Errorf("%w: %s", ErrNoKey, principal)
		}
		return aeadOf(c.raw), nil
	}
	if s.db == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoKey, principal)
	}
	var wrapped []byte
	var erasedAt sql.NullTime
	err := s.db.QueryRowContext(ctx, `SELECT wrapped, erased_at FROM privacy_keys WHERE principal_id = $1`, principal).Scan(&wrapped, &erasedAt)
	if errors.Is(err, sql.ErrNoRows) {
		s.mu.Lock()
		if _, ok := s.cache[principal]; !ok {
			s.cache[principal] = cachedKey{none: true, at: s.now()}
		}
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrNoKey, principal)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if erasedAt.Valid {
		s.mu.Lock()
		s.cache[principal] = cachedKey{erased: true}
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrErased, principal)
	}
	raw, rewrap, err := auth.Unwrap(s.keks, keyPurpose(principal), wrapped)
	if err != nil {
		return nil, fmt.Errorf("%w: key of %s: %w", ErrCorrupt, principal, err)
	}
	if rewrap {
		// Rotation: the key moves under the current KEK; a failure only
		// means the next read tries again.
		_, _ = s.db.ExecContext(ctx, `UPDATE privacy_keys SET wrapped = $2 WHERE principal_id = $1 AND wrapped IS NOT NULL`,
			principal, s.keks[0].Wrap(keyPurpose(principal), raw))
	}
	a := aeadOf(raw)
	s.mu.Lock()
	if c, ok := s.cache[principal]; !ok || !c.erased {
		s.cache[principal] = cachedKey{raw: raw, at: s.now()}
	}
	s.mu.Unlock()
	return a, nil
}

// Preload reads every key into the cache in one query, so replaying a log
// of many users does not cost a round trip per user, and rewraps under the
// current key-encryption key those wrapped by a previous one.
func (s *Store) Preload(ctx context.Context) error {
	if s.db == nil {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT principal_id, wrapped FROM privacy_keys`)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer rows.Close()
	now := s.now()
	loaded := map[string]cachedKey{}
	var stale []string
	for rows.Next() {
		var id string
		var wrapped []byte
		if err := rows.Scan(&id, &wrapped); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if wrapped == nil {
			loaded[id] = cachedKey{erased: true}
			continue
		}
		raw, rewrap, err := auth.Unwrap(s.keks, keyPurpose(id), wrapped)
		if err != nil {
			continue // key reads it again, and reports it
		}
		loaded[id] = cachedKey{raw: raw, at: now}
		if rewrap {
			stale = append(stale, id)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	rows.Close()
	// Rotation: keys still wrapped by a previous KEK move under the
	// current one.
	for _, id := range stale {
		if _, err := s.db.ExecContext(ctx, `UPDATE privacy_keys SET wrapped = $2 WHERE principal_id = $1 AND wrapped IS NOT NULL`,
			id, s.keks[0].Wrap(keyPurpose(id), loaded[id].raw)); err != nil {
			return fmt.Errorf("%w: rewrap key of %s: %w", ErrUnavailable, id, err)
		}
	}
	s.mu.Lock()
	for id, c := range loaded {
		if old, ok := s.cache[id]; !ok || !old.erased {
			s.cache[id] = c
		}
	}
	s.preloaded = now
	s.mu.Unlock()
	return nil
}

// preloadedRecently reports whether Preload read every key less than
// liveTTL ago.
func (s *Store) preloadedRecently() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.preloaded.IsZero() && s.now().Sub(s.preloaded) <= liveTTL
}

func aeadOf(raw []byte) cipher.AEAD {
	block, err := aes.NewCipher(raw)
	if err != nil {
		panic("privacy: " + err.Error()) // raw is always 32 bytes
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		panic("privacy: " + err.Error())
	}
	return a
}

// ad is the additional data of a sealed personal record: it opens only for
// the same principal and event type.
func ad(principal, eventType string) []byte {
	return []byte("keyhold personal\x00" + principal + "\x00" + eventType)
}

// Seal encrypts p for an event of eventType about principal, under the
// principal's data key (which Create must have made): nonce, then the
// AES-256-GCM ciphertext of p as JSON.
func (s *Store) Seal(ctx context.Context, principal, eventType string, p events.Personal) ([]byte, error) {
	a, err := s.key(ctx, principal)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return a.Seal(nonce, nonce, plain, ad(principal, eventType)), nil
}

// Personal implements events.PersonalReader for UserCreated,
// UserUpdated and InvitationCreated (whose subject is the invitation);
// other events have no personal data (the zero Personal).
func (s *Store) Personal(ctx context.Context, subject string, e events.Event) (events.Personal, error) {
	var plain *events.Personal
	var sealed []byte
	switch e := e.(type) {
	case events.UserCreated:
		plain, sealed = e.Personal, e.PersonalEnc
	case events.UserUpdated:
		plain, sealed = e.Personal, e.PersonalEnc
	case events.InvitationCreated:
		plain, sealed = e.Personal, e.PersonalEnc
	default:
		return events.Personal{}, nil
	}
	if sealed == nil {
		if plain == nil {
			return events.Personal{}, nil
		}
		// Written before encryption: the plaintext is in the log for good,
		// but an erased user still reads as erased. Right after a Preload
		// a principal it did not find has no key, and was not erased then
		// (a later erase comes with its event, which readers apply): no
		// round trip per user of an old log.
		if _, ok := s.cached(subject); !ok && s.preloadedRecently() {
			return *plain, nil
		}
		switch _, err := s.key(ctx, subject); {
		case errors.Is(err, ErrErased):
			return events.ErasedPersonal(), nil
		case err == nil, errors.Is(err, ErrNoKey):
			return *plain, nil
		default:
			return events.Personal{}, err
		}
	}
	a, err := s.key(ctx, subject)
	if errors.Is(err, ErrErased) {
		return events.ErasedPersonal(), nil
	}
	if err != nil {
		return events.Personal{}, err
	}
	if len(sealed) < a.NonceSize() {
		return events.Personal{}, fmt.Errorf("%w: %s of %s is truncated", ErrCorrupt, e.EventType(), subject)
	}
	out, err := a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], ad(subject, e.EventType()))
	if err != nil {
		return events.Personal{}, fmt.Errorf("%w: %s of %s", ErrCorrupt, e.EventType(), subject)
	}
	var p events.Personal
	if err := json.Unmarshal(out, &p); err != nil {
		return events.Personal{}, fmt.Errorf("%w: %s of %s: %w", ErrCorrupt, e.EventType(), subject, err)
	}
	return p, nil
}
