package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/jmoiron/sqlx"

	"github.com/keyhold/keyhold/events"
)

// AccessTokenLifetime is how long an access token is valid unless the
// issuer asks for another lifetime.
const AccessTokenLifetime = 15 * time.Minute

// Defaults for the iss and aud claims of access tokens.
const (
	DefaultIssuer   = "keyhold"
	DefaultAudience = "keyhold"
)

// ClockSkew is how far in the future a token's nbf and iat may lie and
// still be accepted: replicas' clocks differ a little. Expiry gets no
// leeway, so a revocation can be forgotten exactly when the token expires.
const ClockSkew = 30 * time.Second

// maxTokenLen bounds the work Verify does on input an attacker controls.
const maxTokenLen = 4096

// SigningKeysDDL creates the table holding access-token signing keys, their
// private keys wrapped by a key-encryption key (see WithKEK). It is
// idempotent; LoadKeys runs it, and the migration runner may too. Keys live
// in Postgres, never in the event log: the log is readable by auditors and
// replicated widely, a private key must not be.
const SigningKeysDDL = `CREATE TABLE IF NOT EXISTS signing_keys (
    kid          text        PRIMARY KEY,
    private_key  bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz
)`

// signingKeysLock is the transaction-scoped advisory lock key that
// serialises key creation, so replicas starting together share one key.
const signingKeysLock int64 = 0x6b68_5f6b_6579_7301 // "kh_keys" + 1

var (
	// ErrInvalidToken means a token is malformed, not signed by a known key,
	// or carries the wrong issuer or audience. Every Verify error matches it.
	ErrInvalidToken = errors.New("auth: invalid access token")

	// ErrTokenExpired means a well-signed token is past its expiry or not
	// yet valid. Errors matching it also match ErrInvalidToken.
	ErrTokenExpired = errors.New("auth: access token expired or not yet valid")

	// ErrInvalidClaims is returned by Issue for claims that cannot make a
	// valid token (missing subject, expiry before issue, foreign issuer).
	ErrInvalidClaims = errors.New("auth: invalid access token claims")

	// ErrInvalidOption is returned by LoadKeys for an option with a bad value.
	ErrInvalidOption = errors.New("auth: invalid option")

	// ErrSigningKeys means the signing keys could not be loaded or created.
	ErrSigningKeys = errors.New("auth: signing keys unavailable")
)

// AccessClaims are the claims of a Keyhold access token, a JWT signed with
// EdDSA (Ed25519).
type AccessClaims struct {
	Issuer string
	// Subject is the service account id.
	Subject  string
	Audience string
	Tenant   string
	ClientID string
	// CredentialID is the client secret the token was obtained with; deleting
	// it invalidates the token.
	CredentialID string
	// ID is the token id (jti), the handle for revocation.
	ID string
	// Scope is the space-separated list of granted scopes.
	Scope string
	// Generation is the service account's token generation at issue; the
	// directory refuses tokens of an older generation.
	Generation uint64
	IssuedAt   time.Time
	NotBefore  time.Time
	Expiry     time.Time
}

// wireClaims is the JSON shape of AccessClaims inside a token.
type wireClaims struct {
	Issuer       string           `json:"iss"`
	Subject      string           `json:"sub"`
	Audience     jwt.Audience     `json:"aud"`
	Tenant       string           `json:"tenant"`
	ClientID     string           `json:"client_id"`
	CredentialID string           `json:"cred_id"`
	ID           string           `json:"jti"`
	Scope        string           `json:"scope,omitempty"`
	Generation   uint64           `json:"gen,omitempty"`
	IssuedAt     *jwt.NumericDate `json:"iat"`
	NotBefore    *jwt.NumericDate `json:"nbf"`
	Expiry       *jwt.NumericDate `json:"exp"`
}

// wireClaimsOut is the issuing shape: a plain string audience and int64
// times marshal faster than jwt.Audience and *jwt.NumericDate.
type wireClaimsOut struct {
	Issuer       string `json:"iss"`
	Subject      string `json:"sub"`
	Audience     string `json:"aud"`
	Tenant       string `json:"tenant"`
	ClientID     string `json:"client_id"`
	CredentialID string `json:"cred_id"`
	ID           string `json:"jti"`
	Scope        string `json:"scope,omitempty"`
	Generation   uint64 `json:"gen,omitempty"`
	IssuedAt     int64  `json:"iat"`
	NotBefore    int64  `json:"nbf"`
	Expiry       int64  `json:"exp"`
}

