package auth_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/jmoiron/sqlx"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/internal/testenv"
)

// testKEK wraps the signing keys of every test here; tests of the
// wrapping itself make their own.
var testKEK = func() auth.KEK {
	k, err := auth.NewKEK()
	if err != nil {
		panic(err)
	}
	return k
}()

func loadKeys(t testing.TB, db *sqlx.DB, opts ...auth.KeysOption) *auth.Keys {
	t.Helper()
	k, err := auth.LoadKeys(context.Background(), db, append([]auth.KeysOption{auth.WithKEK(testKEK)}, opts...)...)
	testenv.Must(t, err, "load keys")
	return k
}

func claims(now time.Time) auth.AccessClaims {
	return auth.AccessClaims{
		Subject:      "01sa",
		Tenant:       "acme",
		ClientID:     "khc-01sa",
		CredentialID: "01cred",
		Scope:        "viewer",
		IssuedAt:     now,
	}
}

func issue(t testing.TB, k *auth.Keys, c auth.AccessClaims) string {
	t.Helper()
	tok, err := k.Issue(c)
	testenv.Must(t, err, "issue")
	return tok
}

func onlyKID(t testing.TB, k *auth.Keys) string {
	t.Helper()
	set := k.JWKS()
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS holds %d keys, want 1", len(set.Keys))
	}
	return set.Keys[0].KeyID
}

func TestLoadKeysReplicasShareOneKey(t *testing.T) {
	db := testenv.DB(t)
	const replicas = 8
	keys := make([]*auth.Keys, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], errs[i] = auth.LoadKeys(context.Background(), db, auth.WithKEK(testKEK))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		testenv.Must(t, err, "replica %d", i)
	}
	var n int
	testenv.Must(t, db.Get(&n, `SELECT count(*) FROM signing_keys`), "count keys")
	if n != 1 {
		t.Fatalf("%d signing keys stored, want 1", n)
	}
	kid := onlyKID(t, keys[0])
	now := time.Now()
	tok := issue(t, keys[0], claims(now))
	for i, k := range keys {
		t.Run("replica "+string(rune('0'+i)), func(t *testing.T) {
			if got := onlyKID(t, k); got != kid {
				t.Fatalf("kid %s, want %s", got, kid)
			}
			if _, err := k.Verify(tok, now); err != nil {
				t.Fatalf("verify token of replica 0: %v", err)
			}
		})
	}
}

func TestSigningKeyStorage(t *testing.T) {
	db := testenv.DB(t)
	k := loadKeys(t, db)
	var row struct {
		KID        string     `db:"kid"`
		PrivateKey []byte     `db:"private_key"`
		RetiredAt  *time.Time `db:"retired_at"`
	}
	testenv.Must(t, db.Get(&row, `SELECT kid, private_key, retired_at FROM signing_keys`), "select key")
	// Stored wrapped: what the table holds is no private key.
	if _, err := x509.ParsePKCS8PrivateKey(row.PrivateKey); err == nil || !bytes.HasPrefix(row.PrivateKey, []byte("KHK1")) {
		t.Fatalf("signing_keys holds a private key in the clear (parse err %v)", err)
	}
	pub, ok := k.JWKS().Keys[0].Key.(ed25519.PublicKey)
	if !ok {
		t.Fatalf("JWKS key is %T, want ed25519", k.JWKS().Keys[0].Key)
	}
	jwk := jose.JSONWebKey{Key: pub}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	testenv.Must(t, err, "thumbprint")
	if want := base64.RawURLEncoding.EncodeToString(thumb); row.KID != want || onlyKID(t, k) != want {
		t.Fatalf("kid %q (JWKS %q), want RFC 7638 thumbprint %q", row.KID, onlyKID(t, k), want)
	}
	if row.RetiredAt != nil {
		t.Fatalf("new key is retired")
	}
	// The DDL is idempotent, so migrations may run it as well.
	testenv.Must(t, func() error { _, err := db.Exec(auth.SigningKeysDDL); return err }(), "rerun DDL")
}

