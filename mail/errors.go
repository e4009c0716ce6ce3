package mail

import "errors"

// ErrPermanent marks a send failure that retrying cannot fix.
var ErrPermanent = errors.New("mail: permanent failure")
