package commands

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/query"
)

// MaxGroupMembers bounds one group's members, so a group's history stays
// quick to load.
const MaxGroupMembers = 10_000

// Group is a group's state: a named set of principals of a tenant.
type Group struct {
	id          string
	exists      bool
	name        string
	description string
	members     map[string]string // member id -> membership
}

func newGroup(id string) state { return &Group{id: id} }

// ID returns the group's id.
func (g *Group) ID() string { return g.id }

// Name returns the group's name, unique in its tenant.
func (g *Group) Name() string { return g.name }

// Description returns the group's description.
func (g *Group) Description() string { return g.description }

// Members returns member ids with their memberships.
func (g *Group) Members() map[string]string { return maps.Clone(g.members) }

// View returns the group in the shape queries return it, so that a
// dialect maps one type. Number is the read tables' to know: 0.
func (g *Group) View() query.Group {
	return query.Group{ID: g.id, Name: g.name, Description: g.description}
}

func (g *Group) clone() state {
	c := *g
	c.members = maps.Clone(g.members)
	return &c
}

func (g *Group) apply(_ events.Envelope, e events.Event) {
	switch e := e.(type) {
	case events.GroupCreated:
		g.exists, g.name, g.description = true, e.Name, e.Description
	case events.GroupUpdated:
		if e.Name != nil {
			g.name = *e.Name
		}
		if e.Description != nil {
			g.description = *e.Description
		}
	case events.GroupDeleted:
		g.exists, g.members = false, nil
	case events.GroupMemberSet:
		if g.members == nil {
			g.members = map[string]string{}
		}
		g.members[e.MemberID] = e.Membership
	case events.GroupMemberRemoved:
		delete(g.members, e.MemberID)
	}
}

func (b base) group(ctx context.Context, tenant, id string) (*Group, key, uint64, error) {
	k := key{tenant, events.AggregateGroup, id}
	if !events.ValidToken(id) {
		return &Group{id: id}, k, 0, nil
	}
	st, seq, err := b.repo.load(ctx, k, 0, func() state { return newGroup(id) })
	if err != nil {
		return nil, k, 0, err
	}
	return st.(*Group), k, seq, nil
}

// GroupInput is a group's editable content.
type GroupInput struct {
	Name        string
	Description string
}

func (in GroupInput) validate() error {
	if err := validText("name", in.Name, nameText); err != nil {
		return err
	}
	return validText("description", in.Description, descriptionText)
}

// GroupResult is a group after a command and the sequence to wait for.
type GroupResult struct {
	Group    *Group
	Sequence uint64
}

// CreateGroup adds a group to the caller's tenant.
type CreateGroup struct {
	Meta
	GroupInput
	// Members join the new group (as members) in the same atomic change,
	// each under SetGroupMember's rules; errors about one name
	// members[i].
	Members []Member
}

// CreateGroupHandler handles CreateGroup.
type CreateGroupHandler struct{ base }

// Handle claims the group's name in the tenant and records the group
// with cmd.Members, in one atomic change: a refused member creates
// nothing.
func (h CreateGroupHandler) Handle(ctx context.Context, cmd CreateGroup) (GroupResult, error) {
	tenant := cmd.Caller.Tenant
	if err := h.authorize(cmd.Caller, authz.GroupsCreate, authz.TenantScope(tenant)); err != nil {
		return GroupResult{}, err
	}
	if err := cmd.validate(); err != nil {
		return GroupResult{}, err
	}
	for i, m := range cmd.Members {
		if err := h.principalIn(ctx, tenant, m.Kind, m.ID, "member"); err != nil {
			return GroupResult{}, itemFieldError(err, "members", i, "member_id", "member_kind")
		}
	}
	id := events.NewID()
	var out *Group
	join := SetGroupMemberHandler(h)
	seq, err := h.repo.execute(ctx, cmd.Meta, key{}, func(c *change) error {
		if err := h.claim(ctx, c, tenant, "group_name", cmd.Name, id); err != nil {
			return err
		}
		// Fresh on every attempt: decide may run again.
		out = &Group{id: id}
		k := key{tenant, events.AggregateGroup, id}
		c.record(k, out, 0, events.GroupCreated{Name: cmd.Name, Description: cmd.Description})
		for i, m := range cmd.Members {
			member := SetGroupMember{Meta: cmd.Meta, GroupID: id, MemberKind: m.Kind, MemberID: m.ID, Membership: events.MembershipMember}
			if err := join.decideOn(c, member, out, k, 0); err != nil {
				return itemFieldError(err, "members", i, "member_id", "member_kind")
			}
		}
		return nil
	})
	if err != nil {
		return GroupResult{}, err
	}
	return GroupResult{Group: out, Sequence: seq}, nil
}

