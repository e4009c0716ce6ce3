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
// misspelt type would match nothing and look like an empty trail.
func CheckAuditType(t string) error {
	known := AuditTypes()
	if t == "" || slices.Contains(known, t) {
		return nil
	}
	return fmt.Errorf("%w: unknown event type %q (known: %s)", ErrInvalid, t, strings.Join(known, ", "))
}