// Keys signs and verifies access tokens with Ed25519 keys kept in Postgres.
// A Keys is safe for concurrent use; Issue and Verify take no locks, and
// Reload swaps the whole key set at once.
type Keys struct {
	issuer      string
	audience    string
	maxLifetime time.Duration
	kek         KEK
	previous    []KEK
	set         atomic.Pointer[keySet]
}

// keySet is one loaded generation of keys.
type keySet struct {
	// signer signs with the chosen key; jose signers are stateless, so one
	// is shared by all goroutines instead of built per token.
	signer jose.Signer
	// public maps kid to verification key, for every loaded key.
	public map[string]ed25519.PublicKey
	jwks   []jose.JSONWebKey
	// jwksJSON is jwks encoded as a JWK Set, once per load.
	jwksJSON []byte
}

// Key rotation works without restarts: insert a key into signing_keys,
// and once every replica has had time to load it (KeyPropagation) the
// replicas sign with it; then set retired_at on the old key. A retired key
// is no longer used to sign but still verifies for RetiredKeyGrace, longer
// than any access token lives. Replicas reload the keys every KeyReload.
const (
	KeyReload       = time.Minute
	KeyPropagation  = 2 * KeyReload
	RetiredKeyGrace = 24 * time.Hour
)

type keysConfig struct {
	issuer      string
	audience    string
	maxLifetime time.Duration
	kek         KEK
	previous    []KEK
}

// WithKEK sets the key-encryption key that wraps the private keys in
// signing_keys (required). Keys wrapped by one of previous, or stored in
// the clear by an older Keyhold, are rewrapped with kek when loaded: that
// is how a key-encryption key is rotated (start every replica with the new
// key and the old one as previous, then drop the old one). A stored key
// wrapped by a key-encryption key not given fails with ErrWrongKEK.
func WithKEK(kek KEK, previous ...KEK) KeysOption {
	return func(c *keysConfig) error {
		if !kek.usable() {
			return fmt.Errorf("%w: zero key-encryption key", ErrInvalidOption)
		}
		for _, p := range previous {
			if !p.usable() {
				return fmt.Errorf("%w: zero previous key-encryption key", ErrInvalidOption)
			}
		}
		c.kek, c.previous = kek, previous
		return nil
	}
}

// KeysOption configures LoadKeys.
type KeysOption func(*keysConfig) error

// WithIssuer sets the iss claim tokens are issued with and must carry to
// verify (default DefaultIssuer). Typically the server's public URL.
func WithIssuer(iss string) KeysOption {
	return func(c *keysConfig) error {
		if err := CheckIssuer(iss); err != nil {
			return err
		}
		c.issuer = iss
		return nil
	}
}

// WithMaxLifetime sets the longest lifetime (exp - iat) a token may claim
// (default AccessTokenLifetime): Issue refuses to sign a longer one and
// Verify refuses it, so a token made with a leaked signing key cannot live
// longer than the tokens Keyhold issues. From a second to a day.
func WithMaxLifetime(d time.Duration) KeysOption {
	return func(c *keysConfig) error {
		if d < time.Second || d > 24*time.Hour {
			return fmt.Errorf("%w: max lifetime %s (want 1s to 24h)", ErrInvalidOption, d)
		}
		c.maxLifetime = d
		return nil
	}
}

// WithAudience sets the aud claim tokens are issued with and must carry to
// verify (default DefaultAudience).
func WithAudience(aud string) KeysOption {
	return func(c *keysConfig) error {
		if err := validClaimText(aud); err != nil {
			return fmt.Errorf("%w: audience: %v", ErrInvalidOption, err)
		}
		c.audience = aud
		return nil
	}
}

// CheckIssuer reports, as WithIssuer would, whether iss can be an issuer:
// 1 to 256 characters, no spaces or control characters. It lets a caller
// refuse a bad issuer before loading keys.
func CheckIssuer(iss string) error {
	if err := validClaimText(iss); err != nil {
		return fmt.Errorf("%w: issuer: %v", ErrInvalidOption, err)
	}
	return nil
}

func validClaimText(s string) error {
	if s == "" || len(s) > 256 {
		return errors.New("must be 1 to 256 characters")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return errors.New("must not contain spaces or control characters")
		}
	}
	return nil
}

// LoadKeys loads the signing keys (unretired ones, and those retired less
// than RetiredKeyGrace ago), creating the table and a first key when no
// unretired key exists. Creation runs under a Postgres advisory lock in
// one transaction, so replicas starting at the same time end up sharing a
// single key. Tokens are verified against all loaded keys and signed as
// buildSet chooses.
func LoadKeys(ctx context.Context, db *sqlx.DB, opts ...KeysOption) (*Keys, error) {
	cfg := keysConfig{issuer: DefaultIssuer, audience: DefaultAudience, maxLifetime: AccessTokenLifetime}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if !cfg.kek.usable() {
		return nil, fmt.Errorf("%w: a key-encryption key is required (WithKEK)", ErrInvalidOption)
	}
	rows, err := loadOrCreate(ctx, db, cfg.kek, cfg.previous)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSigningKeys, err)
	}
	return newKeys(cfg, rows)
}

