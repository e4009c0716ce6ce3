package auth

import (
	"encoding/hex"
	"strings"
)

// PrefixInvitation starts an invitation's registration token.
const PrefixInvitation = "khinv_"

// FormatInvitationToken returns the registration token of the invitation
// id in tenant: the prefix, the tenant, the id and the hex of mac (which
// proves the token was made by this instance), separated by "_", and a
// 6-character CRC-32 checksum, so that scanners spot the token and typos
// are refused without a lookup. Tenant ids and invitation ids hold no "_".
func FormatInvitationToken(tenant, id string, mac []byte) string {
	s := PrefixInvitation + tenant + "_" + id + "_" + hex.EncodeToString(mac)
	return s + checksum(s)
}

// ParseInvitationToken splits a token FormatInvitationToken made into its
// tenant, id and MAC; anything else is ErrMalformedSecret. It does not
// check the MAC: the maker of the token does.
func ParseInvitationToken(s string) (tenant, id string, mac []byte, err error) {
	if len(s) > 256 || len(s) < len(PrefixInvitation)+checkLen+4 || !strings.HasPrefix(s, PrefixInvitation) {
		return "", "", nil, ErrMalformedSecret
	}
	body := s[:len(s)-checkLen]
	if checksum(body) != s[len(body):] {
		return "", "", nil, ErrMalformedSecret
	}
	parts := strings.Split(strings.TrimPrefix(body, PrefixInvitation), "_")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return "", "", nil, ErrMalformedSecret
	}
	mac, err = hex.DecodeString(parts[2])
	if err != nil || len(mac) == 0 {
		return "", "", nil, ErrMalformedSecret
	}
	return parts[0], parts[1], mac, nil
}

// InvitationPath is where an invitation's link leads, under the public
// URL, followed by the token: the page that accepts it.
const InvitationPath = "/ui/invitations/"

// InvitationLink returns the link of an invitation's token under base,
// the server's public URL (scheme and host, maybe a path).
func InvitationLink(base, token string) string {
	return strings.TrimRight(base, "/") + InvitationPath + token
}