func TestJWKSHoldsPublicKeysOnly(t *testing.T) {
	k := loadKeys(t, testenv.DB(t))
	set := k.JWKS()
	raw, err := json.Marshal(set)
	testenv.Must(t, err, "marshal JWKS")
	var decoded struct {
		Keys []map[string]any `json:"keys"`
	}
	testenv.Must(t, json.Unmarshal(raw, &decoded), "unmarshal JWKS")
	for _, key := range decoded.Keys {
		if _, has := key["d"]; has {
			t.Fatalf("JWKS leaks private key material: %s", raw)
		}
		if key["kty"] != "OKP" || key["crv"] != "Ed25519" || key["alg"] != "EdDSA" || key["use"] != "sig" {
			t.Fatalf("unexpected key %v", key)
		}
	}
	// A relying party with only the JWKS can verify a token.
	now := time.Now()
	tok, err := jwt.ParseSigned(issue(t, k, claims(now)), []jose.SignatureAlgorithm{jose.EdDSA})
	testenv.Must(t, err, "parse")
	var std jwt.Claims
	testenv.Must(t, tok.Claims(set, &std), "verify with JWKS")
	if std.Subject != "01sa" || std.Issuer != auth.DefaultIssuer || !std.Audience.Contains(auth.DefaultAudience) {
		t.Fatalf("claims %+v", std)
	}
	if tok.Headers[0].KeyID != set.Keys[0].KeyID {
		t.Fatalf("kid header %q, want %q", tok.Headers[0].KeyID, set.Keys[0].KeyID)
	}
	// Mutating the returned set does not change the keys.
	set.Keys[0].KeyID = "x"
	if onlyKID(t, k) == "x" {
		t.Fatalf("JWKS returned shared state")
	}
}

func TestIssueAndVerifyRoundTrip(t *testing.T) {
	k := loadKeys(t, testenv.DB(t), auth.WithIssuer("https://iam.example.test"), auth.WithAudience("api"))
	now := time.Now()
	c := claims(now)
	c.ID = "01jti"
	tok := issue(t, k, c)
	got, err := k.Verify(tok, now)
	testenv.Must(t, err, "verify")
	want := auth.AccessClaims{
		Issuer: "https://iam.example.test", Subject: "01sa", Audience: "api", Tenant: "acme",
		ClientID: "khc-01sa", CredentialID: "01cred", ID: "01jti", Scope: "viewer",
		IssuedAt: now.Truncate(time.Second), NotBefore: now.Truncate(time.Second),
		Expiry: now.Truncate(time.Second).Add(auth.AccessTokenLifetime),
	}
	if !got.IssuedAt.Equal(want.IssuedAt) || !got.NotBefore.Equal(want.NotBefore) || !got.Expiry.Equal(want.Expiry) {
		t.Fatalf("times %v %v %v, want %v %v %v", got.IssuedAt, got.NotBefore, got.Expiry, want.IssuedAt, want.NotBefore, want.Expiry)
	}
	got.IssuedAt, got.NotBefore, got.Expiry = want.IssuedAt, want.NotBefore, want.Expiry
	if got != want {
		t.Fatalf("claims\n got %+v\nwant %+v", got, want)
	}
	// Without an ID, Issue generates a fresh one.
	generated, err := k.Verify(issue(t, k, claims(now)), now)
	testenv.Must(t, err, "verify generated")
	if generated.ID == "" || generated.ID == want.ID {
		t.Fatalf("generated jti %q must be new and non-empty", generated.ID)
	}
}

