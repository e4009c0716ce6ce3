package events

import "errors"

var (
	// ErrConflict is returned by Append when an aggregate changed since it was
	// read: the expected last subject sequence did not match. Reload and retry.
	ErrConflict = errors.New("events: aggregate changed concurrently")

	// ErrNotReady is returned when JetStream could not check the expected
	// sequence right now; the append may be retried.
	ErrNotReady = errors.New("events: stream not ready")

	// ErrDuplicate is returned by Append when an atomic batch repeats
	// message ids JetStream still remembers: the batch was stored before.
	ErrDuplicate = errors.New("events: batch already stored")

	// ErrUnknownType is returned by Decode for a type missing from the registry.
	ErrUnknownType = errors.New("events: unknown event type")

	// ErrUnknownVersion is returned by Decode for a schema version newer than
	// this binary knows.
	ErrUnknownVersion = errors.New("events: unknown event schema version")

	// ErrUndecodable is returned by Decode for an envelope whose stored
	// message could not be decoded at all (see TypeUndecodable).
	ErrUndecodable = errors.New("events: stored message is not a decodable event")

	// ErrPersonalData is returned by a PersonalReader for encrypted
	// personal data that does not open: altered, or sealed for another
	// user or event type. Retrying does not help.
	ErrPersonalData = errors.New("events: personal data does not decrypt")

	// ErrInvalidOption is returned by Open for an option with a bad value.
	ErrInvalidOption = errors.New("events: invalid option")
)
