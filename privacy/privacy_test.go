package privacy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/privacy"
)

func newKEK(t *testing.T) auth.KEK {
	t.Helper()
	k, err := auth.NewKEK()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var ann = events.Personal{Username: "ann", Email: "ann@acme.test", FirstName: "Ann", LastName: "Lee", DisplayName: "Ann L"}

// seal returns a UserCreated whose personal data s sealed for user id.
func seal(t *testing.T, s *privacy.Store, id string) events.UserCreated {
	t.Helper()
	ctx := context.Background()
	if err := s.Create(ctx, id); err != nil {
		t.Fatal(err)
	}
	enc, err := s.Seal(ctx, id, events.UserCreated{}.EventType(), ann)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc, []byte("ann")) {
		t.Fatal("sealed data holds the plaintext")
	}
	return events.UserCreated{PersonalEnc: enc}
}

func TestSealOpenErase(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	kek := newKEK(t)
	s, err := privacy.Open(ctx, db.DB, kek)
	testenv.Must(t, err, "open")
	e := seal(t, s, "u1")
	testenv.Must(t, s.Create(ctx, "u1"), "create again") // idempotent

	// A second store (another replica) reads the same key.
	s2, err := privacy.Open(ctx, db.DB, kek)
	testenv.Must(t, err, "open replica")
	for name, st := range map[string]*privacy.Store{"writer": s, "replica": s2} {
		got, err := st.Personal(ctx, "u1", e)
		if err != nil || got != ann {
			t.Fatalf("%s: personal %+v, %v", name, got, err)
		}
	}
	// Bound to the principal and the event type.
	if _, err := s.Personal(ctx, "u2", e); err == nil {
		t.Fatal("opened for another principal")
	}
	if _, err := s.Personal(ctx, "u1", events.UserUpdated{PersonalEnc: e.PersonalEnc}); !errors.Is(err, privacy.ErrCorrupt) {
		t.Fatalf("as another event type: %v, want ErrCorrupt", err)
	}

	testenv.Must(t, s.Erase(ctx, "u1"), "erase")
	testenv.Must(t, s.Erase(ctx, "u1"), "erase again")
	s3, err := privacy.Open(ctx, db.DB, kek)
	testenv.Must(t, err, "open after erase")
	for name, st := range map[string]*privacy.Store{"writer": s, "new replica": s3} {
		got, err := st.Personal(ctx, "u1", e)
		if err != nil || got != events.ErasedPersonal() {
			t.Fatalf("%s after erase: %+v, %v", name, got, err)
		}
	}
	if err := s3.Create(ctx, "u1"); !errors.Is(err, privacy.ErrErased) {
		t.Fatalf("create after erase: %v, want ErrErased", err)
	}
	var n int
	testenv.Must(t, db.Get(&n, `SELECT count(*) FROM privacy_keys WHERE principal_id = 'u1' AND wrapped IS NULL AND erased_at IS NOT NULL`), "count")
	if n != 1 {
		t.Fatalf("%d erased rows, want 1", n)
	}

	// Plaintext from before encryption reads as it is, and as erased once
	// the principal is erased.
	old := events.UserCreated{Personal: &ann}
	if got, err := s.Personal(ctx, "old", old); err != nil || got != ann {
		t.Fatalf("plaintext event: %+v, %v", got, err)
	}
	testenv.Must(t, s.Erase(ctx, "old"), "erase old")
	if got, err := s2.Personal(ctx, "old", old); err != nil || !got.Erased {
		t.Fatalf("plaintext event of an erased principal on a replica: %+v, %v", got, err)
	}
}

func TestKEKRotation(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	oldKEK, newKEKey := newKEK(t), newKEK(t)
	s, err := privacy.Open(ctx, db.DB, oldKEK)
	testenv.Must(t, err, "open")
	e := seal(t, s, "u1")
	blind := s.Blind("email", "ann@acme.test")

	if _, err := privacy.Open(ctx, db.DB, newKEKey); !errors.Is(err, auth.ErrUnwrap) {
		t.Fatalf("open with a new KEK alone: %v, want ErrUnwrap", err)
	}
	rotated, err := privacy.Open(ctx, db.DB, newKEKey, oldKEK)
	testenv.Must(t, err, "open rotated")
	if got, err := rotated.Personal(ctx, "u1", e); err != nil || got != ann {
		t.Fatalf("after rotation: %+v, %v", got, err)
	}
	if got := rotated.Blind("email", "ann@acme.test"); got != blind {
		t.Fatal("the reservation secret changed with the KEK")
	}
	// A key not read since the rotation is rewrapped by Preload.
	e2 := seal(t, s, "u2")
	testenv.Must(t, rotated.Preload(ctx), "preload")
	// Everything is rewrapped: the new KEK alone now suffices.
	only, err := privacy.Open(ctx, db.DB, newKEKey)
	testenv.Must(t, err, "open with the new KEK only")
	for id, ev := range map[string]events.UserCreated{"u1": e, "u2": e2} {
		if got, err := only.Personal(ctx, id, ev); err != nil || got != ann {
			t.Fatalf("%s with the new KEK only: %+v, %v", id, got, err)
		}
	}
}