func TestIssueRejectsBadClaims(t *testing.T) {
	k := loadKeys(t, testenv.DB(t))
	now := time.Now()
	tests := []struct {
		name   string
		modify func(*auth.AccessClaims)
	}{
		{"no subject", func(c *auth.AccessClaims) { c.Subject = "" }},
		{"foreign issuer", func(c *auth.AccessClaims) { c.Issuer = "https://elsewhere.test" }},
		{"foreign audience", func(c *auth.AccessClaims) { c.Audience = "other" }},
		{"expiry before not-before", func(c *auth.AccessClaims) { c.Expiry = now.Add(-time.Minute) }},
		{"expiry equals not-before", func(c *auth.AccessClaims) { c.NotBefore = now; c.Expiry = now }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claims(now)
			tt.modify(&c)
			if _, err := k.Issue(c); !errors.Is(err, auth.ErrInvalidClaims) {
				t.Fatalf("err = %v, want ErrInvalidClaims", err)
			}
		})
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestVerifyRejects(t *testing.T) {
	db := testenv.DB(t)
	k := loadKeys(t, db)
	otherIssuer := loadKeys(t, db, auth.WithIssuer("https://other.test"))
	otherAudience := loadKeys(t, db, auth.WithAudience("other"))
	foreign := loadKeys(t, testenv.DB(t))
	now := time.Now().Truncate(time.Second)
	good := issue(t, k, claims(now))
	parts := strings.Split(good, ".")
	kid := onlyKID(t, k)

	// alg confusion: HMAC keyed with the public key, carrying the right kid.
	pub := k.JWKS().Keys[0].Key.(ed25519.PublicKey)
	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: []byte(pub), KeyID: kid}}, nil)
	testenv.Must(t, err, "hmac signer")
	hsSig, err := hs.Sign([]byte(b64decode(t, parts[1])))
	testenv.Must(t, err, "hmac sign")
	hsTok, err := hsSig.CompactSerialize()
	testenv.Must(t, err, "hmac serialize")

	flipped := []byte(parts[2])
	flipped[3] ^= 1

	tests := []struct {
		name    string
		token   string
		now     time.Time
		expired bool
	}{
		{"empty", "", now, false},
		{"garbage", "not-a-jwt", now, false},
		{"too long", good + strings.Repeat("A", 5000), now, false},
		{"expired", good, now.Add(auth.AccessTokenLifetime), true},
		{"long expired", good, now.Add(24 * time.Hour), true},
		{"not yet valid beyond skew", good, now.Add(-auth.ClockSkew - time.Second), true},
		{"other issuer", issue(t, otherIssuer, claims(now)), now, false},
		{"other audience", issue(t, otherAudience, claims(now)), now, false},
		{"unknown kid", issue(t, foreign, claims(now)), now, false},
		{"tampered payload", parts[0] + "." + b64(strings.Replace(b64decode(t, parts[1]), "acme", "evil", 1)) + "." + parts[2], now, false},
		{"tampered signature", parts[0] + "." + parts[1] + "." + string(flipped), now, false},
		{"alg none", b64(`{"alg":"none","kid":"`+kid+`"}`) + "." + parts[1] + ".", now, false},
		{"alg HS256 with public key", hsTok, now, false},
		{"no kid", b64(`{"alg":"EdDSA"}`) + "." + parts[1] + "." + parts[2], now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := k.Verify(tt.token, tt.now)
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
			if got := errors.Is(err, auth.ErrTokenExpired); got != tt.expired {
				t.Fatalf("errors.Is(ErrTokenExpired) = %v, want %v (err %v)", got, tt.expired, err)
			}
		})
	}

	accept := []struct {
		name string
		now  time.Time
	}{
		{"at issue", now},
		{"within clock skew before issue", now.Add(-auth.ClockSkew)},
		{"a second before expiry", now.Add(auth.AccessTokenLifetime - time.Second)},
	}
	for _, tt := range accept {
		t.Run("accepts "+tt.name, func(t *testing.T) {
			if _, err := k.Verify(good, tt.now); err != nil {
				t.Fatalf("verify: %v", err)
			}
		})
	}
}

func b64decode(t testing.TB, s string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	testenv.Must(t, err, "base64")
	return string(b)
}

