package events_test

import (
	"encoding/json"
	"testing"

	"github.com/keyhold/keyhold/events"
)

// A v1 UserCreated (username and email at the top level) reads as the
// current version with them in the plaintext Personal, and the user active.
func TestUserCreatedV1IsUpcast(t *testing.T) {
	env := events.Envelope{Type: "iam.user.created", Version: 1, Data: json.RawMessage(`{"username":"root","email":"root@acme.test"}`)}
	e, err := events.Decode(env)
	if err != nil {
		t.Fatal(err)
	}
	got := e.(events.UserCreated)
	if got.Personal == nil || *got.Personal != (events.Personal{Username: "root", Email: "root@acme.test"}) || got.Status != events.UserStatusActive || got.PersonalEnc != nil {
		t.Fatalf("decoded %+v", got)
	}
	if v := events.Types()["iam.user.created"]; v != 3 {
		t.Fatalf("version %d, want 3", v)
	}
}

// Plaintext versions of the personal-data events keep their plaintext when
// upcast; the current versions carry only the ciphertext.
func TestPlaintextPersonalVersionsDecode(t *testing.T) {
	plain := events.Personal{Username: "ann", Email: "ann@acme.test", FirstName: "Ann"}
	for _, tc := range []struct {
		typ     string
		version int
		data    string
	}{
		{"iam.user.created", 2, `{"personal":{"username":"ann","email":"ann@acme.test","first_name":"Ann"},"status":"active"}`},
		{"iam.user.updated", 1, `{"personal":{"username":"ann","email":"ann@acme.test","first_name":"Ann"}}`},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			e, err := events.Decode(events.Envelope{Type: tc.typ, Version: tc.version, Data: json.RawMessage(tc.data)})
			if err != nil {
				t.Fatal(err)
			}
			var got *events.Personal
			switch e := e.(type) {
			case events.UserCreated:
				got = e.Personal
			case events.UserUpdated:
				got = e.Personal
			}
			if got == nil || *got != plain {
				t.Fatalf("personal %+v, want %+v", got, plain)
			}
		})
	}
	env := events.New("_", "u1", events.Actor{ID: "system", Kind: "system"}, "", events.UserUpdated{PersonalEnc: []byte{1, 2, 3}})
	if string(env.Data) != `{"personal_enc":"AQID"}` {
		t.Fatalf("encoded %s", env.Data)
	}
}

func TestValidID(t *testing.T) {
	for _, tt := range []struct {
		id   string
		want bool
	}{
		{events.NewID(), true},
		{"01m8bwn9bmf8bvrrbfke65f19r", true},
		{"01M8BWN9BMF8BVRRBFKE65F19R", false}, // ids are lower case
		{"01m8bwn9bmf8bvrrbfke65f19", false},
		{"01m8bwn9bmf8bvrrbfke65f19r0", false},
		{"01m8bwn9bmf8bvrrbfke65f1-r", false},
		{"", false},
	} {
		t.Run(tt.id, func(t *testing.T) {
			if got := events.ValidID(tt.id); got != tt.want {
				t.Fatalf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}
