package events_test

import (
	"encoding/json"
	"testing"

	"github.com/keyhold/keyhold/events"
)

// A v1 UserCreated (username and email at the top level) reads as v2 with
// them inside Personal, and the user active.
func TestUserCreatedV1IsUpcast(t *testing.T) {
	env := events.Envelope{Type: "iam.user.created", Version: 1, Data: json.RawMessage(`{"username":"root","email":"root@acme.test"}`)}
	e, err := events.Decode(env)
	if err != nil {
		t.Fatal(err)
	}
	got := e.(events.UserCreated)
	want := events.UserCreated{Personal: events.Personal{Username: "root", Email: "root@acme.test"}, Status: events.UserStatusActive}
	if got != want {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	if v := events.Types()["iam.user.created"]; v != 2 {
		t.Fatalf("version %d, want 2", v)
	}
}
