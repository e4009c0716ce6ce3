package query

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keyhold/keyhold/events"
)

// AuditTypes returns the event types the audit trail shows, sorted: every
// registered type but the uniqueness bookkeeping it leaves out.
func AuditTypes() []string {
	var out []string
	for name := range events.Types() {
		if name != (events.UniqueKeyClaimed{}).EventType() && name != (events.UniqueKeyReleased{}).EventType() {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// CheckAuditType returns an error wrapping ErrInvalid that lists the known
// types when t is neither empty nor one of AuditTypes: a filter on a
// misspelt type would match nothing and look like an empty trail. The
// message does not repeat t: what was pasted there may be a secret.
func CheckAuditType(t string) error {
	known := AuditTypes()
	if t == "" || slices.Contains(known, t) {
		return nil
	}
	return fmt.Errorf("%w: not a known event type (known: %s)", ErrInvalid, strings.Join(known, ", "))
}
