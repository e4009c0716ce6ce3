package query

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/keyhold/keyhold/events"
)

// AuditTypes returns the event types the audit trail shows, sorted: every
// registered type but the uniqueness bookkeeping it leaves out.
func AuditTypes() []string { return slices.Clone(auditTypes()) }

// auditTypes is computed once: the registry is complete after init, and
// every audit read checks its type filter against it.
var auditTypes = sync.OnceValue(func() []string {
	var out []string
	for name := range events.Types() {
		if name != (events.UniqueKeyClaimed{}).EventType() && name != (events.UniqueKeyReleased{}).EventType() {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
})

// CheckAuditType returns an error wrapping ErrInvalid that lists the known
// types when t is neither empty nor one of AuditTypes: a filter on a
// misspelt type would match nothing and look like an empty trail. The
// message does not repeat t: what was pasted there may be a secret.
func CheckAuditType(t string) error {
	if t == "" {
		return nil
	}
	known := auditTypes()
	if slices.Contains(known, t) {
		return nil
	}
	return fmt.Errorf("%w: not a known event type (known: %s)", ErrInvalid, strings.Join(known, ", "))
}
