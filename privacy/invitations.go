package privacy

import (
	"crypto/hmac"
	"crypto/sha256"

	"github.com/keyhold/keyhold/auth"
)

// invitationMACLen is how many bytes of the HMAC a token carries: 128
// bits cannot be guessed.
const invitationMACLen = 16

// InvitationToken returns the registration token of invitation id in
// tenant (auth.FormatInvitationToken): its MAC is HMAC-SHA256 of tenant
// and id under the instance's invitation secret, which is kept wrapped by
// the key-encryption key beside the blinding secret and serves nothing
// else. The token is derived, never stored: the same invitation always
// gets the same token, and only this instance can make one.
func (s *Store) InvitationToken(tenant, id string) string {
	return auth.FormatInvitationToken(tenant, id, s.invitationMAC(tenant, id))
}

// VerifyInvitationToken returns the tenant and invitation id of a token
// InvitationToken made, comparing its MAC in constant time; ok is false
// for anything else. Whether the invitation still holds is the caller's
// to decide.
func (s *Store) VerifyInvitationToken(token string) (tenant, id string, ok bool) {
	tenant, id, mac, err := auth.ParseInvitationToken(token)
	if err != nil || !hmac.Equal(mac, s.invitationMAC(tenant, id)) {
		return "", "", false
	}
	return tenant, id, true
}

func (s *Store) invitationMAC(tenant, id string) []byte {
	m := hmac.New(sha256.New, s.invitationSecret)
	m.Write([]byte("invitation\x00" + tenant + "\x00" + id))
	return m.Sum(nil)[:invitationMACLen]
}
