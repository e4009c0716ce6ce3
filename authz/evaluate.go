package authz

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// grant is one rule of one role, held at one scope, after bindings and
// groups are resolved.
type grant struct {
	rule  Rule
	scope Scope
	// role is the id of the role the rule came from, for requests limited
	// to some roles (a token whose scope names fewer roles than its holder's).
	role string
	// reason names the role, scope, rule and group, computed once so a
	// decision does not format it.
	reason string
}

// effective is a principal's grants indexed for decisions: a grant is
// found by the exact action, or by the first segment of its wildcard
// patterns, or (patterns starting with "*") always. Each list holds its
// deny grants first (see denyFirst).
type effective struct {
	exact map[string][]int
	head  map[string][]int
	any   []int
	all   []grant
}

func appendOnce(l []int, i int) []int {
	if len(l) == 0 || l[len(l)-1] != i {
		return append(l, i)
	}
	return l
}

// denyFirst puts each list's deny grants before its allows, each kind in
// the order added, so that Can checks every deny that may apply and then
// stops at the first allow that applies. Call it once all grants are in.
func (e *effective) denyFirst() {
	denyFirst := func(a, b int) int {
		da, db := e.all[a].rule.Effect == Deny, e.all[b].rule.Effect == Deny
		switch {
		case da == db:
			return 0
		case da:
			return -1
		}
		return 1
	}
	for _, l := range e.exact {
		slices.SortStableFunc(l, denyFirst)
	}
	for _, l := range e.head {
		slices.SortStableFunc(l, denyFirst)
	}
	slices.SortStableFunc(e.any, denyFirst)
}

func (e *effective) add(g grant) {
	i := len(e.all)
	e.all = append(e.all, g)
	for _, a := range g.rule.Actions {
		switch {
		case strings.IndexByte(a, '*') < 0:
			if e.exact == nil {
				e.exact = map[string][]int{}
			}
			e.exact[a] = appendOnce(e.exact[a], i)
		case strings.HasPrefix(a, "*"):
			e.any = appendOnce(e.any, i)
		default:
			h, _, _ := cut(a, actionSep)
			if e.head == nil {
				e.head = map[string][]int{}
			}
			e.head[h] = appendOnce(e.head[h], i)
		}
	}
}

// Model is the authorization model in memory. The directory folds the
// log into it; Can answers from it. All methods are safe for concurrent
// use. Effective grants are computed per principal on first use and
// dropped as soon as anything they depend on changes, so a decision never
// reflects a state older than the last change applied.
type Model struct {
	mu       sync.RWMutex
	roles    map[string]Role
	bindings map[string]Binding
	// bySubject lists a subject's binding ids. A list, not a set: most
	// subjects hold one or two bindings, and a map each costs about 200
	// bytes, for every service account.
	bySubject  map[string][]string
	byRole     map[string]map[string]struct{}   // role -> binding ids
	members    map[string]map[string]Membership // group -> principal -> membership
	groupsOf   map[string]map[string]struct{}   // principal -> groups
	principals map[string]Principal
	// ownHeld counts, per role, the principals holding it in Own, so a
	// change of the role drops the grants computed from it.
	ownHeld  map[string]int
	access   map[string]map[string]struct{} // user -> tenants
	defaults map[string]map[string]struct{} // tenant -> default role ids

	cacheMu sync.Mutex
	cache   map[string]*effective
}

// NewModel returns an empty model.
func NewModel() *Model {
	return &Model{
		roles:      map[string]Role{},
		bindings:   map[string]Binding{},
		bySubject:  map[string][]string{},
		byRole:     map[string]map[string]struct{}{},
		members:    map[string]map[string]Membership{},
		groupsOf:   map[string]map[string]struct{}{},
		principals: map[string]Principal{},
		ownHeld:    map[string]int{},
		access:     map[string]map[string]struct{}{},
		defaults:   map[string]map[string]struct{}{},
		cache:      map[string]*effective{},
	}
}

func add(m map[string]map[string]struct{}, k, v string) {
	s := m[k]
	if s == nil {
		s = map[string]struct{}{}
		m[k] = s
	}
	s[v] = struct{}{}
}

func remove(m map[string]map[string]struct{}, k, v string) {
	if s := m[k]; s != nil {
		delete(s, v)
		if len(s) == 0 {
			delete(m, k)
		}
	}
}

