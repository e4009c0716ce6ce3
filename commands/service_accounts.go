package commands

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

// ClientIDPrefix starts every service account's client id. The client id is
// the prefix plus the service account id, so it is unique exactly when the
// aggregate id is (the creating append is conditional on an empty subject)
// and needs no reservation subject of its own.
const ClientIDPrefix = auth.PrefixClientID

// ServiceAccountIDFromClientID returns the service account id a client id
// names, and false when it is not a Keyhold client id.
func ServiceAccountIDFromClientID(clientID string) (string, bool) {
	if len(clientID) <= len(ClientIDPrefix) || clientID[:len(ClientIDPrefix)] != ClientIDPrefix {
		return "", false
	}
	id := clientID[len(ClientIDPrefix):]
	return id, events.ValidToken(id)
}

// uniqueServiceAccountName is the uniqueness kind of service accounts'
// chosen names, claimed per tenant. Only accounts with a chosen name pay
// for the reservation's subject (JetStream keeps state per subject).
const uniqueServiceAccountName = "service_account_name"

// resolveServiceAccount returns the id of the account ref names in tenant:
// ref itself when it is an id, else the current owner of the chosen name
// ref (ErrNotFound when no account holds it). The owner is read from the
// name's reservation (the write side's record of it), not a read table,
// and checked against the log's last event of the reservation: a name
// released and taken again through another replica resolves to its new
// owner at once. That costs one round trip per write by name. With
// former, a name no account holds resolves to its last owner, if any:
// for a keyed delete's retry, which must find the account its first
// attempt deleted.
func (b base) resolveServiceAccount(ctx context.Context, tenant, ref string, former bool) (string, error) {
	if !IsServiceAccountName(ref) {
		return ref, nil
	}
	if !ValidServiceAccountName(ref) {
		return "", notFound("service account", ref)
	}
	k := key{tenant, events.AggregateUnique, uniqueID(uniqueServiceAccountName, ref)}
	fresh := func() state { return newUnique("") }
	st, seq, err := b.repo.load(ctx, k, 0, fresh)
	if err != nil {
		return "", err
	}
	stale, err := b.repo.stale(ctx, k, seq)
	if err != nil {
		return "", err
	}
	if stale {
		b.repo.forget(k)
		if st, _, err = b.repo.load(ctx, k, 0, fresh); err != nil {
			return "", err
		}
	}
	u := st.(*unique)
	switch {
	case u.owner != "":
		return u.owner, nil
	case former && u.last != "":
		return u.last, nil
	}
	return "", notFound("service account", ref)
}

// ServiceAccountResult is a service account's state after a command and the
// stream sequence to wait for before reading it back.
type ServiceAccountResult struct {
	ServiceAccount *ServiceAccount
	Sequence       uint64
	// Replayed is set when an earlier attempt of the same keyed request
	// (Meta.IDSeed) had created the account: nothing was appended, and the
	// account is as it is now.
	Replayed bool
}

// CreateServiceAccount creates a service account, without credentials, in
// the caller's tenant.
type CreateServiceAccount struct {
	Meta
	// Name is the client-chosen name (k0rdent's id), unique in the tenant
	// (ValidServiceAccountName); empty leaves the account known by its id.
	Name        string
	DisplayName string
	Description string
	Scope       events.Scope
	Roles       []string
	// Status is active (default) or disabled.
	Status string
	// Groups of the tenant the account joins (as a member) in the same
	// atomic change, each under SetGroupMember's rules.
	Groups []string
}

// CreateServiceAccountHandler handles CreateServiceAccount.
type CreateServiceAccountHandler struct{ base }

// Authorize decides from cmd's Meta alone whether the caller may create
// service accounts at all (ErrForbidden if not). Handle calls it too; a
// dialect calls it before reading the request body, so a caller without
// the right learns nothing about its input.
func (h CreateServiceAccountHandler) Authorize(cmd CreateServiceAccount) error {
	return h.authorize(cmd.Caller, authz.ServiceAccountsCreate, authz.TenantScope(cmd.Caller.Tenant))
}

