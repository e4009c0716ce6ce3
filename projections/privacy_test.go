package projections_test

import (
	"context"
	"testing"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
)

// The users table shows an updated user's decrypted names, and "[erased]"
// once the user is erased: applied live, and after a rebuild, which reads
// the user's events without the destroyed key.
func TestErasedUserRow(t *testing.T) {
	f := newFixture(t)
	r := f.start(t)
	ctx := context.Background()
	sys := commands.Meta{Caller: auth.System()}
	res, err := f.cmds.CreateUser.Handle(ctx, commands.CreateUser{Meta: sys, Username: "ann", Email: "ann@acme.test", FirstName: "Ann"})
	testenv.Must(t, err, "create")
	id := res.User.ID()
	last := "Lee"
	res, err = f.cmds.UpdateUser.Handle(ctx, commands.UpdateUser{Meta: sys, UserID: id, LastName: &last})
	testenv.Must(t, err, "update")
	f.wait(t, res.Sequence)
	row := func() (username, email, first, lastName string) {
		t.Helper()
		testenv.Must(t, f.db.QueryRowx(`SELECT username, email, first_name, last_name FROM users WHERE id = $1`, id).Scan(&username, &email, &first, &lastName), "read row")
		return
	}
	if u, e, fn, ln := row(); u != "ann" || e != "ann@acme.test" || fn != "Ann" || ln != "Lee" {
		t.Fatalf("row %q %q %q %q", u, e, fn, ln)
	}
	erased, err := f.cmds.ErasePersonalData.Handle(ctx, commands.ErasePersonalData{Meta: sys, PrincipalID: id})
	testenv.Must(t, err, "erase")
	f.wait(t, erased.Sequence)
	m := events.ErasedMarker
	for _, step := range []string{"live", "rebuilt"} {
		if step == "rebuilt" {
			testenv.Must(t, r.Rebuild(ctx, nil), "rebuild")
		}
		if u, e, fn, ln := row(); u != m || e != m || fn != m || ln != m {
			t.Fatalf("%s: row %q %q %q %q, want every field %q", step, u, e, fn, ln, m)
		}
	}
	if n := count(t, f.db, "SELECT count(*) FROM projection_failures"); n != 0 {
		t.Fatalf("%d events failed to apply", n)
	}
}
