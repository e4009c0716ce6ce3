package query

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Logins returns the directory's login index (lower-cased username or
// email to user id), which snapshots leave out and loading reads again.
func Logins(d *Directory) map[string]string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := map[string]string{}
	for l, u := range d.logins {
		out[l] = u.id
	}
	return out
}

// Dump renders everything the directory holds but its caches, written
// apart from WriteSnapshot, so that comparing two directories' dumps also
// catches what a snapshot leaves out on both sides.
func Dump(d *Directory) string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var b strings.Builder
	fmt.Fprintf(&b, "seq %d\ntenants %v\n", d.seq, slices.Sorted(maps.Keys(d.tenantIDs)))
	for _, id := range slices.Sorted(maps.Keys(d.accounts)) {
		fmt.Fprintf(&b, "account %+v\n", *d.accounts[id])
	}
	for _, id := range slices.Sorted(maps.Keys(d.users)) {
		u := *d.users[id]
		u.verified = nil
		fmt.Fprintf(&b, "user %+v\n", u)
	}
	ids := func(name string, m map[string]*dirServiceAccount) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			fmt.Fprintf(&b, "%s %s -> %s\n", name, k, m[k].id)
		}
	}
	ids("client", d.clients)
	ids("bound", d.boundTo)
	for _, k := range slices.Sorted(maps.Keys(d.logins)) {
		fmt.Fprintf(&b, "login %s -> %s\n", k, d.logins[k].id)
	}
	for _, k := range slices.SortedFunc(maps.Keys(d.named), func(a, b [2]string) int { return strings.Compare(a[0]+" "+a[1], b[0]+" "+b[1]) }) {
		fmt.Fprintf(&b, "named %v -> %s\n", k, d.named[k].id)
	}
	for _, v := range slices.Sorted(maps.Keys(d.tokens)) {
		t := d.tokens[v]
		exp := "never"
		if t.expires != nil {
			exp = t.expires.String()
		}
		fmt.Fprintf(&b, "token %s %s %s %v %s\n", v, t.id, t.owner, t.account, exp)
	}
	fmt.Fprintf(&b, "token ids %v\n", d.tokenIDs)
	for _, k := range slices.Sorted(maps.Keys(d.accountTokens)) {
		fmt.Fprintf(&b, "account tokens %s %v\n", k, slices.Sorted(slices.Values(d.accountTokens[k])))
	}
	for _, f := range d.failures {
		fmt.Fprintf(&b, "failure %d %s %v\n", f.Sequence, f.Type, f.Err)
	}
	fmt.Fprintf(&b, "model %+v\n", d.model.State())
	return b.String()
}