// Handle validates the request, applies the tenant's scope policy and
// scope-down, and records the service account, claiming its chosen name
// in the same atomic batch (ErrAlreadyExists when another account of the
// tenant holds it). Non-administrators get ErrForbidden.
func (h CreateServiceAccountHandler) Handle(ctx context.Context, cmd CreateServiceAccount) (ServiceAccountResult, error) {
	tenantID := cmd.Caller.Tenant
	if err := h.Authorize(cmd); err != nil {
		return ServiceAccountResult{}, err
	}
	if cmd.Name != "" && !ValidServiceAccountName(cmd.Name) {
		return ServiceAccountResult{}, invalid("name", "must be 1 to %d lowercase letters, digits and '-', starting with a letter and not ending with '-', and not start with %q (client ids do)", MaxServiceAccountNameLength, ClientIDPrefix)
	}
	if err := validText("display_name", cmd.DisplayName, saNameText); err != nil {
		return ServiceAccountResult{}, err
	}
	if err := validText("description", cmd.Description, descriptionText); err != nil {
		return ServiceAccountResult{}, err
	}
	if cmd.Status == "" {
		cmd.Status = StatusActive
	}
	if err := validStatus(cmd.Status); err != nil {
		return ServiceAccountResult{}, err
	}
	roles, err := validRoles(cmd.Roles)
	if err != nil {
		return ServiceAccountResult{}, err
	}
	t, _, err := h.tenant(ctx, tenantID)
	if err != nil {
		return ServiceAccountResult{}, err
	}
	if !t.exists {
		return ServiceAccountResult{}, ruleError(ErrNotFound, "", "tenant %q not found", tenantID)
	}
	scope, err := validScope(t, cmd.Scope)
	if err != nil {
		return ServiceAccountResult{}, err
	}
	if err := h.assignable(ctx, cmd.Caller, tenantID, scope, roles); err != nil {
		return ServiceAccountResult{}, err
	}
	if cmd.IDSeed != "" {
		return h.createSeeded(ctx, cmd, tenantID, scope, roles)
	}
	id := events.NewID()
	var sa *ServiceAccount
	// A fresh id: nothing else can write to it, so no lock on it. A chosen
	// name locks its reservation instead, so that a refusal (the name is
	// taken) is checked against the log, not only this process's cache.
	seq, err := h.repo.execute(ctx, cmd.Meta, nameLock(tenantID, cmd.Name), func(c *change) error {
		sa = newServiceAccount(tenantID, id)
		if err := h.claimName(ctx, c, tenantID, cmd.Name, id); err != nil {
			return err
		}
		c.record(key{tenantID, events.AggregateServiceAccount, id}, sa, 0, created(cmd, id, scope, roles))
		return h.joinGroups(ctx, c, cmd, id)
	})
	if err != nil {
		return ServiceAccountResult{}, err
	}
	return ServiceAccountResult{ServiceAccount: sa, Sequence: seq}, nil
}

// joinGroups records in c that the account id, created in c, joins
// cmd.Groups.
func (h CreateServiceAccountHandler) joinGroups(ctx context.Context, c *change, cmd CreateServiceAccount, id string) error {
	return SetMemberGroupsHandler(h).decide(ctx, c, SetMemberGroups{Meta: cmd.Meta, MemberKind: events.SubjectServiceAccount, MemberID: id, Join: cmd.Groups})
}

// nameLock is the lock key of a create that claims name: its reservation,
// or none without a name.
func nameLock(tenant, name string) key {
	if name == "" {
		return key{}
	}
	return key{tenant, events.AggregateUnique, uniqueID(uniqueServiceAccountName, name)}
}

// claimName claims a chosen name for the account id in change c, in the
// same atomic batch as the account's creation; no name, no claim.
func (b base) claimName(ctx context.Context, c *change, tenant, name, id string) error {
	if name == "" {
		return nil
	}
	return b.claim(ctx, c, tenant, uniqueServiceAccountName, name, id)
}

func created(cmd CreateServiceAccount, id string, scope events.Scope, roles []string) events.ServiceAccountCreated {
	return events.ServiceAccountCreated{
		Name:        cmd.Name,
		ClientID:    ClientIDPrefix + id,
		DisplayName: cmd.DisplayName,
		Description: cmd.Description,
		Scope:       scope,
		Roles:       roles,
		Status:      cmd.Status,
	}
}

