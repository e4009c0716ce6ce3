package http

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/keyhold/keyhold/auth"
)

// ErrAuthUnavailable is returned by an Authenticator that cannot decide
// yet (a replica still loading its principal directory); the request is
// answered 503 with Retry-After, never let through.
var ErrAuthUnavailable = errors.New("authentication unavailable")

// ErrUnauthenticated is returned by an Authenticator for a missing,
// malformed, unknown, expired or revoked token.
var ErrUnauthenticated = errors.New("unauthenticated")

// ErrNoTenantAccess is returned (wrapped with ErrUnauthenticated) by an
// Authenticator for a valid token whose principal may not act in the
// tenant the request names.
var ErrNoTenantAccess = errors.New("no access to the requested tenant")

// Authenticator turns a bearer token into a principal. tenant is the
// tenant the caller asked to act in (Keyhold-Tenant header), or "" for the
// principal's own. Implementations must be safe for concurrent use.
type Authenticator interface {
	Authenticate(ctx context.Context, token, tenant string) (auth.Principal, error)
}

// Waiter waits until the named projections reached a sequence.
type Waiter interface {
	Wait(ctx context.Context, seq uint64, names ...string) error
}

// ErrorWriter writes an error in a dialect's own shape.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, status int, field, detail string)

// Headers set on responses to writes.
const (
	// SequenceHeader is the log sequence a write produced.
	SequenceHeader = "Keyhold-Sequence"
	// ReadBehindHeader is "true" when the read side had not caught up with
	// the write before the response was sent (reads may not show it yet).
	ReadBehindHeader = "Keyhold-Read-Behind"
	// TenantHeader lets a user with access to several tenants pick one.
	TenantHeader = "Keyhold-Tenant"
)

// Kit is what dialect packages share: authentication and read-your-writes.
// Safe for concurrent use.
type Kit struct {
	auth        Authenticator
	waiter      Waiter
	await       []string
	waitTimeout time.Duration
	idem        *Idempotency
	proxies     Proxies
}

// TrustProxies sets the reverse proxies whose X-Forwarded-For names the
// client address failed sign-ins are throttled by. Call it before serving.
func (k *Kit) TrustProxies(p Proxies) { k.proxies = p }

// NewKit returns a kit. await names the projections a write must reach
// before its response is sent, for at most waitTimeout. idem may be nil.
func NewKit(a Authenticator, w Waiter, await []string, waitTimeout time.Duration, idem *Idempotency) (*Kit, error) {
	if a == nil || w == nil {
		return nil, errors.New("http: nil authenticator or waiter")
	}
	if waitTimeout <= 0 || waitTimeout > time.Minute {
		return nil, errors.New("http: wait timeout must be in (0, 1m]")
	}
	return &Kit{auth: a, waiter: w, await: await, waitTimeout: waitTimeout, idem: idem}, nil
}

// Authenticated rejects requests without a valid bearer token (401 in the
// dialect's shape) and stores the principal in the request context. A
// request that repeats Authorization or Keyhold-Tenant is refused (400):
// readers of a repeated header disagree on which one counts.
func (k *Kit) Authenticated(onErr ErrorWriter) mux.MiddlewareFunc {
	return k.authenticated(onErr, nil)
}

// AuthenticatedIn is Authenticated for dialects that name the tenant in
// the request (a path segment): tenant returns it. A caller without access
// to that tenant gets 403; a Keyhold-Tenant header naming another tenant
// gets 400.
func (k *Kit) AuthenticatedIn(onErr ErrorWriter, tenant func(*http.Request) string) mux.MiddlewareFunc {
	return k.authenticated(onErr, tenant)
}

