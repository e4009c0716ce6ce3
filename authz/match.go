package authz

import "strings"

// match reports whether value matches pattern, both split on sep. A
// pattern segment "*" matches any one segment; in actions a last segment
// "*" matches one or more ("iam.*"); a lone "*" matches everything, the
// empty value too. It does not allocate: it runs on every decision.
func match(pattern, value string, sep byte) bool {
	switch {
	case pattern == "*" || pattern == value:
		// Every segment is equal or "*" against a "*" value.
		return true
	case strings.IndexByte(pattern, '*') < 0:
		// Without a wildcard only the value itself matches.
		return false
	}
	for {
		p, prest, pmore := cut(pattern, sep)
		v, vrest, vmore := cut(value, sep)
		if p == "*" && !pmore && sep == actionSep {
			return true
		}
		if p != "*" && p != v {
			return false
		}
		if !pmore || !vmore {
			return pmore == vmore
		}
		pattern, value = prest, vrest
	}
}

// covers reports whether every value pattern b matches is matched by
// pattern a too: a holder of a may grant b.
func covers(a, b string, sep byte) bool {
	if a == "*" {
		return true
	}
	if b == "*" {
		return false
	}
	as, bs := strings.Split(a, string(sep)), strings.Split(b, string(sep))
	for i, p := range as {
		last := i == len(as)-1
		if i >= len(bs) {
			return false
		}
		q := bs[i]
		switch {
		case p == "*" && last && sep == actionSep:
			return true
		case p == "*":
			// One segment: b must not widen it to the rest.
			if q == "*" && i == len(bs)-1 && sep == actionSep {
				return false
			}
		case p != q:
			return false
		}
	}
	return len(as) == len(bs)
}

func cut(s string, sep byte) (head, rest string, more bool) {
	if i := strings.IndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// Separators of the two pattern kinds.
const (
	actionSep   = '.'
	resourceSep = '/'
)

// MatchAction reports whether action matches an action pattern.
func MatchAction(pattern, action string) bool { return match(pattern, action, actionSep) }

// MatchResource reports whether resource matches a resource pattern.
func MatchResource(pattern, resource string) bool { return match(pattern, resource, resourceSep) }
