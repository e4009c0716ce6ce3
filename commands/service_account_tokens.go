package commands

import (
	"context"
	"regexp"
	"slices"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

// tokenNamePattern is what a service account's API token may be called:
// Kestra's rule, 1 to 63 lowercase letters and digits in '-'-separated
// words.
var tokenNamePattern = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// MaxTokenName bounds a service account API token's name.
const MaxTokenName = 63

// IssueServiceAccountToken gives a service account a new API token: a
// Bearer token that authenticates as the account, with its bindings, in
// its tenant (the caller's).
type IssueServiceAccountToken struct {
	Meta
	// ServiceAccountID is the account's id or its chosen name.
	ServiceAccountID string
	// Name is required (tokenNamePattern); Description is optional.
	Name        string
	Description string
	// Lifetime is how long the token works: 0 means the instance's
	// default API token lifetime; at most the instance's maximum.
	Lifetime time.Duration
}

// Validate checks the command's input without reading the log; Handle
// checks it too.
func (cmd IssueServiceAccountToken) Validate() error {
	if len(cmd.Name) > MaxTokenName || !tokenNamePattern.MatchString(cmd.Name) {
		return invalid("name", "must be 1 to %d lowercase letters and digits, in words joined by single '-'", MaxTokenName)
	}
	if err := validText("description", cmd.Description, descriptionText); err != nil {
		return err
	}
	if cmd.Lifetime < 0 {
		return invalid("lifetime", "must be positive")
	}
	return nil
}

// ServiceAccountTokenResult is a new service account API token. Token is
// returned only here and can never be read again.
type ServiceAccountTokenResult struct {
	ServiceAccountID string
	TokenID          string
	Name             string
	Token            string
	ExpiresAt        time.Time
	Sequence         uint64
	// Replayed is set when an earlier attempt of the same keyed request
	// (Meta.IDSeed) had issued the token: nothing was appended, and the
	// token is not known any more (Token is empty).
	Replayed bool
}

// IssueServiceAccountTokenHandler handles IssueServiceAccountToken.
type IssueServiceAccountTokenHandler struct{ actAs }

// Authorize decides from cmd's Meta and ServiceAccountID alone whether
// the caller may issue tokens at all (the first half of the rule for
// acting as an account, see actAs); non-administrators get ErrNotFound.
// Handle calls it too; a dialect calls it before reading the request body.
func (h IssueServiceAccountTokenHandler) Authorize(cmd IssueServiceAccountToken) error {
	return h.authorize(cmd.Caller, cmd.ServiceAccountID)
}

// Handle issues the token. A token is the account's rights in the
// caller's hands, so it takes what a client secret takes: the rule for
// acting as the account (actAs: non-administrators get ErrNotFound, and
// the caller holds every role of the account within its scope). Only the
// token's verifier is recorded. The token dies with the account.
func (h IssueServiceAccountTokenHandler) Handle(ctx context.Context, cmd IssueServiceAccountToken) (ServiceAccountTokenResult, error) {
	tenantID := cmd.Caller.Tenant
	if err := h.Authorize(cmd); err != nil {
		return ServiceAccountTokenResult{}, err
	}
	if err := cmd.Validate(); err != nil {
		return ServiceAccountTokenResult{}, err
	}
	expires, err := h.apiTokenExpiry(ctx, cmd.Lifetime)
	if err != nil {
		return ServiceAccountTokenResult{}, err
	}
	if cmd.ServiceAccountID, err = h.resolveServiceAccount(ctx, tenantID, cmd.ServiceAccountID, false); err != nil {
		return ServiceAccountTokenResult{}, err
	}
	token := auth.NewSecret(auth.PrefixAPIToken)
	tokenID := events.NewID()
	if cmd.IDSeed != "" {
		tokenID = cmd.IDSeed
	}
	replayed := false
	seq, err := h.repo.execute(ctx, cmd.Meta, key{tenantID, events.AggregateServiceAccount, cmd.ServiceAccountID}, func(c *change) error {
		sa, k, seq, err := h.account(ctx, cmd.Caller, cmd.ServiceAccountID)
		if err != nil {
			return err
		}
		switch {
		case slices.Contains(sa.apiTokens, tokenID):
			replayed = true // an earlier attempt of this request
			return nil
		case slices.Contains(sa.revokedAPITokens, tokenID):
			return ruleError(ErrAlreadyExists, "", "this request created API token %s, which has been deleted since", tokenID)
		}
		c.record(k, sa, seq, events.APITokenIssued{TokenID: tokenID, PrincipalKind: events.SubjectServiceAccount, Name: cmd.Name,
			Description: cmd.Description, Verifier: auth.Verifier(token), ExpiresAt: &expires})
		return nil
	})
	if err != nil {
		return ServiceAccountTokenResult{}, err
	}
	if replayed {
		return ServiceAccountTokenResult{ServiceAccountID: cmd.ServiceAccountID, TokenID: tokenID, Name: cmd.Name, Sequence: seq, Replayed: true}, nil
	}
	return ServiceAccountTokenResult{ServiceAccountID: cmd.ServiceAccountID, TokenID: tokenID, Name: cmd.Name, Token: token, ExpiresAt: expires, Sequence: seq}, nil
}

// apiTokenExpiry returns when a token issued now for life ends: the
// instance's default API token lifetime for 0, and never beyond the
// instance's maximum (ErrInvalid naming lifetime).
func (b base) apiTokenExpiry(ctx context.Context, life time.Duration) (time.Time, error) {
	if life < 0 || life > MaxAPITokenLifetimeSetting {
		return time.Time{}, invalid("lifetime", "must be between 1 second and %s", lifetime(int64(MaxAPITokenLifetimeSetting.Seconds())))
	}
	in, _, err := b.instance(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if life == 0 {
		life = in.apiTokenDefault
	}
	if life > in.apiTokenMax {
		return time.Time{}, invalid("lifetime", "must be at most %s, the instance's maximum API token lifetime", lifetime(int64(in.apiTokenMax.Seconds())))
	}
	return b.now().Add(life).UTC().Truncate(time.Second), nil
}

// RevokeServiceAccountToken ends one API token of a service account.
type RevokeServiceAccountToken struct {
	Meta
	// ServiceAccountID is the account's id or its chosen name.
	ServiceAccountID string
	TokenID          string
}

// RevokeServiceAccountTokenHandler handles RevokeServiceAccountToken.
type RevokeServiceAccountTokenHandler struct{ base }

// Handle records the revocation; the token stops working once readers
// apply it. Non-administrators (without the right to delete credentials),
// unknown accounts and unknown or revoked tokens get ErrNotFound.
func (h RevokeServiceAccountTokenHandler) Handle(ctx context.Context, cmd RevokeServiceAccountToken) (uint64, error) {
	tenantID := cmd.Caller.Tenant
	if err := h.hidden(cmd.Caller, authz.CredentialsDelete, authz.TenantScope(tenantID), "API token", cmd.TokenID); err != nil {
		return 0, err
	}
	if !events.ValidToken(cmd.TokenID) {
		return 0, notFound("API token", cmd.TokenID)
	}
	id, err := h.resolveServiceAccount(ctx, tenantID, cmd.ServiceAccountID, false)
	if err != nil {
		return 0, err
	}
	return h.repo.execute(ctx, cmd.Meta, key{tenantID, events.AggregateServiceAccount, id}, func(c *change) error {
		sa, k, seq, err := h.serviceAccount(ctx, tenantID, id)
		if err != nil {
			return err
		}
		if !sa.exists {
			return notFound("service account", id)
		}
		if !slices.Contains(sa.apiTokens, cmd.TokenID) {
			return notFound("API token", cmd.TokenID)
		}
		c.record(k, sa, seq, events.APITokenRevoked{TokenID: cmd.TokenID})
		return nil
	})
}