// TestKeyRotation walks the rotation the docs describe, with Reload as
// each replica does it every KeyReload: a new key verifies at once but
// signs only once every replica had time to load it; a retired key stops
// signing at once and stops verifying after RetiredKeyGrace.
func TestKeyRotation(t *testing.T) {
	db := testenv.DB(t)
	ctx := context.Background()
	keys := loadKeys(t, db)
	oldKID := onlyKID(t, keys)
	now := time.Now()
	oldTok := issue(t, keys, claims(now))
	signer := func(t *testing.T) string {
		t.Helper()
		parsed, err := jwt.ParseSigned(issue(t, keys, claims(now)), []jose.SignatureAlgorithm{jose.EdDSA})
		testenv.Must(t, err, "parse")
		return parsed.Headers[0].KeyID
	}
	// The old key has been in use for a while; a new one is inserted.
	_, err := db.Exec(`UPDATE signing_keys SET created_at = now() - interval '30 days'`)
	testenv.Must(t, err, "age the old key")
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	testenv.Must(t, err, "generate")
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	testenv.Must(t, err, "encode")
	newKID := "new-key"
	_, err = db.Exec(`INSERT INTO signing_keys (kid, private_key) VALUES ($1, $2)`, newKID, der)
	testenv.Must(t, err, "insert the new key")

	testenv.Must(t, keys.Reload(ctx, db), "reload")
	if n := len(keys.JWKS().Keys); n != 2 {
		t.Fatalf("JWKS holds %d keys, want 2", n)
	}
	if kid := signer(t); kid != oldKID {
		t.Fatalf("signed with %s right after the insert, want the settled old key", kid)
	}
	_, err = db.Exec(`UPDATE signing_keys SET created_at = now() - $2 * interval '1 second' WHERE kid = $1`, newKID, auth.KeyPropagation.Seconds())
	testenv.Must(t, err, "let the new key settle")
	testenv.Must(t, keys.Reload(ctx, db), "reload")
	if kid := signer(t); kid != newKID {
		t.Fatalf("signed with %s once the new key settled, want it", kid)
	}

	_, err = db.Exec(`UPDATE signing_keys SET retired_at = now() WHERE kid = $1`, oldKID)
	testenv.Must(t, err, "retire the old key")
	testenv.Must(t, keys.Reload(ctx, db), "reload")
	if _, err := keys.Verify(oldTok, now); err != nil {
		t.Fatalf("a token of the just retired key: %v, want it still valid", err)
	}
	if kid := signer(t); kid != newKID {
		t.Fatalf("signed with %s after the retirement", kid)
	}
	_, err = db.Exec(`UPDATE signing_keys SET retired_at = now() - $2 * interval '1 second' - interval '1 minute' WHERE kid = $1`, oldKID, auth.RetiredKeyGrace.Seconds())
	testenv.Must(t, err, "let the grace pass")
	testenv.Must(t, keys.Reload(ctx, db), "reload")
	if _, err := keys.Verify(oldTok, now); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("a token of a key retired past the grace: %v, want ErrInvalidToken", err)
	}
	if n := len(keys.JWKS().Keys); n != 1 {
		t.Fatalf("JWKS holds %d keys after the grace, want 1", n)
	}

	// With every key retired, a new one is created.
	_, err = db.Exec(`UPDATE signing_keys SET retired_at = now()`)
	testenv.Must(t, err, "retire all")
	testenv.Must(t, keys.Reload(ctx, db), "reload")
	if kid := signer(t); kid == newKID || kid == oldKID {
		t.Fatalf("signed with retired key %s", kid)
	}
}

