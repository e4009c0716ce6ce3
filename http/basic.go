package http

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/query"
)

// ErrThrottled is returned (inside a *ThrottledError) when too many failed
// password attempts came from the account or the client address.
var ErrThrottled = errors.New("too many failed attempts")

// ThrottledError says how long to wait before trying again.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%s: retry in %s", ErrThrottled, e.RetryAfter)
}

// Unwrap returns ErrThrottled.
func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// PasswordAuthenticator is an Authenticator that also takes HTTP Basic
// credentials (a username or email and a password). addr is the client's
// address, for throttling.
type PasswordAuthenticator interface {
	AuthenticatePassword(ctx context.Context, login, password, tenant, addr string) (auth.Principal, error)
}

// Throttle policies for password attempts. Per account the back-off is
// short, so an attacker cannot lock a user out for long; per address it
// grows long, which is what stops guessing.
var (
	accountThrottle = auth.ThrottlePolicy{Free: 5, Window: 15 * time.Minute, Base: time.Second, Max: 30 * time.Second, Keys: 100_000}
	addressThrottle = auth.ThrottlePolicy{Free: 20, Window: 15 * time.Minute, Base: time.Second, Max: 15 * time.Minute, Keys: 100_000}
)

// AuthenticatePassword implements PasswordAuthenticator over the
// directory. Failures back off per account and per address (a
// *ThrottledError while blocked); a disabled user, or one without access
// to tenant, is refused.
func (b *Bearer) AuthenticatePassword(_ context.Context, login, password, tenant, addr string) (auth.Principal, error) {
	now := b.now()
	// Logins are case-insensitive: so is their throttle, or each spelling
	// would get failures of its own.
	acct, ip := "user:"+strings.ToLower(login), "addr:"+addr
	if d := max(b.accounts.Blocked(acct, now), b.addresses.Blocked(ip, now)); d > 0 {
		return auth.Principal{}, &ThrottledError{RetryAfter: d}
	}
	p, err := b.dir.PasswordPrincipal(login, password, now)
	if errors.Is(err, query.ErrPasswordBusy) {
		return auth.Principal{}, &ThrottledError{RetryAfter: time.Second}
	}
	if err != nil {
		if !errors.Is(err, ErrAuthUnavailable) {
			b.accounts.Failed(acct, now)
			b.addresses.Failed(ip, now)
		}
		return p, refused(err)
	}
	b.accounts.Succeeded(acct)
	return b.userIn(p, tenant)
}

// userIn returns user principal p acting in tenant: p itself for its
// default tenant or "", else its principal there if it has access.
func (b *Bearer) userIn(p auth.Principal, tenant string) (auth.Principal, error) {
	if tenant == "" || tenant == p.Tenant {
		return p, nil
	}
	other, ok := b.dir.UserInTenant(p.ID, tenant)
	if !ok {
		return auth.Principal{}, fmt.Errorf("%w: %w", ErrUnauthenticated, ErrNoTenantAccess)
	}
	return other, nil
}