// createSeeded creates the account under the keyed request's seed id, or
// finds that an earlier attempt of the request did: only that request
// could have used the id.
func (h CreateServiceAccountHandler) createSeeded(ctx context.Context, cmd CreateServiceAccount, tenantID string, scope events.Scope, roles []string) (ServiceAccountResult, error) {
	id := cmd.IDSeed
	k := key{tenantID, events.AggregateServiceAccount, id}
	var out ServiceAccountResult
	seq, err := h.repo.execute(ctx, cmd.Meta, k, func(c *change) error {
		sa, k, seq, err := h.serviceAccount(ctx, tenantID, id)
		if err != nil {
			return err
		}
		switch {
		case sa.exists:
			out = ServiceAccountResult{ServiceAccount: sa, Sequence: seq, Replayed: true}
			return nil
		case sa.deleted:
			return ruleError(ErrAlreadyExists, "", "this request created service account %s, which has been deleted since", id)
		}
		if err := h.claimName(ctx, c, tenantID, cmd.Name, id); err != nil {
			return err
		}
		c.record(k, sa, seq, created(cmd, id, scope, roles))
		out = ServiceAccountResult{ServiceAccount: sa}
		return h.joinGroups(ctx, c, cmd, id)
	})
	if err != nil {
		return ServiceAccountResult{}, err
	}
	if !out.Replayed {
		out.Sequence = seq
	}
	return out, nil
}

// UpdateServiceAccount changes mutable fields; nil fields stay as they are.
type UpdateServiceAccount struct {
	Meta
	// ID is the account's id or its chosen name.
	ID          string
	DisplayName *string
	Description *string
	Roles       *[]string
	Status      *string
	// JoinGroups and LeaveGroups change the account's group memberships
	// in the same atomic change, under SetMemberGroups' rules.
	JoinGroups  []string
	LeaveGroups []string
}

// UpdateServiceAccountHandler handles UpdateServiceAccount.
type UpdateServiceAccountHandler struct{ base }

// Authorize decides from cmd's Meta and ID alone whether the caller may
// update service accounts at all; non-administrators get ErrNotFound.
// Handle calls it too; a dialect calls it before reading the request body.
func (h UpdateServiceAccountHandler) Authorize(cmd UpdateServiceAccount) error {
	return h.hidden(cmd.Caller, authz.ServiceAccountsUpdate, authz.TenantScope(cmd.Caller.Tenant), "service account", cmd.ID)
}

