// Package events defines Keyhold's event envelope, the registry of event
// types and their schema versions, and the JetStream-backed event store.
//
// The event log is the source of truth: every change to Keyhold's state is an
// event appended here, and every read table is derived from it.
package events

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	fastjson "github.com/segmentio/encoding/json"
)

// Actor identifies who caused an event.
type Actor struct {
	// ID is the principal id (user or service-account id), or "system".
	ID string `json:"id"`
	// Kind is "user", "service_account" or "system".
	Kind string `json:"kind"`
}

// System is the actor of events the server or the operator CLI causes on its own.
var System = Actor{ID: "system", Kind: "system"}

// Envelope is one stored event. Field names follow CloudEvents where they
// overlap so that subscribers can forward envelopes unchanged.
type Envelope struct {
	ID      string    `json:"id"`
	Type    string    `json:"type"`
	Version int       `json:"version"`
	Time    time.Time `json:"time"`
	Tenant  string    `json:"tenant"`
	// Subject is the aggregate id the event belongs to.
	Subject   string          `json:"subject"`
	Actor     Actor           `json:"actor"`
	RequestID string          `json:"request_id,omitempty"`
	Data      json.RawMessage `json:"data"`

	// Sequence is the stream sequence; set when read, never stored in the body.
	Sequence uint64 `json:"sequence,omitempty"`
	// Aggregate is the aggregate type taken from the NATS subject; set when read.
	Aggregate string `json:"aggregate,omitempty"`
}

// InstanceTenant is the tenant token used for instance-level aggregates.
const InstanceTenant = "_"

// Aggregate types, the third token of an event subject.
const (
	AggregateTenant         = "tenant"
	AggregateUser           = "user"
	AggregateServiceAccount = "service_account"
	AggregateUnique         = "unique"
	AggregateRole           = "role"
	AggregateBinding        = "binding"
	AggregateGroup          = "group"
	AggregateInstance       = "instance"
	// AggregateTokenRevocations holds the access tokens revoked for one
	// service account (its id is the account's): kept apart from the
	// account so that its history stays short to load, and so that a
	// client revoking tokens never conflicts with commands on its account.
	AggregateTokenRevocations = "token_revocations"
)

// Subject returns the NATS subject of an aggregate:
// keyhold.<tenant>.<aggregate-type>.<aggregate-id>.
func Subject(prefix, tenant, aggregate, id string) string {
	return prefix + "." + tenant + "." + aggregate + "." + id
}

// ParseSubject splits a subject built by Subject. ok is false when the
// subject does not have the four tokens.
func ParseSubject(subject string) (tenant, aggregate, id string, ok bool) {
	// Cut rather than Split: this runs for every event read.
	_, rest, ok1 := strings.Cut(subject, ".")
	tenant, rest, ok2 := strings.Cut(rest, ".")
	aggregate, id, ok3 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || !ok3 || strings.Contains(id, ".") {
		return "", "", "", false
	}
	return tenant, aggregate, id, true
}

// ValidToken reports whether s may be used as a subject token (tenant or id):
// 1 to 64 characters of [a-zA-Z0-9_-].
func ValidToken(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

// New builds an envelope for data, whose type must be registered.
// It panics on an unregistered type: that is a programming error.
func New(tenant, subject string, actor Actor, requestID string, data Event) Envelope {
	def, ok := registry[data.EventType()]
	if !ok {
		panic(fmt.Sprintf("events: type %q is not registered", data.EventType()))
	}
	raw, err := fastjson.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("events: marshal %s: %v", data.EventType(), err))
	}
	return Envelope{
		ID:        NewID(),
		Type:      def.name,
		Version:   def.version,
		Time:      time.Now().UTC(),
		Tenant:    tenant,
		Subject:   subject,
		Actor:     actor,
		RequestID: requestID,
		Data:      raw,
	}
}