func TestKeysOptionsValidate(t *testing.T) {
	db := testenv.DB(t)
	tests := []struct {
		name string
		opt  auth.KeysOption
	}{
		{"empty issuer", auth.WithIssuer("")},
		{"issuer with space", auth.WithIssuer("a b")},
		{"issuer too long", auth.WithIssuer(strings.Repeat("a", 257))},
		{"empty audience", auth.WithAudience("")},
		{"audience with newline", auth.WithAudience("a\nb")},
		{"zero key-encryption key", auth.WithKEK(auth.KEK{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := auth.LoadKeys(context.Background(), db, auth.WithKEK(testKEK), tt.opt); !errors.Is(err, auth.ErrInvalidOption) {
				t.Fatalf("err = %v, want ErrInvalidOption", err)
			}
		})
	}
}

func TestLoadKeysFailsWithoutDatabase(t *testing.T) {
	db := testenv.DB(t)
	db.Close()
	if _, err := auth.LoadKeys(context.Background(), db, auth.WithKEK(testKEK)); !errors.Is(err, auth.ErrSigningKeys) {
		t.Fatalf("err = %v, want ErrSigningKeys", err)
	}
}

func TestConcurrentIssueAndVerify(t *testing.T) {
	k := loadKeys(t, testenv.DB(t))
	now := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				tok, err := k.Issue(claims(now))
				if err == nil {
					_, err = k.Verify(tok, now)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent issue/verify: %v", err)
	}
}

func BenchmarkIssue(b *testing.B) {
	k := loadKeys(b, testenv.DB(b))
	c := claims(time.Now())
	c.ID = "01jti"
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := k.Issue(c); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	k := loadKeys(b, testenv.DB(b))
	now := time.Now()
	tok := issue(b, k, claims(now))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := k.Verify(tok, now); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// A token signed with a key Keyhold trusts but claiming a longer life than
// Keyhold issues, or issued in the future, is refused. The token is signed
// outside Keyhold with a key of the signing_keys table, as someone who got
// hold of one would do, since Issue refuses such claims.
func TestVerifyRefusesForgedLifetimes(t *testing.T) {
	db := testenv.DB(t)
	k := loadKeys(t, db)
	_, parsed, err := ed25519.GenerateKey(rand.Reader)
	testenv.Must(t, err, "generate")
	der, err := x509.MarshalPKCS8PrivateKey(parsed)
	testenv.Must(t, err, "encode")
	_, err = db.Exec(`INSERT INTO signing_keys (kid, private_key) VALUES ('stolen', $1)`, der)
	testenv.Must(t, err, "insert")
	testenv.Must(t, k.Reload(context.Background(), db), "reload")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: parsed, KeyID: "stolen"}}, nil)
	testenv.Must(t, err, "signer")
	now := time.Now().Truncate(time.Second)
	forge := func(iat, exp time.Time) string {
		t.Helper()
		payload := fmt.Sprintf(`{"iss":%q,"sub":"01sa","aud":%q,"tenant":"acme","client_id":"khc-01sa","cred_id":"01cred","jti":"01jti","scope":"viewer","iat":%d,"nbf":%d,"exp":%d}`,
			k.Issuer(), k.Audience(), iat.Unix(), iat.Unix(), exp.Unix())
		sig, err := signer.Sign([]byte(payload))
		testenv.Must(t, err, "sign")
		tok, err := sig.CompactSerialize()
		testenv.Must(t, err, "serialize")
		return tok
	}
	if _, err := k.Verify(forge(now, now.Add(auth.AccessTokenLifetime)), now); err != nil {
		t.Fatalf("a forged token with a normal lifetime must verify (else the refusals below prove nothing): %v", err)
	}
	tests := []struct {
		name     string
		iat, exp time.Time
	}{
		{"one year ahead", now, now.Add(365 * 24 * time.Hour)},
		{"a second beyond the lifetime", now, now.Add(auth.AccessTokenLifetime + time.Second)},
		{"issued beyond the skew", now.Add(auth.ClockSkew + time.Minute), now.Add(auth.ClockSkew + 2*time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := k.Verify(forge(tt.iat, tt.exp), now); !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
	if _, err := k.Issue(auth.AccessClaims{Subject: "01sa", IssuedAt: now, Expiry: now.Add(time.Hour)}); !errors.Is(err, auth.ErrInvalidClaims) {
		t.Fatalf("Issue with a lifetime beyond the maximum: err = %v, want ErrInvalidClaims", err)
	}
}
