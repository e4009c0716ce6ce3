package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

// Audit page limits.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// AuditFilter selects events from the log. Empty fields match everything.
type AuditFilter struct {
	// Tenant limits the trail to one tenant ("_" for instance-level
	// aggregates); empty means every tenant, for superadmins only.
	Tenant    string
	Aggregate string // aggregate id
	Actor     string // actor id
	Type      string // event type, e.g. iam.service_account.created
	Since     *time.Time
	Until     *time.Time
	// Cursor continues after a previous page (opaque).
	Cursor string
	// Limit caps the page (0: DefaultAuditLimit; at most MaxAuditLimit).
	// A negative limit means no cap (the CLI).
	Limit int
}

// ParseAuditTime reads a since or until value: an RFC 3339 time, or a
// positive duration (24h) meaning that long before now. Empty gives nil.
func ParseAuditTime(s string, now time.Time) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return &t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		t := now.Add(-d)
		return &t, nil
	}
	return nil, fmt.Errorf("%w: want an RFC 3339 time such as 2026-01-31T12:00:00Z or a duration back from now such as 24h", ErrInvalid)
}

// Audit reads the trail straight from the event log, never from a read
// table, with batched direct gets: no JetStream consumer is created, so
// no reader, however it ends, can leave one behind.
type Audit struct {
	store    *events.Store
	gate     *Gate
	authz    auth.Authorizer
	personal events.PersonalReader
}

// AuditOption configures NewAudit.
type AuditOption func(*Audit)

// ShowPersonal makes the trail show users' personal data in the clear
// (data.personal, read with r, events.ErasedMarker for erased users) in
// place of the ciphertext data.personal_enc. Without it the ciphertext is
// shown as stored.
func ShowPersonal(r events.PersonalReader) AuditOption {
	return func(a *Audit) { a.personal = r }
}

// NewAudit returns an audit reader over store. A non-nil gate bounds how
// many reads run at once: beyond it Events fails with ErrBusy.
// Callers are decided by az (the server's directory model); a nil az lets
// only the operator (auth.System) read.
func NewAudit(store *events.Store, gate *Gate, az auth.Authorizer, opts ...AuditOption) *Audit {
	a := &Audit{store: store, gate: gate, authz: az}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Events returns matching events in log order (oldest first) and a cursor
// for the next page (empty when the log's end was reached). Uniqueness
// reservations are bookkeeping, not audit facts, and are left out. The
// caller must be allowed to audit the filter's tenant (tenant
// administrators and auditors); instance-level events (tenant "_") and
// all tenants at once need a superadmin. One aggregate's history is read
// from its own subjects; the other filters scan the tenant's events.
func (a *Audit) Events(ctx context.Context, caller auth.Principal, f AuditFilter) (out []events.Envelope, next string, err error) {
	if f.Tenant != "" && f.Tenant != events.InstanceTenant && !events.ValidToken(f.Tenant) {
		return nil, "", invalid("tenant", "tenant %q is not a tenant id", f.Tenant)
	}
	if err := CheckAuditType(f.Type); err != nil {
		return nil, "", invalid("type", "%s", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	}
	if f.Aggregate != "" && !events.ValidToken(f.Aggregate) {
		return nil, "", invalid("aggregate", "aggregate must be an id")
	}
	if f.Since != nil && f.Until != nil && f.Until.Before(*f.Since) {
		return nil, "", invalid("until", "until is before since")
	}
	scope := authz.TenantScope(f.Tenant)
	if f.Tenant == "" || f.Tenant == events.InstanceTenant {
		scope = authz.Instance
	}
	if !caller.Can(a.authz, authz.AuditEventsList, "", scope).Allowed {
		return nil, "", fmt.Errorf("%w: only tenant administrators and auditors can read the audit trail", ErrForbidden)
	}
	limit := f.Limit
	switch {
	case limit == 0:
		limit = DefaultAuditLimit
	case limit > MaxAuditLimit:
		return nil, "", invalid("limit", "limit must be between 1 and %d", MaxAuditLimit)
	}
	tenant := f.Tenant
	if tenant == "" {
		tenant = "*"
	}
	filter := events.Filter{Subjects: []string{a.store.Prefix() + "." + tenant + ".>"}, StartTime: f.Since}
	if f.Cursor != "" {
		seq, err := strconv.ParseUint(f.Cursor, 10, 64)
		if err != nil || seq == 0 {
			return nil, "", invalid("cursor", "cursor is not one this API returned")
		}
		filter.StartSeq = seq
	}
	if a.gate != nil {
		leave, err := a.gate.Enter(ctx, tenant)
		if err != nil {
			return nil, "", err
		}
		defer leave()
	}
	if f.Aggregate != "" {
		// An id names its aggregate's subject and its satellites' (the
		// token revocations of a service account): find them in the
		// stream's subject index, then read only those.
		subjects, err := a.store.Subjects(ctx, a.store.Prefix()+"."+tenant+".*."+f.Aggregate)
		if err != nil {
			return nil, "", fmt.Errorf("read audit trail: %w", err)
		}
		if len(subjects) == 0 {
			return []events.Envelope{}, "", nil
		}
		filter.Subjects = subjects
	}
	out = []events.Envelope{}
	err = a.store.Scan(ctx, filter, func(env events.Envelope) error {
		if f.Until != nil && env.Time.After(*f.Until) {
			return events.ErrStop
		}
		if env.Aggregate == events.AggregateUnique || (f.Actor != "" && env.Actor.ID != f.Actor) || (f.Type != "" && env.Type != f.Type) {
			return nil
		}
		if limit > 0 && len(out) == limit {
			next = strconv.FormatUint(env.Sequence, 10)
			return events.ErrStop
		}
		if err := a.reveal(ctx, &env); err != nil {
			return err
		}
		out = append(out, env)
		return nil
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return nil, "", fmt.Errorf("read audit trail: %w", err)
	}
	return out, next, err
}

// reveal replaces the sealed personal data of a user or invitation event
// by what the personal reader reads from it (see ShowPersonal). Data that does not
// decrypt is left as stored.
func (a *Audit) reveal(ctx context.Context, env *events.Envelope) error {
	switch {
	case a.personal == nil:
		return nil
	case env.Type == (events.UserCreated{}).EventType(), env.Type == (events.UserUpdated{}).EventType(),
		env.Type == (events.InvitationCreated{}).EventType():
	default:
		return nil
	}
	e, err := events.Decode(*env)
	if err != nil {
		return nil // shown as stored, as every undecodable event is
	}
	p, err := a.personal.Personal(ctx, env.Subject, e)
	if errors.Is(err, events.ErrPersonalData) {
		return nil
	}
	if err != nil {
		return err
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(env.Data, &data); err != nil {
		return nil
	}
	delete(data, "personal_enc")
	if data["personal"], err = json.Marshal(p); err != nil {
		return err
	}
	if env.Data, err = json.Marshal(data); err != nil {
		return err
	}
	return nil
}