// Handle applies the changes that differ from the current state; when
// nothing differs it records nothing and returns the current state.
// Newly added roles follow scope-down. Non-administrators get ErrNotFound.
func (h UpdateServiceAccountHandler) Handle(ctx context.Context, cmd UpdateServiceAccount) (ServiceAccountResult, error) {
	tenantID := cmd.Caller.Tenant
	if err := h.Authorize(cmd); err != nil {
		return ServiceAccountResult{}, err
	}
	if cmd.DisplayName == nil && cmd.Description == nil && cmd.Roles == nil && cmd.Status == nil && len(cmd.JoinGroups) == 0 && len(cmd.LeaveGroups) == 0 {
		return ServiceAccountResult{}, invalid("", "nothing to update: give at least one of displayName, description, roles, status")
	}
	memberships := SetMemberGroups{Meta: cmd.Meta, MemberKind: events.SubjectServiceAccount, Join: cmd.JoinGroups, Leave: cmd.LeaveGroups}
	if err := memberships.check(); err != nil {
		return ServiceAccountResult{}, err
	}
	if cmd.DisplayName != nil {
		if err := validText("display_name", *cmd.DisplayName, saNameText); err != nil {
			return ServiceAccountResult{}, err
		}
	}
	if cmd.Description != nil {
		if err := validText("description", *cmd.Description, descriptionText); err != nil {
			return ServiceAccountResult{}, err
		}
	}
	if cmd.Status != nil {
		if err := validStatus(*cmd.Status); err != nil {
			return ServiceAccountResult{}, err
		}
	}
	var roles []string
	if cmd.Roles != nil {
		var err error
		if roles, err = validRoles(*cmd.Roles); err != nil {
			return ServiceAccountResult{}, err
		}
	}
	id, err := h.resolveServiceAccount(ctx, tenantID, cmd.ID, false)
	if err != nil {
		return ServiceAccountResult{}, err
	}
	cmd.ID = id
	var out *ServiceAccount
	var unchangedSeq uint64
	seq, err := h.repo.execute(ctx, cmd.Meta, key{tenantID, events.AggregateServiceAccount, cmd.ID}, func(c *change) error {
		sa, k, seq, err := h.serviceAccount(ctx, tenantID, cmd.ID)
		if err != nil {
			return err
		}
		if !sa.exists {
			return notFound("service account", cmd.ID)
		}
		var e events.ServiceAccountUpdated
		if cmd.DisplayName != nil && *cmd.DisplayName != sa.displayName {
			e.DisplayName = cmd.DisplayName
		}
		if cmd.Description != nil && *cmd.Description != sa.description {
			e.Description = cmd.Description
		}
		var lost []string
		if cmd.Status != nil && *cmd.Status != sa.status {
			e.Status = cmd.Status
			if *cmd.Status != StatusActive {
				lost = append(lost, "account disabled")
			}
		}
		if cmd.Roles != nil && !slices.Equal(roles, sa.roles) {
			var added []string
			for _, r := range roles {
				if !slices.Contains(sa.roles, r) {
					added = append(added, r)
				}
			}
			if err := h.assignable(ctx, cmd.Caller, tenantID, sa.scope, added); err != nil {
				return err
			}
			for _, r := range sa.roles {
				if !slices.Contains(roles, r) {
					lost = append(lost, "role "+r+" removed")
				}
			}
			e.Roles = &roles
		}
		out, unchangedSeq = sa, seq
		if e != (events.ServiceAccountUpdated{}) {
			c.record(k, sa, seq, e)
			if len(lost) > 0 {
				c.record(k, sa, seq, events.AccessTokensInvalidated{Reason: strings.Join(lost, ", ")})
			}
		}
		memberships.MemberID = cmd.ID
		return SetMemberGroupsHandler(h).decide(ctx, c, memberships)
	})
	if err != nil {
		return ServiceAccountResult{}, err
	}
	if seq == 0 {
		seq = unchangedSeq
	}
	return ServiceAccountResult{ServiceAccount: out, Sequence: seq}, nil
}

// DeleteServiceAccount hard-deletes a service account and its credentials.
type DeleteServiceAccount struct {
	Meta
	// ID is the account's id or its chosen name.
	ID string
}

// DeleteServiceAccountHandler handles DeleteServiceAccount.
type DeleteServiceAccountHandler struct{ base }

// Handle records the deletion and releases the account's chosen name in
// the same atomic batch; credentials stop working once the event is
// applied. Non-administrators and unknown ids get ErrNotFound. A keyed
// request (Meta.IDSeed) that already deleted the account succeeds again,
// appending nothing: its first attempt may have died before answering.
// By name too: the name's last owner is the account it deleted.
func (h DeleteServiceAccountHandler) Handle(ctx context.Context, cmd DeleteServiceAccount) (uint64, error) {
	tenantID := cmd.Caller.Tenant
	if err := h.hidden(cmd.Caller, authz.ServiceAccountsDelete, authz.TenantScope(tenantID), "service account", cmd.ID); err != nil {
		return 0, err
	}
	id, err := h.resolveServiceAccount(ctx, tenantID, cmd.ID, cmd.IDSeed != "")
	if err != nil {
		return 0, err
	}
	cmd.ID = id
	var done uint64
	seq, err := h.repo.execute(ctx, cmd.Meta, key{tenantID, events.AggregateServiceAccount, cmd.ID}, func(c *change) error {
		sa, k, seq, err := h.serviceAccount(ctx, tenantID, cmd.ID)
		if err != nil {
			return err
		}
		if sa.deleted && cmd.IDSeed != "" && sa.deletedBy == cmd.IDSeed {
			done = seq
			return nil
		}
		if !sa.exists {
			return notFound("service account", cmd.ID)
		}
		name := sa.name
		c.record(k, sa, seq, events.ServiceAccountDeleted{RequestSeed: cmd.IDSeed})
		if name == "" {
			return nil
		}
		// The name is free again once the account is gone.
		return h.release(ctx, c, tenantID, uniqueServiceAccountName, name, cmd.ID)
	})
	if err == nil && seq == 0 {
		seq = done
	}
	return seq, err
}