// UpdateGroup replaces a group's name and description.
type UpdateGroup struct {
	Meta
	ID string
	GroupInput
}

// UpdateGroupHandler handles UpdateGroup.
type UpdateGroupHandler struct{ base }

// Handle records the differences; a renamed group's old name is released.
func (h UpdateGroupHandler) Handle(ctx context.Context, cmd UpdateGroup) (GroupResult, error) {
	tenant := cmd.Caller.Tenant
	if err := h.authorize(cmd.Caller, authz.GroupsUpdate, authz.TenantScope(tenant)); err != nil {
		return GroupResult{}, err
	}
	if err := cmd.validate(); err != nil {
		return GroupResult{}, err
	}
	var out *Group
	var unchanged uint64
	seq, err := h.repo.execute(ctx, cmd.Meta, key{tenant, events.AggregateGroup, cmd.ID}, func(c *change) error {
		g, k, seq, err := h.group(ctx, tenant, cmd.ID)
		if err != nil {
			return err
		}
		if !g.exists {
			return notFound("group", cmd.ID)
		}
		var e events.GroupUpdated
		if cmd.Name != g.name {
			if err := h.claim(ctx, c, tenant, "group_name", cmd.Name, g.id); err != nil {
				return err
			}
			if err := h.release(ctx, c, tenant, "group_name", g.name, g.id); err != nil {
				return err
			}
			e.Name = &cmd.Name
		}
		if cmd.Description != g.description {
			e.Description = &cmd.Description
		}
		out, unchanged = g, seq
		if e == (events.GroupUpdated{}) {
			return nil
		}
		c.record(k, g, seq, e)
		return nil
	})
	if err != nil {
		return GroupResult{}, err
	}
	if seq == 0 {
		seq = unchanged
	}
	return GroupResult{Group: out, Sequence: seq}, nil
}

// DeleteGroup removes a group with its memberships and bindings.
type DeleteGroup struct {
	Meta
	ID string
}

// DeleteGroupHandler handles DeleteGroup.
type DeleteGroupHandler struct{ base }

// Handle records the deletion and releases the name.
func (h DeleteGroupHandler) Handle(ctx context.Context, cmd DeleteGroup) (uint64, error) {
	tenant := cmd.Caller.Tenant
	if err := h.authorize(cmd.Caller, authz.GroupsDelete, authz.TenantScope(tenant)); err != nil {
		return 0, err
	}
	return h.repo.execute(ctx, cmd.Meta, key{tenant, events.AggregateGroup, cmd.ID}, func(c *change) error {
		g, k, seq, err := h.group(ctx, tenant, cmd.ID)
		if err != nil {
			return err
		}
		if !g.exists {
			return notFound("group", cmd.ID)
		}
		c.record(k, g, seq, events.GroupDeleted{})
		return h.release(ctx, c, tenant, "group_name", g.name, g.id)
	})
}

// ErrNotMember is the Reason of the ErrNotFound a membership change
// answers when the principal is no member of the group.
var ErrNotMember = errors.New("not a member of the group")

// Presence is what a membership change requires of the principal before it.
type Presence int

// Presences of SetGroupMember.
const (
	// AnyPresence adds a principal or changes its membership.
	AnyPresence Presence = iota
	// NewMember refuses a principal that is a member already
	// (ErrAlreadyExists).
	NewMember
	// ExistingMember refuses a principal that is no member (ErrNotFound
	// with ErrNotMember).
	ExistingMember
)

// SetGroupMember adds a user (with access to the tenant) or a service
// account of the tenant to a group, or changes its membership.
type SetGroupMember struct {
	Meta
	GroupID    string
	MemberKind string // events.SubjectUser or events.SubjectServiceAccount
	MemberID   string
	// Membership is events.MembershipMember (default) or MembershipOwner.
	Membership string
	// Require is what the principal must be beforehand.
	Require Presence
}

// notMember is the error for a principal that is no member of g.
func notMember(g *Group, id string) error {
	return &Error{Kind: ErrNotFound, Field: "member_id", Message: fmt.Sprintf("%s is not a member of group %q", id, g.name), Reason: ErrNotMember}
}

// SetGroupMemberHandler handles SetGroupMember.
type SetGroupMemberHandler struct{ base }

