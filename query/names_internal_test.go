package query

import (
	"testing"

	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
)

// The read side tells a chosen name from an id as the write side does: a
// reference the two read differently would find one account by path on
// reads and another (or none) on writes.
func TestServiceAccountNamesMatchTheWriteSide(t *testing.T) {
	for _, ref := range []string{"", "a", "ci-runner", "z9", events.NewID(), "01m8bwn9bmf8bvrrbfke65f19r", "Ci", "-a", "9lives", "_x"} {
		t.Run(ref, func(t *testing.T) {
			if got, want := isName(ref), commands.IsServiceAccountName(ref); got != want {
				t.Fatalf("isName(%q) = %v, commands.IsServiceAccountName = %v", ref, got, want)
			}
		})
	}
	if isName(events.NewID()) {
		t.Fatal("a new id reads as a name")
	}
}