// CreateCredential generates a client secret for a service account.
type CreateCredential struct {
	Meta
	// ServiceAccountID is the account's id or its chosen name.
	ServiceAccountID string
	// ExpiresAt defaults to now plus the tenant's default credential lifetime.
	ExpiresAt *time.Time
}

// CredentialResult is a new credential. Secret is returned only here and
// can never be read again.
type CredentialResult struct {
	ServiceAccount *ServiceAccount
	Credential     Credential
	// Secret is the client secret, shown once: empty when Replayed.
	Secret   string
	Sequence uint64
	// Replayed is set when an earlier attempt of the same keyed request
	// (Meta.IDSeed) had created the credential: nothing was appended, and
	// the secret is not known any more.
	Replayed bool
}

// CreateCredentialHandler handles CreateCredential.
type CreateCredentialHandler struct{ actAs }

// Authorize decides from cmd's Meta and ServiceAccountID alone whether the
// caller may create credentials at all (the first half of the rule for
// acting as an account, see actAs); non-administrators get ErrNotFound.
// Handle calls it too; a dialect calls it before reading the request body.
func (h CreateCredentialHandler) Authorize(cmd CreateCredential) error {
	return h.authorize(cmd.Caller, cmd.ServiceAccountID)
}

// Handle enforces the rule for acting as the account (actAs: the caller
// must hold every role of the account within its scope, since the
// credential carries them), the active-credential limit and the tenant's
// lifetime bounds, then records the credential's verifier (never the
// secret).
func (h CreateCredentialHandler) Handle(ctx context.Context, cmd CreateCredential) (CredentialResult, error) {
	tenantID := cmd.Caller.Tenant
	if err := h.Authorize(cmd); err != nil {
		return CredentialResult{}, err
	}
	t, _, err := h.tenant(ctx, tenantID)
	if err != nil {
		return CredentialResult{}, err
	}
	now := h.now().UTC()
	expires := now.Add(t.defaultLifetime)
	if cmd.ExpiresAt != nil {
		expires = cmd.ExpiresAt.UTC()
		if !expires.After(now.Add(time.Minute)) {
			return CredentialResult{}, invalid("expires_at", "must be at least one minute in the future")
		}
		if limit := now.Add(t.maxLifetime); expires.After(limit) {
			return CredentialResult{}, invalid("expires_at", "must not be later than %s: the tenant's maximum credential lifetime is %d days", limit.Format(time.RFC3339), int(t.maxLifetime.Hours()/24))
		}
	}
	expires = expires.Truncate(time.Second)
	if cmd.ServiceAccountID, err = h.resolveServiceAccount(ctx, tenantID, cmd.ServiceAccountID, false); err != nil {
		return CredentialResult{}, err
	}
	secret := auth.NewSecret(auth.PrefixClientSecret)
	credID := events.NewID()
	if cmd.IDSeed != "" {
		credID = cmd.IDSeed
	}
	var out *ServiceAccount
	replayed := false
	seq, err := h.repo.execute(ctx, cmd.Meta, key{tenantID, events.AggregateServiceAccount, cmd.ServiceAccountID}, func(c *change) error {
		// A credential is the account's rights in the caller's hands.
		sa, k, seq, err := h.account(ctx, cmd.Caller, cmd.ServiceAccountID)
		if err != nil {
			return err
		}
		if _, ok := sa.credential(credID); ok {
			out, replayed = sa, true // an earlier attempt of this request
			return nil
		}
		if slices.Contains(sa.deletedCredentials, credID) {
			return ruleError(ErrAlreadyExists, "", "this request created credential %s, which has been deleted since", credID)
		}
		if sa.activeCredentials(now) >= MaxActiveCredentials {
			return ruleError(ErrLimit, "", "service account already has %d active credentials; delete one first", MaxActiveCredentials)
		}
		c.record(k, sa, seq, events.CredentialCreated{CredentialID: credID, Verifier: auth.Verifier(secret), ExpiresAt: expires})
		out = sa
		return nil
	})
	if err != nil {
		return CredentialResult{}, err
	}
	cred, _ := out.credential(credID)
	if replayed {
		return CredentialResult{ServiceAccount: out, Credential: cred, Sequence: seq, Replayed: true}, nil
	}
	return CredentialResult{ServiceAccount: out, Credential: cred, Secret: secret, Sequence: seq}, nil
}