// forgetAll drops every cached grant. Callers hold mu.
func (m *Model) forgetAll() {
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	clear(m.cache)
}

// forget drops the cached grants of subject, or of every member when
// subject is a group. Callers hold mu.
func (m *Model) forget(subject string) {
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	delete(m.cache, subject)
	for p := range m.members[subject] {
		delete(m.cache, p)
	}
}

// PutRole adds or replaces a role. It fails if the role is invalid.
func (m *Model) PutRole(r Role) error {
	if err := r.Validate(); err != nil {
		return err
	}
	r.Rules = cloneRules(r.Rules)
	m.mu.Lock()
	defer m.mu.Unlock()
	old, had := m.roles[r.ID]
	m.roles[r.ID] = r
	for id := range m.byRole[r.ID] {
		m.forget(m.bindings[id].Subject)
	}
	if m.ownHeld[r.ID] > 0 {
		// Roles change rarely; finding the holders would need an index
		// as large as the bindings Own saves.
		m.forgetAll()
	}
	if had && old.Default {
		remove(m.defaults, old.Tenant, old.ID)
	}
	if r.Default {
		add(m.defaults, r.Tenant, r.ID)
	}
	if (had && old.Default) || r.Default {
		// Every member of the tenant holds a default role.
		m.forgetAll()
	}
	return nil
}

// DeleteRole removes a role and every binding of it.
func (m *Model) DeleteRole(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for bid := range m.byRole[id] {
		m.unbind(bid)
	}
	if m.ownHeld[id] > 0 {
		m.forgetAll()
	}
	if r, ok := m.roles[id]; ok && r.Default {
		remove(m.defaults, r.Tenant, id)
		m.forgetAll()
	}
	delete(m.roles, id)
}

// Role returns a role by id.
func (m *Model) Role(id string) (Role, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.roles[id]
	if ok {
		r.Rules = cloneRules(r.Rules)
	}
	return r, ok
}