// Handle checks the caller may manage the group's members (the
// iam.groupMembers.create right for a new member, .update for a changed
// membership, or ownership of the group) and holds what
// the group's bindings grant (scope-down: a new member gains it), then
// records the membership. Setting what is already set records nothing.
func (h SetGroupMemberHandler) Handle(ctx context.Context, cmd SetGroupMember) (GroupResult, error) {
	tenant := cmd.Caller.Tenant
	if cmd.Membership == "" {
		cmd.Membership = events.MembershipMember
	}
	if cmd.Membership != events.MembershipMember && cmd.Membership != events.MembershipOwner {
		return GroupResult{}, invalid("membership", "must be %s or %s", events.MembershipMember, events.MembershipOwner)
	}
	if err := h.principalIn(ctx, tenant, cmd.MemberKind, cmd.MemberID, "member"); err != nil {
		return GroupResult{}, err
	}
	var out *Group
	var unchanged uint64
	seq, err := h.repo.execute(ctx, cmd.Meta, key{tenant, events.AggregateGroup, cmd.GroupID}, func(c *change) (err error) {
		out, unchanged, err = h.decide(ctx, c, cmd)
		return err
	})
	if err != nil {
		return GroupResult{}, err
	}
	if seq == 0 {
		seq = unchanged
	}
	return GroupResult{Group: out, Sequence: seq}, nil
}

// decide records in c what cmd (checked, with its membership set) changes
// of its group, and returns the group with the sequence it was read at.
func (h SetGroupMemberHandler) decide(ctx context.Context, c *change, cmd SetGroupMember) (*Group, uint64, error) {
	g, k, seq, err := h.group(ctx, cmd.Caller.Tenant, cmd.GroupID)
	if err != nil {
		return nil, 0, err
	}
	if err := h.decideOn(c, cmd, g, k, seq); err != nil {
		return nil, 0, err
	}
	return g, seq, nil
}

// decideOn is decide for group g (key k, at seq) as c has it: also one
// the change creates.
func (h SetGroupMemberHandler) decideOn(c *change, cmd SetGroupMember, g *Group, k key, seq uint64) error {
	_, in := g.members[cmd.MemberID]
	// A required presence names the right asked for, so that the
	// answer does not depend on whether the principal is a member.
	action := authz.GroupMembersCreate
	if cmd.Require == ExistingMember || cmd.Require == AnyPresence && in {
		action = authz.GroupMembersUpdate
	}
	if err := h.mayManageMembers(cmd.Caller, g, action); err != nil {
		return err
	}
	// Checked after the right, so that only those who may change the
	// members learn who is one.
	switch {
	case cmd.Require == NewMember && in:
		return ruleError(ErrAlreadyExists, "member_id", "%s is already a member of group %q", cmd.MemberID, g.name)
	case cmd.Require == ExistingMember && !in:
		return notMember(g, cmd.MemberID)
	}
	if g.members[cmd.MemberID] == cmd.Membership {
		return nil
	}
	if !in && len(g.members) >= MaxGroupMembers {
		return ruleError(ErrLimit, "", "group %q already has %d members", g.name, MaxGroupMembers)
	}
	c.record(k, g, seq, events.GroupMemberSet{MemberKind: cmd.MemberKind, MemberID: cmd.MemberID, Membership: cmd.Membership})
	return nil
}

// Member names a principal of a tenant: a user or a service account.
type Member struct {
	Kind string // events.SubjectUser or events.SubjectServiceAccount
	ID   string
}

// RemoveGroupMember takes a member out of a group.
type RemoveGroupMember struct {
	Meta
	GroupID  string
	MemberID string
}

// RemoveGroupMemberHandler handles RemoveGroupMember.
type RemoveGroupMemberHandler struct{ base }

// Handle records the removal; a principal that is no member is
// ErrNotFound with ErrNotMember.
func (h RemoveGroupMemberHandler) Handle(ctx context.Context, cmd RemoveGroupMember) (uint64, error) {
	return h.repo.execute(ctx, cmd.Meta, key{cmd.Caller.Tenant, events.AggregateGroup, cmd.GroupID}, func(c *change) error {
		return h.decide(ctx, c, cmd)
	})
}

// decide records the removal cmd asks for in c.
func (h RemoveGroupMemberHandler) decide(ctx context.Context, c *change, cmd RemoveGroupMember) error {
	g, k, seq, err := h.group(ctx, cmd.Caller.Tenant, cmd.GroupID)
	if err != nil {
		return err
	}
	if err := h.mayManageMembers(cmd.Caller, g, authz.GroupMembersDelete); err != nil {
		return err
	}
	if _, ok := g.members[cmd.MemberID]; !ok {
		return notMember(g, cmd.MemberID)
	}
	c.record(k, g, seq, events.GroupMemberRemoved{MemberID: cmd.MemberID})
	return nil
}

