package authz

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// ErrNotEmpty is returned by Model.Restore for a model that already holds
// something: a restored state replaces nothing.
var ErrNotEmpty = errors.New("authz: model is not empty")

// State is what a model holds apart from its principals, for a snapshot
// of whatever feeds the model: roles, bindings and group memberships.
// Principals and tenant access are not in it: whoever put them puts them
// again (the directory does, from its own accounts and users).
type State struct {
	Roles []Role
	// Bindings are in the order the model applies them to each subject,
	// which decides the reason a decision gives when several allow.
	Bindings []Binding
	Members  []StateMember
	// Principals is how many principals the model held: Restore makes
	// room for as many, so putting them again does not grow the model's
	// maps step by step.
	Principals int
}

// StateMember is one group membership in a State.
type StateMember struct {
	Group, Principal string
	Membership       Membership
}

// State returns the model's roles, bindings and memberships, sorted (by
// role id; by subject, then in the subject's own order; by group and
// principal), so equal models give equal states. Safe to modify.
func (m *Model) State() State {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := State{Principals: len(m.principals)}
	for _, id := range slices.Sorted(maps.Keys(m.roles)) {
		r := m.roles[id]
		r.Rules = cloneRules(r.Rules)
		s.Roles = append(s.Roles, r)
	}
	for _, subject := range slices.Sorted(maps.Keys(m.bySubject)) {
		for _, id := range m.bySubject[subject] {
			s.Bindings = append(s.Bindings, m.bindings[id])
		}
	}
	for _, g := range slices.Sorted(maps.Keys(m.members)) {
		for _, p := range slices.Sorted(maps.Keys(m.members[g])) {
			s.Members = append(s.Members, StateMember{Group: g, Principal: p, Membership: m.members[g][p]})
		}
	}
	return s
}

// Restore puts s into an empty model (before any principal): the model
// then decides as the one s came from does, once the principals and
// tenant access are put again.
func (m *Model) Restore(s State) error {
	m.mu.RLock()
	empty := len(m.roles) == 0 && len(m.bindings) == 0 && len(m.members) == 0 && len(m.principals) == 0
	m.mu.RUnlock()
	if !empty {
		return ErrNotEmpty
	}
	m.mu.Lock()
	m.principals = make(map[string]Principal, s.Principals)
	m.mu.Unlock()
	for _, r := range s.Roles {
		if err := m.PutRole(r); err != nil {
			return fmt.Errorf("restore role %s: %w", r.ID, err)
		}
	}
	for _, b := range s.Bindings {
		if err := m.Bind(b); err != nil {
			return fmt.Errorf("restore binding %s: %w", b.ID, err)
		}
	}
	for _, ms := range s.Members {
		m.SetMember(ms.Group, ms.Principal, ms.Membership)
	}
	return nil
}

// Reset empties the model, as NewModel returns it.
func (m *Model) Reset() {
	n := NewModel()
	m.mu.Lock()
	m.roles, m.bindings, m.bySubject, m.byRole = n.roles, n.bindings, n.bySubject, n.byRole
	m.members, m.groupsOf, m.principals, m.ownHeld = n.members, n.groupsOf, n.principals, n.ownHeld
	m.access, m.defaults = n.access, n.defaults
	m.mu.Unlock()
	m.forgetAll()
}