// Roles returns the roles of tenant, sorted by name. Safe to modify.
func (m *Model) Roles(tenant string) []Role {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Role
	for _, r := range m.roles {
		if r.Tenant == tenant {
			r.Rules = cloneRules(r.Rules)
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Role) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Bindings returns the bindings at scopes within tenant (every binding
// for ""), sorted by id.
func (m *Model) Bindings(tenant string) []Binding {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Binding
	for _, b := range m.bindings {
		if tenant == "" || b.Scope.Tenant == tenant {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b Binding) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Bound is what one binding grants: a role's rules at a scope.
type Bound struct {
	Role  string
	Scope Scope
	Rules []Rule
}

// Bound returns what subject's own bindings grant (not through groups),
// for scope-down on memberships: joining a group gains these. Bindings of
// unknown roles grant nothing and are left out.
func (m *Model) Bound(subject string) []Bound {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return sortBound(m.bound(subject, nil))
}

// Held returns what subject's bindings and its groups' bindings grant:
// everything a principal holds through bindings, for scope-down on acting
// as it (a credential carries all of it).
func (m *Model) Held(subject string) []Bound {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := m.bound(subject, nil)
	for g := range m.groupsOf[subject] {
		out = m.bound(g, out)
	}
	return sortBound(out)
}

// bound appends what subject's own bindings grant to out. Callers hold mu.
func (m *Model) bound(subject string, out []Bound) []Bound {
	for _, bid := range m.bySubject[subject] {
		b := m.bindings[bid]
		if r, ok := m.roles[b.Role]; ok {
			out = append(out, Bound{Role: r.Name, Scope: b.Scope, Rules: cloneRules(r.Rules)})
		}
	}
	if own := m.principals[subject].Own; own != nil {
		for _, rk := range own.Roles {
			if r, ok := m.roles[rk]; ok {
				out = append(out, Bound{Role: r.Name, Scope: own.Scope, Rules: cloneRules(r.Rules)})
			}
		}
	}
	return out
}

func sortBound(out []Bound) []Bound {
	slices.SortFunc(out, func(a, b Bound) int {
		return strings.Compare(a.Role+"\x00"+a.Scope.String(), b.Role+"\x00"+b.Scope.String())
	})
	return out
}

// Bind adds or replaces a binding. Its role need not exist yet: a
// binding of an unknown role grants nothing until the role is put (a log
// may bind a role before the event that seeds it). It fails for a binding
// without id, role or subject.
func (m *Model) Bind(b Binding) error {
	if b.ID == "" || b.Role == "" || b.Subject == "" {
		return fmt.Errorf("%w: binding needs an id, a role and a subject", ErrInvalidBinding)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.bindings[b.ID]; ok {
		m.unbind(b.ID)
	}
	m.bindings[b.ID] = b
	m.bySubject[b.Subject] = append(m.bySubject[b.Subject], b.ID)
	add(m.byRole, b.Role, b.ID)
	m.forget(b.Subject)
	return nil
}

// Unbind removes a binding; an unknown id is a no-op.
func (m *Model) Unbind(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unbind(id)
}

func (m *Model) unbind(id string) {
	b, ok := m.bindings[id]
	if !ok {
		return
	}
	delete(m.bindings, id)
	if l := slices.DeleteFunc(m.bySubject[b.Subject], func(s string) bool { return s == id }); len(l) > 0 {
		m.bySubject[b.Subject] = l
	} else {
		delete(m.bySubject, b.Subject)
	}
	remove(m.byRole, b.Role, id)
	m.forget(b.Subject)
}

// SetMember adds principal to group, or changes its membership.
func (m *Model) SetMember(group, principal string, ms Membership) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.members[group]
	if g == nil {
		g = map[string]Membership{}
		m.members[group] = g
	}
	g[principal] = ms
	add(m.groupsOf, principal, group)
	m.forget(principal)
}

// RemoveMember takes principal out of group.
func (m *Model) RemoveMember(group, principal string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropMember(group, principal)
	remove(m.groupsOf, principal, group)
	m.forget(principal)
}

// dropMember removes principal from group's members. Callers hold mu.
func (m *Model) dropMember(group, principal string) {
	if g := m.members[group]; g != nil {
		delete(g, principal)
		if len(g) == 0 {
			delete(m.members, group)
		}
	}
}

// BindingsOf returns subject's own bindings (not its groups'), sorted by id.
func (m *Model) BindingsOf(subject string) []Binding {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Binding, 0, len(m.bySubject[subject]))
	for _, id := range m.bySubject[subject] {
		out = append(out, m.bindings[id])
	}
	slices.SortFunc(out, func(a, b Binding) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// GroupsOf returns the groups principal is a member of, sorted.
func (m *Model) GroupsOf(principal string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Sorted(maps.Keys(m.groupsOf[principal]))
}

// IsOwner reports whether principal owns group.
func (m *Model) IsOwner(group, principal string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.members[group][principal] == Owner
}

// PutPrincipal adds or replaces what the model knows of a principal.
func (m *Model) PutPrincipal(p Principal) {
	p.Endpoints = cloneStrings(p.Endpoints)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.countOwn(m.principals[p.ID].Own, -1)
	m.countOwn(p.Own, 1)
	m.principals[p.ID] = p
	m.forget(p.ID)
}

// countOwn adds d to the holder count of each role of own. Callers hold mu.
func (m *Model) countOwn(own *RoleSet, d int) {
	if own == nil {
		return
	}
	for _, r := range own.Roles {
		if n := m.ownHeld[r] + d; n > 0 {
			m.ownHeld[r] = n
		} else {
			delete(m.ownHeld, r)
		}
	}
}

// RemovePrincipal forgets a principal with its bindings, memberships and
// tenant access.
func (m *Model) RemovePrincipal(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// unbind edits the list: go through a copy.
	for _, bid := range slices.Clone(m.bySubject[id]) {
		m.unbind(bid)
	}
	for g := range m.groupsOf[id] {
		m.dropMember(g, id)
	}
	delete(m.groupsOf, id)
	delete(m.access, id)
	m.countOwn(m.principals[id].Own, -1)
	delete(m.principals, id)
	m.forget(id)
}

// RemoveGroup forgets a group with its bindings and memberships.
func (m *Model) RemoveGroup(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// unbind edits the list: go through a copy.
	for _, bid := range slices.Clone(m.bySubject[id]) {
		m.unbind(bid)
	}
	for p := range m.members[id] {
		remove(m.groupsOf, p, id)
		m.forget(p)
	}
	delete(m.members, id)
}

// GrantTenant gives a user access to a tenant.
func (m *Model) GrantTenant(user, tenant string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	add(m.access, user, tenant)
	m.forget(user)
}

// RevokeTenant takes a user's access to a tenant away.
func (m *Model) RevokeTenant(user, tenant string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	remove(m.access, user, tenant)
	m.forget(user)
}

// inTenant reports whether p may act in tenant at all. Callers hold mu.
func (m *Model) inTenant(p Principal, tenant string) bool {
	switch {
	case p.Superadmin, tenant == "":
		// Instance requests are decided by instance-level grants alone.
		return true
	case p.Kind == KindServiceAccount:
		return p.Tenant == tenant
	}
	_, ok := m.access[p.ID][tenant]
	return ok
}

// effectiveOf returns p's grants, computing them if no change since the
// last computation dropped them. Callers hold mu (read).
func (m *Model) effectiveOf(id string) *effective {
	m.cacheMu.Lock()
	e, ok := m.cache[id]
	m.cacheMu.Unlock()
	if ok {
		return e
	}
	e = &effective{}
	collect := func(subject, via string) {
		for _, bid := range m.bySubject[subject] {
			b := m.bindings[bid]
			r, ok := m.roles[b.Role]
			if !ok {
				continue
			}
			for _, rule := range r.Rules {
				reason := fmt.Sprintf("role %q at %s (%s)", r.Name, b.Scope, rule)
				if via != "" {
					reason += " through group " + via
				}
				e.add(grant{rule: rule, scope: b.Scope, role: r.ID, reason: reason})
			}
		}
	}
	collect(id, "")
	if own := m.principals[id].Own; own != nil {
		for _, rk := range own.Roles {
			r, ok := m.roles[rk]
			if !ok {
				continue
			}
			for _, rule := range r.Rules {
				e.add(grant{rule: rule, scope: own.Scope, role: r.ID, reason: fmt.Sprintf("role %q at %s (%s)", r.Name, own.Scope, rule)})
			}
		}
	}
	for g := range m.groupsOf[id] {
		collect(g, g)
	}
	// A tenant's default roles hold for every user with access to it,
	// across the whole tenant.
	for t := range m.access[id] {
		for rid := range m.defaults[t] {
			r := m.roles[rid]
			for _, rule := range r.Rules {
				e.add(grant{rule: rule, scope: TenantScope(t), role: r.ID, reason: fmt.Sprintf("default role %q of tenant %s (%s)", r.Name, t, rule)})
			}
		}
	}
	e.denyFirst()
	m.cacheMu.Lock()
	m.cache[id] = e
	m.cacheMu.Unlock()
	return e
}

// Can decides req for the principal with id. Deny wins: a principal that
// is unknown or disabled, a tenant it may not act in, a resource outside
// its endpoint allowlist, or a matching deny rule deny the request;
// otherwise a superadmin, or an allow rule held at a scope covering
// req.Scope, allows it. Service accounts never act outside their tenant.
func (m *Model) Can(id string, req Request) Decision {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p, ok := m.principals[id]
	switch {
	case !ok:
		return Decision{Reason: "unknown principal"}
	case p.Disabled:
		return Decision{Reason: "principal is disabled"}
	case !m.inTenant(p, req.Scope.Tenant):
		return Decision{Reason: "no access to " + req.Scope.String()}
	}
	if p.Endpoints != nil && !matchAny(p.Endpoints, req.Resource, resourceSep) {
		return Decision{Reason: fmt.Sprintf("resource %q is outside the principal's endpoint allowlist", req.Resource)}
	}
	e := m.effectiveOf(id)
	h, _, _ := cut(req.Action, actionSep)
	lists := [...][]int{e.exact[req.Action], e.head[h], e.any}
	// Every deny that may apply first (each list starts with its denies),
	// then the first allow: the rest need not be looked at.
	for _, l := range lists {
		for _, i := range l {
			g := &e.all[i]
			if g.rule.Effect != Deny {
				break
			}
			if g.applies(req) {
				return Decision{Reason: "denied by " + g.reason}
			}
		}
	}
	if p.Superadmin {
		return Decision{Allowed: true, Reason: "superadmin"}
	}
	for _, l := range lists {
		for _, i := range l {
			if g := &e.all[i]; g.rule.Effect != Deny && limitedTo(req.Roles, g.role) && g.applies(req) {
				return Decision{Allowed: true, Reason: "allowed by " + g.reason}
			}
		}
	}
	return Decision{Reason: "no role grants " + req.Action + " at " + req.Scope.String()}
}

// limitedTo reports whether a grant of role may allow under a limit to
// roles (nil: no limit). Limits never stop a deny.
func limitedTo(roles []string, role string) bool {
	if roles == nil {
		return true
	}
	for _, r := range roles {
		if r == role {
			return true
		}
	}
	return false
}

func (g *grant) applies(req Request) bool {
	if !g.scope.Covers(req.Scope) || !matchAny(g.rule.Actions, req.Action, actionSep) {
		return false
	}
	return len(g.rule.Resources) == 0 || matchAny(g.rule.Resources, req.Resource, resourceSep)
}

func matchAny(patterns []string, v string, sep byte) bool {
	for _, p := range patterns {
		if match(p, v, sep) {
			return true
		}
	}
	return false
}

// Missing returns the first allow rule of rules that the principal with
// id does not hold at scope, for scope-down: nobody grants, through a
// role, a binding, a membership or a credential, what they do not hold
// themselves. roles limits the allow grants that count, as
// Request.Roles does. A rule is held when, for each of its actions and resources,
// an allow grant of the holder at a scope covering scope covers the
// pattern, and no deny grant of the holder overlaps it. Deny rules only
// narrow and need not be held. ok is false when a rule is missing.
func (m *Model) Missing(id string, rules []Rule, scope Scope, roles []string) (missing Rule, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p, known := m.principals[id]
	if !known || p.Disabled || !m.inTenant(p, scope.Tenant) {
		for _, r := range rules {
			if r.Effect == Allow {
				return r, false
			}
		}
		return Rule{}, true
	}
	if p.Superadmin && p.Endpoints == nil {
		return Rule{}, true
	}
	e := m.effectiveOf(id)
	for _, r := range rules {
		if r.Effect != Allow {
			continue
		}
		resources := r.Resources
		if len(resources) == 0 {
			resources = []string{"*"}
		}
		if p.Endpoints != nil && !coveredByAny(p.Endpoints, resources) {
			return r, false
		}
		if p.Superadmin {
			continue
		}
		for _, a := range r.Actions {
			for _, res := range resources {
				if !e.holds(a, res, scope, roles) {
					return r, false
				}
			}
		}
	}
	return Rule{}, true
}

func coveredByAny(patterns, resources []string) bool {
	for _, res := range resources {
		ok := false
		for _, p := range patterns {
			if covers(p, res, resourceSep) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// holds reports whether the grants allow every request action a and
// resource res cover at scope, with no deny in the way.
func (e *effective) holds(a, res string, scope Scope, roles []string) bool {
	held := false
	for i := range e.all {
		g := &e.all[i]
		if !g.scope.Covers(scope) && !scope.Covers(g.scope) {
			continue
		}
		if g.rule.Effect == Deny {
			// A deny anywhere the grant would reach overlaps it.
			if overlapsAny(g.rule.Actions, a, actionSep) && (len(g.rule.Resources) == 0 || overlapsAny(g.rule.Resources, res, resourceSep)) {
				return false
			}
			continue
		}
		if held || !g.scope.Covers(scope) || !limitedTo(roles, g.role) {
			continue
		}
		if !coveredBy(g.rule.Actions, a, actionSep) {
			continue
		}
		if len(g.rule.Resources) > 0 && !coveredBy(g.rule.Resources, res, resourceSep) {
			continue
		}
		held = true
	}
	return held
}

func coveredBy(patterns []string, p string, sep byte) bool {
	for _, q := range patterns {
		if covers(q, p, sep) {
			return true
		}
	}
	return false
}

// overlapsAny reports whether some value matches both p and a pattern of
// patterns. It errs towards overlap: when either side covers the other.
func overlapsAny(patterns []string, p string, sep byte) bool {
	for _, q := range patterns {
		if covers(q, p, sep) || covers(p, q, sep) || match(q, p, sep) || match(p, q, sep) {
			return true
		}
	}
	return false
}

func cloneRules(rs []Rule) []Rule {
	out := make([]Rule, len(rs))
	for i, r := range rs {
		out[i] = Rule{Effect: r.Effect, Actions: cloneStrings(r.Actions), Resources: cloneStrings(r.Resources)}
	}
	return out
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}