// DeleteCredential removes a credential at once.
type DeleteCredential struct {
	Meta
	// ServiceAccountID is the account's id or its chosen name.
	ServiceAccountID string
	CredentialID     string
}

// DeleteCredentialHandler handles DeleteCredential.
type DeleteCredentialHandler struct{ base }

// Handle records the deletion. Unknown ids and non-administrators get
// ErrNotFound. A keyed request that already deleted the credential
// succeeds again, appending nothing.
func (h DeleteCredentialHandler) Handle(ctx context.Context, cmd DeleteCredential) (uint64, error) {
	tenantID := cmd.Caller.Tenant
	if err := h.hidden(cmd.Caller, authz.CredentialsDelete, authz.TenantScope(tenantID), "credential", cmd.CredentialID); err != nil {
		return 0, err
	}
	saID, err := h.resolveServiceAccount(ctx, tenantID, cmd.ServiceAccountID, false)
	if err != nil {
		return 0, err
	}
	cmd.ServiceAccountID = saID
	var done uint64
	seq, err := h.repo.execute(ctx, cmd.Meta, key{tenantID, events.AggregateServiceAccount, cmd.ServiceAccountID}, func(c *change) error {
		sa, k, seq, err := h.serviceAccount(ctx, tenantID, cmd.ServiceAccountID)
		if err != nil {
			return err
		}
		if !sa.exists {
			return notFound("service account", cmd.ServiceAccountID)
		}
		if cmd.IDSeed != "" && sa.credentialsDeletedBy[cmd.IDSeed] == cmd.CredentialID {
			done = seq
			return nil
		}
		if _, ok := sa.credential(cmd.CredentialID); !ok {
			return notFound("credential", cmd.CredentialID)
		}
		c.record(k, sa, seq, events.CredentialDeleted{CredentialID: cmd.CredentialID, RequestSeed: cmd.IDSeed})
		return nil
	})
	if err == nil && seq == 0 {
		seq = done
	}
	return seq, err
}

// RevokeAccessToken revokes one access token issued to a service account.
type RevokeAccessToken struct {
	Meta
	Tenant           string
	ServiceAccountID string
	TokenID          string
	ExpiresAt        time.Time
}

// RevokeAccessTokenHandler handles RevokeAccessToken.
type RevokeAccessTokenHandler struct{ base }

// Handle records the revocation. Only the token's own client (or a tenant
// administrator) may revoke it; an unknown service account gets ErrNotFound.
func (h RevokeAccessTokenHandler) Handle(ctx context.Context, cmd RevokeAccessToken) (uint64, error) {
	if cmd.Caller.ID != cmd.ServiceAccountID {
		if err := h.hidden(cmd.Caller, authz.ServiceAccountsUpdate, authz.TenantScope(cmd.Tenant), "service account", cmd.ServiceAccountID); err != nil {
			return 0, err
		}
	}
	if !events.ValidToken(cmd.TokenID) {
		return 0, invalid("token", "malformed token id")
	}
	// Revocations go to the account's own revocation aggregate: the
	// account's state is only read, so a client revoking its tokens never
	// races an administrator's command on the account.
	return h.repo.execute(ctx, cmd.Meta, key{}, func(c *change) error {
		sa, _, _, err := h.serviceAccount(ctx, cmd.Tenant, cmd.ServiceAccountID)
		if err != nil {
			return err
		}
		if !sa.exists {
			return notFound("service account", cmd.ServiceAccountID)
		}
		c.note(key{cmd.Tenant, events.AggregateTokenRevocations, cmd.ServiceAccountID}, events.AccessTokenRevoked{TokenID: cmd.TokenID, ExpiresAt: cmd.ExpiresAt})
		return nil
	})
}

func notFound(what, id string) error {
	return ruleError(ErrNotFound, "", "%s %q not found", what, id)
}
