package events

// SetMaxPending changes how many live events a late fan-out subscriber
// may hold, and returns the function that restores it.
func SetMaxPending(n int) (restore func()) {
	old := maxPending
	maxPending = n
	return func() { maxPending = old }
}