func TestBlind(t *testing.T) {
	ctx := context.Background()
	a, err := privacy.Open(ctx, testenv.DB(t).DB, newKEK(t))
	testenv.Must(t, err, "open a")
	b, err := privacy.Open(ctx, testenv.DB(t).DB, newKEK(t))
	testenv.Must(t, err, "open b")
	bare := sha256.Sum256([]byte("email\x00ann@acme.test"))
	for _, tc := range []struct {
		name string
		x, y string
		same bool
	}{
		{"case does not matter", a.Blind("email", "Ann@Acme.test"), a.Blind("email", "ann@acme.test"), true},
		{"kinds differ", a.Blind("email", "ann"), a.Blind("username", "ann"), false},
		{"instances differ", a.Blind("email", "ann@acme.test"), b.Blind("email", "ann@acme.test"), false},
		{"not the bare hash", a.Blind("email", "ann@acme.test"), hex.EncodeToString(bare[:16]), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.x == tc.y) != tc.same {
				t.Fatalf("%s vs %s: same=%v, want %v", tc.x, tc.y, tc.x == tc.y, tc.same)
			}
		})
	}
}

func TestMemory(t *testing.T) {
	ctx := context.Background()
	s := privacy.NewMemory()
	e := seal(t, s, "u1")
	if got, err := s.Personal(ctx, "u1", e); err != nil || got != ann {
		t.Fatalf("personal %+v, %v", got, err)
	}
	if _, err := s.Seal(ctx, "nokey", "iam.user.created", ann); !errors.Is(err, privacy.ErrNoKey) {
		t.Fatalf("seal without a key: %v, want ErrNoKey", err)
	}
	testenv.Must(t, s.Erase(ctx, "u1"), "erase")
	if got, _ := s.Personal(ctx, "u1", e); !got.Erased {
		t.Fatalf("after erase: %+v", got)
	}
}

// Preload reads every key at once: afterwards the store answers without
// the database, erased keys included.
func TestPreload(t *testing.T) {
	ctx := context.Background()
	url := testenv.DatabaseURL(t)
	kek := newKEK(t)
	db, err := sql.Open("postgres", url)
	testenv.Must(t, err, "open db")
	defer db.Close()
	s, err := privacy.Open(ctx, db, kek)
	testenv.Must(t, err, "open")
	live, gone := seal(t, s, "live"), seal(t, s, "gone")
	testenv.Must(t, s.Erase(ctx, "gone"), "erase")

	other, err := sql.Open("postgres", url)
	testenv.Must(t, err, "open other db")
	replica, err := privacy.Open(ctx, other, kek)
	testenv.Must(t, err, "open replica")
	testenv.Must(t, replica.Preload(ctx), "preload")
	testenv.Must(t, other.Close(), "close the replica's database")
	if got, err := replica.Personal(ctx, "live", live); err != nil || got != ann {
		t.Fatalf("live key after preload: %+v, %v", got, err)
	}
	if got, err := replica.Personal(ctx, "gone", gone); err != nil || !got.Erased {
		t.Fatalf("erased key after preload: %+v, %v", got, err)
	}
	// A principal of an old log, with no key: its plaintext, unasked.
	if got, err := replica.Personal(ctx, "old", events.UserCreated{Personal: &ann}); err != nil || got != ann {
		t.Fatalf("plaintext after preload: %+v, %v", got, err)
	}
	if _, err := replica.Personal(ctx, "unknown", live); !errors.Is(err, privacy.ErrUnavailable) {
		t.Fatalf("a key not preloaded without a database: %v, want ErrUnavailable", err)
	}
}

// Replicas creating one principal's key at once end with the same key.
func TestCreateRace(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	kek := newKEK(t)
	stores := make([]*privacy.Store, 4)
	for i := range stores {
		s, err := privacy.Open(ctx, db.DB, kek)
		testenv.Must(t, err, "open %d", i)
		stores[i] = s
	}
	errs := make(chan error, len(stores))
	for _, s := range stores {
		go func() { errs <- s.Create(ctx, "raced") }()
	}
	for range stores {
		testenv.Must(t, <-errs, "create")
	}
	for i, s := range stores {
		enc, err := s.Seal(ctx, "raced", "iam.user.created", ann)
		testenv.Must(t, err, "seal %d", i)
		for j, o := range stores {
			if got, err := o.Personal(ctx, "raced", events.UserCreated{PersonalEnc: enc}); err != nil || got != ann {
				t.Fatalf("sealed by %d, opened by %d: %+v, %v", i, j, got, err)
			}
		}
	}
}