type keyRow struct {
	KID        string     `db:"kid"`
	PrivateKey []byte     `db:"private_key"`
	CreatedAt  time.Time  `db:"created_at"`
	RetiredAt  *time.Time `db:"retired_at"`
	// Age is how long ago the key was created, by the database's clock.
	Age time.Duration `db:"-"`
}

// loadOrCreate returns the stored keys, newest first, with their private
// keys unwrapped, after rewrapping any stored in the clear or under a
// previous key-encryption key; it creates a key when none is live.
func loadOrCreate(ctx context.Context, db *sqlx.DB, kek KEK, previous []KEK) ([]keyRow, error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// The DDL runs under the lock too: concurrent CREATE TABLE IF NOT EXISTS
	// can still fail with a unique violation in Postgres' catalogs.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, signingKeysLock); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, SigningKeysDDL); err != nil {
		return nil, fmt.Errorf("create table: %w", err)
	}
	var rows []struct {
		keyRow
		AgeSeconds float64 `db:"age_s"`
	}
	if err := tx.SelectContext(ctx, &rows, `SELECT kid, private_key, created_at, retired_at, extract(epoch FROM now() - created_at) AS age_s
		FROM signing_keys WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1)
		ORDER BY created_at DESC, kid`, RetiredKeyGrace.Seconds()); err != nil {
		return nil, fmt.Errorf("select: %w", err)
	}
	out := make([]keyRow, len(rows))
	live := 0
	for i, r := range rows {
		der, rewrap, err := unwrap(r.KID, r.PrivateKey, kek, previous)
		if err != nil {
			return nil, err
		}
		if rewrap {
			if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET private_key = $2 WHERE kid = $1`, r.KID, kek.seal(r.KID, der)); err != nil {
				return nil, fmt.Errorf("rewrap key %s: %w", r.KID, err)
			}
		}
		out[i] = r.keyRow
		out[i].PrivateKey = der
		out[i].Age = time.Duration(r.AgeSeconds * float64(time.Second))
		if r.RetiredAt == nil {
			live++
		}
	}
	if live == 0 {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, fmt.Errorf("encode key: %w", err)
		}
		row := keyRow{KID: keyID(priv.Public().(ed25519.PublicKey)), PrivateKey: der}
		if err := tx.GetContext(ctx, &row.CreatedAt, `INSERT INTO signing_keys (kid, private_key) VALUES ($1, $2) RETURNING created_at`, row.KID, kek.seal(row.KID, der)); err != nil {
			return nil, fmt.Errorf("insert: %w", err)
		}
		out = append([]keyRow{row}, out...)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return out, nil
}

// unwrap returns a stored private key in the clear, and whether it must be
// stored again wrapped by kek.
func unwrap(kid string, blob []byte, kek KEK, previous []KEK) (der []byte, rewrap bool, err error) {
	by, wrapped := wrappedBy(blob)
	if !wrapped {
		return blob, true, nil
	}
	for i, k := range append([]KEK{kek}, previous...) {
		if k.ID() == by {
			der, err := k.open(kid, blob)
			return der, i > 0, err
		}
	}
	known := []string{kek.ID()}
	for _, p := range previous {
		known = append(known, p.ID())
	}
	return nil, false, fmt.Errorf("%w: key %s is wrapped by key-encryption key %s, and only %s were given: start with the key file the keys were made with (give a rotated-out one as the previous key)",
		ErrWrongKEK, kid, by, strings.Join(known, ", "))
}

// keyID is the RFC 7638 JWK thumbprint of an Ed25519 public key: stable,
// derived from the key, and revealing nothing about the private key.
func keyID(pub ed25519.PublicKey) string {
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func newKeys(cfg keysConfig, rows []keyRow) (*Keys, error) {
	k := &Keys{issuer: cfg.issuer, audience: cfg.audience, maxLifetime: cfg.maxLifetime, kek: cfg.kek, previous: cfg.previous}
	set, err := buildSet(rows)
	if err != nil {
		return nil, err
	}
	k.set.Store(set)
	return k, nil
}

// buildSet parses rows (newest first) into a key set. It signs with the
// newest unretired key old enough for every replica to know it, or, while
// none is, with the newest unretired key.
func buildSet(rows []keyRow) (*keySet, error) {
	set := &keySet{public: make(map[string]ed25519.PublicKey, len(rows))}
	var newest, settled ed25519.PrivateKey
	var newestKID, settledKID string
	for _, r := range rows {
		parsed, err := x509.ParsePKCS8PrivateKey(r.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("%w: key %s: %w", ErrSigningKeys, r.KID, err)
		}
		priv, ok := parsed.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%w: key %s is %T, not Ed25519", ErrSigningKeys, r.KID, parsed)
		}
		pub := priv.Public().(ed25519.PublicKey)
		set.public[r.KID] = pub
		set.jwks = append(set.jwks, jose.JSONWebKey{Key: pub, KeyID: r.KID, Algorithm: string(jose.EdDSA), Use: "sig"})
		if r.RetiredAt != nil {
			continue
		}
		if newest == nil {
			newest, newestKID = priv, r.KID
		}
		if settled == nil && r.Age >= KeyPropagation {
			settled, settledKID = priv, r.KID
		}
	}
	signKey, signKID := settled, settledKID
	if signKey == nil {
		signKey, signKID = newest, newestKID
	}
	if signKey == nil {
		return nil, fmt.Errorf("%w: no signing key", ErrSigningKeys)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: signKey, KeyID: signKID}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: signer: %w", ErrSigningKeys, err)
	}
	set.signer = signer
	if set.jwksJSON, err = json.Marshal(jose.JSONWebKeySet{Keys: set.jwks}); err != nil {
		return nil, fmt.Errorf("%w: encode JWKS: %w", ErrSigningKeys, err)
	}
	return set, nil
}

// Refresh reloads the keys every interval until ctx ends, so rotations
// made in signing_keys take effect without a restart. A failed reload
// keeps the keys in use and is reported to onErr.
func (k *Keys) Refresh(ctx context.Context, db *sqlx.DB, every time.Duration, onErr func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.Reload(ctx, db); err != nil && ctx.Err() == nil {
				onErr(err)
			}
		}
	}
}

// Reload loads the keys again (see KeyReload) and swaps them in at once.
// On error the keys in use stay.
func (k *Keys) Reload(ctx context.Context, db *sqlx.DB) error {
	rows, err := loadOrCreate(ctx, db, k.kek, k.previous)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSigningKeys, err)
	}
	set, err := buildSet(rows)
	if err != nil {
		return err
	}
	k.set.Store(set)
	return nil
}

// Issuer returns the iss claim of tokens these keys issue and accept.
func (k *Keys) Issuer() string { return k.issuer }

// MaxLifetime returns the longest token lifetime Issue signs and Verify
// accepts (see WithMaxLifetime).
func (k *Keys) MaxLifetime() time.Duration { return k.maxLifetime }

// Audience returns the aud claim of tokens these keys issue and accept.
func (k *Keys) Audience() string { return k.audience }

// Issue signs claims as a compact JWT with the newest key, its kid in the
// header. Empty fields are filled in: Issuer and Audience with the keys'
// own, IssuedAt with the current time, NotBefore with IssuedAt, Expiry
// with IssuedAt plus AccessTokenLifetime, ID with a new unique id. Subject
// is required; an Issuer or Audience other than the keys' own fails with
// ErrInvalidClaims, since Verify would reject the token. Times are kept to
// whole seconds. Safe for concurrent use.
func (k *Keys) Issue(c AccessClaims) (string, error) {
	if c.Issuer == "" {
		c.Issuer = k.issuer
	}
	if c.Audience == "" {
		c.Audience = k.audience
	}
	if c.Subject == "" {
		return "", fmt.Errorf("%w: subject is required", ErrInvalidClaims)
	}
	if c.Issuer != k.issuer || c.Audience != k.audience {
		return "", fmt.Errorf("%w: issuer and audience must be the keys' own", ErrInvalidClaims)
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = time.Now()
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = c.IssuedAt
	}
	if c.Expiry.IsZero() {
		c.Expiry = c.IssuedAt.Add(AccessTokenLifetime)
	}
	if !c.Expiry.After(c.NotBefore) {
		return "", fmt.Errorf("%w: expiry must be after not-before", ErrInvalidClaims)
	}
	if c.Expiry.Sub(c.IssuedAt) > k.maxLifetime {
		return "", fmt.Errorf("%w: lifetime beyond %s", ErrInvalidClaims, k.maxLifetime)
	}
	if c.ID == "" {
		c.ID = events.NewID()
	}
	payload, err := json.Marshal(wireClaimsOut{
		Issuer:       c.Issuer,
		Subject:      c.Subject,
		Audience:     c.Audience,
		Tenant:       c.Tenant,
		ClientID:     c.ClientID,
		CredentialID: c.CredentialID,
		ID:           c.ID,
		Scope:        c.Scope,
		Generation:   c.Generation,
		IssuedAt:     c.IssuedAt.Unix(),
		NotBefore:    c.NotBefore.Unix(),
		Expiry:       c.Expiry.Unix(),
	})
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidClaims, err)
	}
	// Signing the JSON payload directly skips the jwt builder's
	// marshal-unmarshal-marshal round trip; the result is the same JWT.
	sig, err := k.set.Load().signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return sig.CompactSerialize()
}

var edDSAOnly = []jose.SignatureAlgorithm{jose.EdDSA}

// Verify checks a token's signature against the loaded keys (by kid), its
// issuer and audience, and its validity at now: exp must be after now
// (no leeway), nbf and iat not later than now plus ClockSkew, and exp at
// most MaxLifetime after iat. Every
// failure matches ErrInvalidToken; time failures also match
// ErrTokenExpired. Revocation is not checked here: that needs the event
// log (see query.Directory). Safe for concurrent use.
func (k *Keys) Verify(token string, now time.Time) (AccessClaims, error) {
	if len(token) > maxTokenLen || strings.Count(token, ".") != 2 {
		return AccessClaims{}, fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	tok, err := jwt.ParseSigned(token, edDSAOnly)
	if err != nil {
		return AccessClaims{}, fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	if len(tok.Headers) != 1 {
		return AccessClaims{}, fmt.Errorf("%w: want one signature", ErrInvalidToken)
	}
	pub, ok := k.set.Load().public[tok.Headers[0].KeyID]
	if !ok {
		return AccessClaims{}, fmt.Errorf("%w: unknown signing key", ErrInvalidToken)
	}
	var w wireClaims
	if err := tok.Claims(pub, &w); err != nil {
		return AccessClaims{}, fmt.Errorf("%w: bad signature or claims", ErrInvalidToken)
	}
	if w.Issuer != k.issuer {
		return AccessClaims{}, fmt.Errorf("%w: wrong issuer", ErrInvalidToken)
	}
	if !w.Audience.Contains(k.audience) {
		return AccessClaims{}, fmt.Errorf("%w: wrong audience", ErrInvalidToken)
	}
	if w.Subject == "" || w.ID == "" || w.Expiry == nil || w.IssuedAt == nil || w.NotBefore == nil {
		return AccessClaims{}, fmt.Errorf("%w: missing claims", ErrInvalidToken)
	}
	c := AccessClaims{
		Issuer:       w.Issuer,
		Subject:      w.Subject,
		Audience:     k.audience,
		Tenant:       w.Tenant,
		ClientID:     w.ClientID,
		CredentialID: w.CredentialID,
		ID:           w.ID,
		Scope:        w.Scope,
		Generation:   w.Generation,
		IssuedAt:     w.IssuedAt.Time(),
		NotBefore:    w.NotBefore.Time(),
		Expiry:       w.Expiry.Time(),
	}
	if !now.Before(c.Expiry) {
		return AccessClaims{}, fmt.Errorf("%w: %w: expired", ErrInvalidToken, ErrTokenExpired)
	}
	skewed := now.Add(ClockSkew)
	if skewed.Before(c.NotBefore) || skewed.Before(c.IssuedAt) {
		return AccessClaims{}, fmt.Errorf("%w: %w: not yet valid", ErrInvalidToken, ErrTokenExpired)
	}
	// A well-signed token that claims to live longer than Keyhold ever
	// issues was not issued by Keyhold as it is configured: refuse it.
	if c.Expiry.Sub(c.IssuedAt) > k.maxLifetime {
		return AccessClaims{}, fmt.Errorf("%w: lifetime beyond %s", ErrInvalidToken, k.maxLifetime)
	}
	return c, nil
}

// JWKSJSON returns the current public keys encoded as a JWK Set, as
// /.well-known/jwks.json serves them: it follows Reload, so verifiers
// outside Keyhold learn a new key before any token is signed with it. The
// slice is shared: callers must not modify it.
func (k *Keys) JWKSJSON() []byte { return k.set.Load().jwksJSON }

// JWKS returns the public keys tokens may be signed with, for
// /.well-known/jwks.json. It never contains private key material; the
// returned set is the caller's own copy.
func (k *Keys) JWKS() jose.JSONWebKeySet {
	jwks := k.set.Load().jwks
	out := make([]jose.JSONWebKey, len(jwks))
	copy(out, jwks)
	return jose.JSONWebKeySet{Keys: out}
}