func (k *Kit) authenticated(onErr ErrorWriter, tenantOf func(*http.Request) string) mux.MiddlewareFunc {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, name := range []string{"Authorization", TenantHeader} {
				if len(r.Header.Values(name)) > 1 {
					onErr(w, r, http.StatusBadRequest, name, "send the "+name+" header once")
					return
				}
			}
			tenant := r.Header.Get(TenantHeader)
			if tenantOf != nil {
				named := tenantOf(r)
				if tenant != "" && tenant != named {
					onErr(w, r, http.StatusBadRequest, TenantHeader, "the "+TenantHeader+" header names another tenant than the path; omit it")
					return
				}
				tenant = named
			}
			h := r.Header.Get("Authorization")
			scheme, token, ok := strings.Cut(h, " ")
			var p auth.Principal
			var err error
			pa, basic := k.auth.(PasswordAuthenticator)
			// challenge is what a 401 asks for: the scheme the caller tried,
			// or every scheme this kit accepts (RFC 9110 11.6.1).
			challenge := func(bearerParams string) {
				switch {
				case basic && strings.EqualFold(scheme, "Basic"):
					w.Header().Set("WWW-Authenticate", basicChallenge)
				case basic && !strings.EqualFold(scheme, "Bearer"):
					w.Header().Set("WWW-Authenticate", bearerChallenge)
					w.Header().Add("WWW-Authenticate", basicChallenge)
				default:
					w.Header().Set("WWW-Authenticate", bearerChallenge+bearerParams)
				}
			}
			switch {
			case ok && basic && strings.EqualFold(scheme, "Basic"):
				login, password, ok := r.BasicAuth()
				if !ok || login == "" {
					challenge("")
					onErr(w, r, http.StatusUnauthorized, "", "send Authorization: Basic with a username or email and a password")
					return
				}
				p, err = pa.AuthenticatePassword(r.Context(), login, password, tenant, k.proxies.ClientAddr(r))
				if te := (*ThrottledError)(nil); errors.As(err, &te) {
					w.Header().Set("Retry-After", strconv.Itoa(int(te.RetryAfter.Round(time.Second)/time.Second)+1))
					onErr(w, r, http.StatusTooManyRequests, "", "too many sign-in attempts; retry later")
					return
				}
			case !ok || !strings.EqualFold(scheme, "Bearer") || token == "":
				challenge("")
				onErr(w, r, http.StatusUnauthorized, "", "send Authorization: Bearer <token> with a personal API token or an OAuth2 access token, or Basic with a username and password")
				return
			default:
				p, err = k.auth.Authenticate(r.Context(), strings.TrimSpace(token), tenant)
			}
			if errors.Is(err, ErrAuthUnavailable) {
				w.Header().Set("Retry-After", "1")
				onErr(w, r, http.StatusServiceUnavailable, "", "the server is starting; retry in a moment")
				return
			}
			if errors.Is(err, ErrNoTenantAccess) && tenantOf != nil {
				onErr(w, r, http.StatusForbidden, "tenant", "the caller has no access to tenant "+strconv.Quote(tenant))
				return
			}
			if errors.Is(err, ErrNoTenantAccess) {
				// The credentials are valid: only the tenant asked for is not the caller's.
				challenge("")
				onErr(w, r, http.StatusUnauthorized, TenantHeader, "the caller has no access to the tenant named in "+TenantHeader+" (service accounts act only in their own tenant); omit the header to act in the caller's own tenant")
				return
			}
			if err != nil {
				challenge(`, error="invalid_token"`)
				onErr(w, r, http.StatusUnauthorized, "", "the credentials are invalid, expired or revoked")
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

// The challenges of a 401.
const (
	bearerChallenge = `Bearer realm="keyhold"`
	basicChallenge  = `Basic realm="keyhold", charset="UTF-8"`
)

// RedactReplays blanks the recorded responses that hold any of values
// (Idempotency.Redact); without an idempotency store it does nothing.
func (k *Kit) RedactReplays(ctx context.Context, values ...string) error {
	if k.idem == nil {
		return nil
	}
	_, err := k.idem.Redact(ctx, values...)
	return err
}

// Principal authenticates a bearer token as Authenticated does, for
// handlers that are asked about a token other than the caller's own.
func (k *Kit) Principal(ctx context.Context, token, tenant string) (auth.Principal, error) {
	return k.auth.Authenticate(ctx, token, tenant)
}

// Idempotent replays responses to repeated writes with the same
// Idempotency-Key (see Idempotency). Without an idempotency store it
// passes requests through.
func (k *Kit) Idempotent(onErr ErrorWriter) mux.MiddlewareFunc {
	if k.idem == nil {
		return func(next http.Handler) http.Handler { return next }
	}
	return k.idem.middleware(onErr)
}

// AwaitRead waits until the read side has applied seq, so a client that
// writes then reads sees its write, and sets the sequence headers. On
// timeout the write still succeeded: ReadBehindHeader says reads may lag.
func (k *Kit) AwaitRead(ctx context.Context, w http.ResponseWriter, seq uint64) {
	if seq == 0 {
		return
	}
	w.Header().Set(SequenceHeader, strconv.FormatUint(seq, 10))
	ctx, cancel := context.WithTimeout(ctx, k.waitTimeout)
	defer cancel()
	if err := k.waiter.Wait(ctx, seq, k.await...); err != nil {
		w.Header().Set(ReadBehindHeader, "true")
	}
}
