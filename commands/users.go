package commands

import (
	"context"
	"slices"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

// IssueAPIToken gives a user a new personal API token.
type IssueAPIToken struct {
	Meta
	UserID string
	// Name says what the token is for; optional.
	Name string
	// Description says more about it; optional.
	Description string
	// Lifetime is how long the token works: 0 means the instance's
	// default; at most the instance's maximum.
	Lifetime time.Duration
}

// Personal API token lifetimes until the instance settings say otherwise.
const (
	DefaultAPITokenLifetime = 90 * 24 * time.Hour
	MaxAPITokenLifetime     = 365 * 24 * time.Hour
)

// Validate checks the command's input without reading the log; Handle
// checks it too.
func (cmd IssueAPIToken) Validate() error {
	if err := validUserID(cmd.UserID); err != nil {
		return err
	}
	if err := validText("name", cmd.Name, textKind{max: MaxDisplayName}); err != nil {
		return err
	}
	if err := validText("description", cmd.Description, textKind{max: MaxDescription, multiline: true}); err != nil {
		return err
	}
	if cmd.Lifetime < 0 || cmd.Lifetime > MaxAPITokenLifetimeSetting {
		return invalid("lifetime", "must be between 1 second and %s", lifetime(int64(MaxAPITokenLifetimeSetting.Seconds())))
	}
	return nil
}

// APITokenResult is a new personal API token. Token is returned only here
// and can never be read again.
type APITokenResult struct {
	UserID    string
	TokenID   string
	Token     string
	ExpiresAt time.Time
	Sequence  uint64
}

// IssueAPITokenHandler handles IssueAPIToken.
type IssueAPITokenHandler struct{ base }

// Handle issues the token, with the instance's default lifetime unless
// one is given, and never beyond the instance's maximum. A user may issue
// its own tokens; a superadmin anyone's. An unknown user is ErrNotFound.
func (h IssueAPITokenHandler) Handle(ctx context.Context, cmd IssueAPIToken) (APITokenResult, error) {
	if err := h.mayManageTokens(cmd.Meta, cmd.UserID); err != nil {
		return APITokenResult{}, err
	}
	if err := cmd.Validate(); err != nil {
		return APITokenResult{}, err
	}
	expires, err := h.apiTokenExpiry(ctx, cmd.Lifetime)
	if err != nil {
		return APITokenResult{}, err
	}
	token := auth.NewSecret(auth.PrefixAPIToken)
	tokenID := events.NewID()
	k := key{events.InstanceTenant, events.AggregateUser, cmd.UserID}
	seq, err := h.repo.execute(ctx, cmd.Meta, k, func(c *change) error {
		u, seq, err := h.existingUser(ctx, cmd.UserID)
		if err != nil {
			return err
		}
		if err := h.restrictedSelf(cmd.Meta, u); err != nil {
			return err
		}
		c.record(k, u, seq, events.APITokenIssued{TokenID: tokenID, PrincipalKind: events.SubjectUser, Name: cmd.Name, Description: cmd.Description, Verifier: auth.Verifier(token), ExpiresAt: &expires})
		return nil
	})
	if err != nil {
		return APITokenResult{}, err
	}
	return APITokenResult{UserID: cmd.UserID, TokenID: tokenID, Token: token, ExpiresAt: expires, Sequence: seq}, nil
}

// RevokeAPITokens ends every personal API token of a user at once, for a
// leaked token or a user who leaves.
type RevokeAPITokens struct {
	Meta
	UserID string
	// TokenID, when set, revokes that token only; an unknown or revoked
	// one is ErrNotFound.
	TokenID string
}

// Validate checks the command's input without reading the log; Handle
// checks it too.
func (cmd RevokeAPITokens) Validate() error {
	if cmd.TokenID != "" && !events.ValidToken(cmd.TokenID) {
		return invalid("token", "must be an API token id")
	}
	return validUserID(cmd.UserID)
}

// RevokeAPITokensResult says how many tokens were revoked.
type RevokeAPITokensResult struct {
	Revoked  int
	Sequence uint64
}

// RevokeAPITokensHandler handles RevokeAPITokens.
type RevokeAPITokensHandler struct{ base }

// Handle revokes the tokens in one atomic append; a user without live
// tokens appends nothing. Only an instance superadmin may; an unknown user
// is ErrNotFound.
func (h RevokeAPITokensHandler) Handle(ctx context.Context, cmd RevokeAPITokens) (RevokeAPITokensResult, error) {
	if err := h.mayManageTokens(cmd.Meta, cmd.UserID); err != nil {
		return RevokeAPITokensResult{}, err
	}
	if err := cmd.Validate(); err != nil {
		return RevokeAPITokensResult{}, err
	}
	k := key{events.InstanceTenant, events.AggregateUser, cmd.UserID}
	var n int
	seq, err := h.repo.execute(ctx, cmd.Meta, k, func(c *change) error {
		u, seq, err := h.existingUser(ctx, cmd.UserID)
		if err != nil {
			return err
		}
		if err := h.restrictedSelf(cmd.Meta, u); err != nil {
			return err
		}
		// A copy: recording each revocation applies it to u, which
		// shrinks u.tokens.
		live := append([]string(nil), u.tokens...)
		if cmd.TokenID != "" {
			if !slices.Contains(live, cmd.TokenID) {
				return notFound("API token", cmd.TokenID)
			}
			live = []string{cmd.TokenID}
		}
		for _, id := range live {
			c.record(k, u, seq, events.APITokenRevoked{TokenID: id})
		}
		n = len(live)
		return nil
	})
	if err != nil {
		return RevokeAPITokensResult{}, err
	}
	return RevokeAPITokensResult{Revoked: n, Sequence: seq}, nil
}

func (b base) mayManageTokens(m Meta, userID string) error {
	self := m.Caller.Kind == auth.KindUser && m.Caller.ID == userID
	if !self && !m.Caller.Can(b.authz, authz.UsersUpdate, "", authz.Instance).Allowed {
		return ruleError(ErrForbidden, "", "only the user itself or a superadmin may issue or revoke a user's personal API tokens")
	}
	return validUserID(userID)
}

func validUserID(id string) error {
	if !events.ValidToken(id) {
		return invalid("user", "must be a user id")
	}
	return nil
}

// existingUser loads a user; one that does not exist is ErrNotFound.
func (b base) existingUser(ctx context.Context, id string) (*User, uint64, error) {
	st, seq, err := b.repo.load(ctx, key{events.InstanceTenant, events.AggregateUser, id}, 0, func() state { return newUser(id) })
	if err != nil {
		return nil, 0, err
	}
	if u := st.(*User); u.exists {
		return u, seq, nil
	}
	return nil, 0, notFound("user", id)
}
