package privacy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/privacy"
)

// Invitation tokens verify on every replica and after a restart (the
// secret is kept, wrapped, in the database), and nowhere else; a token
// whose MAC belongs to another invitation, or altered, is refused.
func TestInvitationTokens(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	kek := newKEK(t)
	s, err := privacy.Open(ctx, db.DB, kek)
	testenv.Must(t, err, "open")
	replica, err := privacy.Open(ctx, db.DB, kek)
	testenv.Must(t, err, "open replica")
	const id = "01m8y4rp1farmyh8b4869nyhvt"
	token := s.InvitationToken("acme", id)
	if !strings.HasPrefix(token, auth.PrefixInvitation) || replica.InvitationToken("acme", id) != token {
		t.Fatalf("token %q; the replica's %q", token, replica.InvitationToken("acme", id))
	}
	if tenant, got, ok := replica.VerifyInvitationToken(token); !ok || tenant != "acme" || got != id {
		t.Fatalf("replica verifies %q %q %v", tenant, got, ok)
	}
	_, _, mac, err := auth.ParseInvitationToken(token)
	testenv.Must(t, err, "parse")
	for name, bad := range map[string]string{
		"another instance's":       privacy.NewMemory().InvitationToken("acme", id),
		"another invitation's MAC": auth.FormatInvitationToken("acme", "01m8y4rp1farmyh8b4869nyhvx", mac),
		"another tenant's MAC":     auth.FormatInvitationToken("other", id, mac),
		"a short MAC":              auth.FormatInvitationToken("acme", id, mac[:8]),
		"altered":                  altered(token),
		"no token":                 "",
		"another kind of secret":   auth.NewSecret(auth.PrefixAPIToken),
	} {
		t.Run(name, func(t *testing.T) {
			if tenant, got, ok := s.VerifyInvitationToken(bad); ok {
				t.Fatalf("%q verifies as %q %q", bad, tenant, got)
			}
		})
	}
}

// altered is token with another last character.
func altered(token string) string {
	if strings.HasSuffix(token, "x") {
		return token[:len(token)-1] + "y"
	}
	return token[:len(token)-1] + "x"
}
