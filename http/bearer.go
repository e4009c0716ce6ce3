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

// Bearer authenticates API tokens (users' and service accounts') and
// OAuth2 access tokens against the in-memory directory; no database is
// touched per request.
// A deleted or disabled service account, or a deleted credential, stops
// its unexpired access tokens as soon as the directory applied the event.
// Safe for concurrent use.
type Bearer struct {
	dir       *query.Directory
	keys      *auth.Keys
	now       func() time.Time
	accounts  *auth.Throttle
	addresses *auth.Throttle
}

// NewBearer returns a Bearer over dir and keys. It takes HTTP Basic
// credentials of users too (see AuthenticatePassword).
func NewBearer(dir *query.Directory, keys *auth.Keys) *Bearer {
	accounts, err := auth.NewThrottle(accountThrottle)
	if err != nil {
		panic(err) // the policies are constants
	}
	addresses, err := auth.NewThrottle(addressThrottle)
	if err != nil {
		panic(err)
	}
	return &Bearer{dir: dir, keys: keys, now: time.Now, accounts: accounts, addresses: addresses}
}

// Authenticate implements Authenticator. A user may act in another tenant
// it has access to by naming it; a service account only in its own.
func (b *Bearer) Authenticate(_ context.Context, token, tenant string) (auth.Principal, error) {
	now := b.now()
	var p auth.Principal
	if strings.HasPrefix(token, auth.PrefixAPIToken) {
		var err error
		if p, err = b.dir.APITokenPrincipal(token, now); err != nil {
			return p, refused(err)
		}
		if p.Kind == auth.KindServiceAccount {
			return accountIn(p, tenant)
		}
		return b.userIn(p, tenant)
	}
	claims, err := b.keys.Verify(token, now)
	if err != nil {
		return p, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	if p, err = b.dir.AccessTokenPrincipal(claims, now); err != nil {
		return p, refused(err)
	}
	return accountIn(p, tenant)
}

// accountIn returns service account principal p for a request in tenant:
// a service account acts only in its own.
func accountIn(p auth.Principal, tenant string) (auth.Principal, error) {
	if tenant != "" && tenant != p.Tenant {
		return auth.Principal{}, fmt.Errorf("%w: %w: service accounts act only in their own tenant", ErrUnauthenticated, ErrNoTenantAccess)
	}
	return p, nil
}

// refused maps a directory's answer: one still loading cannot decide.
func refused(err error) error {
	if errors.Is(err, query.ErrDirectoryLoading) || errors.Is(err, ErrAuthUnavailable) {
		return fmt.Errorf("%w: %w", ErrAuthUnavailable, err)
	}
	return fmt.Errorf("%w: %v", ErrUnauthenticated, err)
}
