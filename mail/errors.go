package mail

import (
	"fmt"

	"github.com/keyhold/keyhold/effects"
)

// ErrPermanent marks a send failure that retrying cannot fix. It wraps
// effects.ErrPermanent, so a reaction that returns a send error as is
// gets the event recorded as failed instead of retried.
var ErrPermanent = fmt.Errorf("mail: %w", effects.ErrPermanent)
