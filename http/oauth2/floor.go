package oauth2

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
)

// floor is the least a client credentials token endpoint can do.
type floor struct {
	clientID string
	verifier [sha256.Size]byte
	signer   jose.Signer
}

// floorClaims has the JSON shape of Keyhold access tokens.
type floorClaims struct {
	Issuer       string `json:"iss"`
	Subject      string `json:"sub"`
	Audience     string `json:"aud"`
	Tenant       string `json:"tenant"`
	ClientID     string `json:"client_id"`
	CredentialID string `json:"cred_id"`
	ID           string `json:"jti"`
	Scope        string `json:"scope,omitempty"`
	IssuedAt     int64  `json:"iat"`
	NotBefore    int64  `json:"nbf"`
	Expiry       int64  `json:"exp"`
}

// NewFloor returns the benchmark baseline for the token endpoint: a handler
// that only reads HTTP Basic credentials, compares the secret's SHA-256
// with a verifier in constant time, and answers with an Ed25519 JWT of the
// same claims shape in the same JSON response as the real endpoint. It has
// no form parsing, no directory, no scopes and an ephemeral key; the real
// endpoint is measured as a fraction of its throughput. Not for serving.
// The handler is safe for concurrent use.
func NewFloor(clientID, secret string) (http.Handler, error) {
	if clientID == "" || secret == "" {
		return nil, fmt.Errorf("%w: floor needs a client id and secret", ErrInvalidOption)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("floor key: %w", err)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: priv, KeyID: "floor"}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("floor signer: %w", err)
	}
	return &floor{clientID: clientID, verifier: sha256.Sum256([]byte(secret)), signer: signer}, nil
}

func (f *floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	sum := sha256.Sum256([]byte(secret))
	if !ok || subtle.ConstantTimeCompare([]byte(id), []byte(f.clientID)) != 1 || subtle.ConstantTimeCompare(sum[:], f.verifier[:]) != 1 {
		writeError(w, &oauthError{status: http.StatusUnauthorized, code: errInvalidClient, description: "client authentication failed", challenge: true})
		return
	}
	now := time.Now()
	payload, err := json.Marshal(floorClaims{
		Issuer:       auth.DefaultIssuer,
		Subject:      id,
		Audience:     auth.DefaultAudience,
		Tenant:       "floor",
		ClientID:     id,
		CredentialID: "floor",
		ID:           events.NewID(),
		IssuedAt:     now.Unix(),
		NotBefore:    now.Unix(),
		Expiry:       now.Add(auth.AccessTokenLifetime).Unix(),
	})
	if err == nil {
		var sig *jose.JSONWebSignature
		if sig, err = f.signer.Sign(payload); err == nil {
			var tok string
			if tok, err = sig.CompactSerialize(); err == nil {
				writeJSON(w, http.StatusOK, tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(auth.AccessTokenLifetime / time.Second)})
				return
			}
		}
	}
	writeError(w, &oauthError{status: http.StatusInternalServerError, code: "server_error", description: "could not issue a token"})
}