// SetMemberGroups moves a principal of the caller's tenant into groups
// and out of others at once.
type SetMemberGroups struct {
	Meta
	MemberKind string // events.SubjectUser or events.SubjectServiceAccount
	MemberID   string
	// Join are groups to join as a member (a member stays as it is).
	Join []string
	// Leave are groups to leave; the principal must be a member of each.
	Leave []string
}

// SetMemberGroupsHandler handles SetMemberGroups.
type SetMemberGroupsHandler struct{ base }

// Handle records every join and leave in one atomic change, each under
// the rules of SetGroupMember and RemoveGroupMember: when any is refused
// nothing is recorded. It returns the change's last sequence (0 when
// nothing changed).
func (h SetMemberGroupsHandler) Handle(ctx context.Context, cmd SetMemberGroups) (uint64, error) {
	if err := h.principalIn(ctx, cmd.Caller.Tenant, cmd.MemberKind, cmd.MemberID, "member"); err != nil {
		return 0, err
	}
	if err := cmd.check(); err != nil {
		return 0, err
	}
	// Several groups change: no one aggregate's lock covers them, and
	// the conditional appends catch a concurrent change of any.
	return h.repo.execute(ctx, cmd.Meta, key{}, func(c *change) error {
		return h.decide(ctx, c, cmd)
	})
}

// check refuses a group both to join and to leave.
func (cmd SetMemberGroups) check() error {
	for _, g := range cmd.Join {
		if slices.Contains(cmd.Leave, g) {
			return invalid("", "group %q is both to join and to leave", g)
		}
	}
	return nil
}

// decide records cmd's joins and leaves in c.
func (h SetMemberGroupsHandler) decide(ctx context.Context, c *change, cmd SetMemberGroups) error {
	join, leave := SetGroupMemberHandler(h), RemoveGroupMemberHandler(h)
	// Each group's decision reads it afresh: a group named twice would
	// be recorded twice.
	for _, g := range distinct(cmd.Join) {
		if _, _, err := join.decide(ctx, c, SetGroupMember{Meta: cmd.Meta, GroupID: g, MemberKind: cmd.MemberKind, MemberID: cmd.MemberID, Membership: events.MembershipMember}); err != nil {
			return err
		}
	}
	for _, g := range distinct(cmd.Leave) {
		if err := leave.decide(ctx, c, RemoveGroupMember{Meta: cmd.Meta, GroupID: g, MemberID: cmd.MemberID}); err != nil {
			return err
		}
	}
	return nil
}

// mayManageMembers allows holders of action (iam.groupMembers.create,
// .update or .delete) and the group's owners; both must hold what the
// group's bindings grant. A group
// the caller may not see is ErrNotFound.
func (b base) mayManageMembers(caller auth.Principal, g *Group, action string) error {
	tenant := caller.Tenant
	if !g.exists {
		return notFound("group", g.id)
	}
	if g.members[caller.ID] != events.MembershipOwner {
		if err := b.authorize(caller, action, authz.TenantScope(tenant)); err != nil {
			return err
		}
	}
	if b.authz == nil {
		return nil
	}
	for _, bound := range b.authz.Bound(g.id) {
		what := fmt.Sprintf("change the members of group %q, which holds role %q", g.name, bound.Role)
		if err := b.scopeDown(caller, bound.Rules, bound.Scope, "", what); err != nil {
			return err
		}
	}
	return nil
}

// principalIn checks that a user (with access to tenant) or a service
// account of tenant exists; errors name field+"_id" or field+"_kind".
func (b base) principalIn(ctx context.Context, tenant, kind, id, field string) error {
	switch kind {
	case events.SubjectUser:
		u, _, err := b.existingUser(ctx, id)
		if errors.Is(err, ErrNotFound) || err == nil && !slices.Contains(u.tenants, tenant) {
			return invalid(field+"_id", "no user %q with access to tenant %q", id, tenant)
		}
		return err
	case events.SubjectServiceAccount:
		sa, _, _, err := b.serviceAccount(ctx, tenant, id)
		if err != nil {
			return err
		}
		if !sa.exists {
			return invalid(field+"_id", "no service account %q in tenant %q", id, tenant)
		}
		return nil
	}
	return invalid(field+"_kind", "must be %s or %s", events.SubjectUser, events.SubjectServiceAccount)
}

// distinct returns ids without repeats, in first-seen order.
func distinct(ids []string) []string {
	var out []string
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// itemFieldError names item i of list (list[i]) in an error about one
// of fields, the item's own field names in the command it came from.
func itemFieldError(err error, list string, i int, fields ...string) error {
	var ce *Error
	if !errors.As(err, &ce) || !slices.Contains(fields, ce.Field) {
		return err
	}
	c := *ce
	c.Field = fmt.Sprintf("%s[%d]", list, i)
	return &c
}
