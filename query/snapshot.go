package query

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/atomicfile"
)

// snapshotFormat names what a snapshot holds and how the directory folds
// the log. Bump it whenever Apply folds an event differently or the
// directory keeps state of a new kind: snapshots of another format are
// refused, and the directory replays the log instead.
const snapshotFormat = 1

// snapshotChunk is how many service accounts one gob value holds, so
// neither side holds a second copy of every account at once.
const snapshotChunk = 4096

var (
	// ErrSnapshotMismatch means a snapshot is not one of this log as this
	// version folds it: another stream (or one made again under the same
	// name), another format, or a sequence the log does not reach. The
	// directory replays the log instead.
	ErrSnapshotMismatch = errors.New("query: directory snapshot does not match the log")

	// ErrSnapshotTarget means LoadSnapshot was given a directory that has
	// already applied events.
	ErrSnapshotTarget = errors.New("query: a snapshot loads only into a new directory")
)

// SnapshotLog is what LoadSnapshot reads of the log: how far it reaches,
// and single events by sequence (those that users' logins come from).
// *events.Store implements it.
type SnapshotLog interface {
	LastSequence(ctx context.Context) (uint64, error)
	Get(ctx context.Context, seq uint64) (events.Envelope, error)
}

type snapshotHeader struct {
	Format int
	// Folds names the event types (with their versions) the directory
	// folded: a version that folds another set, or a new version of one,
	// does not take an older snapshot, even where snapshotFormat was not
	// bumped for it.
	Folds    string
	Stream   string
	Sequence uint64
	Accounts int
}

// folds is Folds for this version.
var folds = sync.OnceValue(func() string {
	var out []string
	for typ, v := range events.Types() {
		if relevant(typ) {
			out = append(out, typ+"@"+strconv.Itoa(v))
		}
	}
	slices.Sort(out)
	return strings.Join(out, ",")
})

// snapshotState is everything but the service accounts, which follow it
// in chunks.
type snapshotState struct {
	Tenants  []string
	Users    []snapshotUser
	Tokens   []snapshotToken
	Named    []snapshotName
	Model    authz.State
	Failures []snapshotFailure
}

type snapshotUser struct {
	ID         string
	Active     bool
	Verifier   string
	Tenants    []string
	Bindings   []auth.Binding
	Superadmin bool
	// PersonalSeq is the event the user's logins are read from again:
	// usernames and emails are personal data and never in a snapshot.
	PersonalSeq uint64
}

type snapshotToken struct {
	Verifier, ID, Owner string
	Account             bool
	Expires             *time.Time
}

type snapshotName struct{ Tenant, Name, Account string }

type snapshotFailure struct {
	Sequence uint64
	Type     string
	Err      string
}

type snapshotAccount struct {
	ID, Tenant, ClientID, Name string
	Scope                      events.Scope
	Roles                      []string
	Active                     bool
	Creds                      []snapshotCredential
	Generation                 uint64
	// Revoked and Bound are sorted by id, so equal states encode alike.
	Revoked []snapshotRevocation
	Bound   []snapshotBinding
}

type snapshotRevocation struct {
	Token   string
	Expires time.Time
}

type snapshotBinding struct {
	ID      string
	Binding auth.Binding
}

type snapshotCredential struct {
	ID       string
	Verifier [32]byte
	Expires  time.Time
}

// WriteSnapshot writes the directory's state at Sequence to w, for
// LoadSnapshot to start from instead of replaying the whole log. stream
// names the log it was folded from (events.Store.Identity). The snapshot
// holds verifiers, never secrets, and no personal data: for each user it
// records the event the user's logins came from, which LoadSnapshot reads
// again through the key store, so erasing a user's key erases them from
// snapshots too. Equal states give equal bytes. Safe to call while Run
// applies events; those wait for the write to finish.
func (d *Directory) WriteSnapshot(w io.Writer, stream string) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := gob.NewEncoder(bw)
	if err := enc.Encode(snapshotHeader{Format: snapshotFormat, Folds: folds(), Stream: stream, Sequence: d.seq, Accounts: len(d.accounts)}); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := enc.Encode(d.snapshotState()); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	ids := slices.Sorted(maps.Keys(d.accounts))
	chunk := make([]snapshotAccount, 0, snapshotChunk)
	for i, id := range ids {
		sa := d.accounts[id]
		a := snapshotAccount{ID: sa.id, Tenant: sa.tenant, ClientID: sa.otherClientID, Name: sa.name, Scope: sa.scope,
			Roles: sa.roles, Active: sa.active, Generation: sa.generation}
		for _, t := range slices.Sorted(maps.Keys(sa.revoked)) {
			a.Revoked = append(a.Revoked, snapshotRevocation{Token: t, Expires: sa.revoked[t]})
		}
		for _, b := range slices.Sorted(maps.Keys(sa.bound)) {
			a.Bound = append(a.Bound, snapshotBinding{ID: b, Binding: sa.bound[b]})
		}
		for _, c := range sa.creds {
			a.Creds = append(a.Creds, snapshotCredential{ID: c.id, Verifier: c.verifier, Expires: c.expires})
		}
		chunk = append(chunk, a)
		if len(chunk) == snapshotChunk || i == len(ids)-1 {
			if err := enc.Encode(chunk); err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
			chunk = chunk[:0]
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// snapshotState collects what is not a service account. Callers hold mu.
func (d *Directory) snapshotState() snapshotState {
	s := snapshotState{Tenants: slices.Sorted(maps.Keys(d.tenantIDs)), Model: d.model.State()}
	for _, id := range slices.Sorted(maps.Keys(d.users)) {
		u := d.users[id]
		s.Users = append(s.Users, snapshotUser{ID: u.id, Active: u.active, Verifier: u.verifier, Tenants: u.tenants,
			Bindings: u.bindings, Superadmin: u.superadmin, PersonalSeq: u.personalSeq})
	}
	for _, v := range slices.Sorted(maps.Keys(d.tokens)) {
		t := d.tokens[v]
		s.Tokens = append(s.Tokens, snapshotToken{Verifier: v, ID: t.id, Owner: t.owner, Account: t.account, Expires: t.expires})
	}
	for _, k := range slices.SortedFunc(maps.Keys(d.named), func(a, b [2]string) int {
		return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1])
	}) {
		s.Named = append(s.Named, snapshotName{Tenant: k[0], Name: k[1], Account: d.named[k].id})
	}
	for _, f := range d.failures {
		if !errors.Is(f.Err, errLogins) {
			s.Failures = append(s.Failures, snapshotFailure{Sequence: f.Sequence, Type: f.Type, Err: f.Err.Error()})
		}
	}
	return s
}

// LoadSnapshot fills a new directory (before Run) from a snapshot that
// WriteSnapshot wrote of the log named stream; Run then follows the log
// from the event after it, and the directory answers authentication
// questions once Run has caught up (ErrDirectoryLoading before). Users'
// logins are read again from log through the directory's key store
// (WithPersonal), one direct get per user. It fails, leaving the
// directory as new, with ErrSnapshotMismatch for a snapshot of another
// log, format or version, or ahead of log, or with the error that stopped
// reading; either way Run then replays the log from its start.
func (d *Directory) LoadSnapshot(ctx context.Context, r io.Reader, log SnapshotLog, stream string) (err error) {
	if !d.fresh() {
		return ErrSnapshotTarget
	}
	// Until Run has caught up, the loaded state is a past one.
	d.loading.Store(true)
	dec := gob.NewDecoder(bufio.NewReaderSize(r, 1<<16))
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if h.Format != snapshotFormat || h.Stream != stream {
		return fmt.Errorf("%w: format %d of %q, want format %d of %q", ErrSnapshotMismatch, h.Format, h.Stream, snapshotFormat, stream)
	}
	if h.Folds != folds() {
		return fmt.Errorf("%w: written by a version that folds other events", ErrSnapshotMismatch)
	}
	last, err := log.LastSequence(ctx)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if h.Sequence > last {
		return fmt.Errorf("%w: taken at event %d, the log ends at %d", ErrSnapshotMismatch, h.Sequence, last)
	}
	var s snapshotState
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	// Read before taking the lock: a key-store read may be slow.
	logins, err := d.snapshotLogins(ctx, s.Users, log)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.freshLocked() {
		return ErrSnapshotTarget
	}
	defer func() {
		if err != nil {
			d.reset()
		}
	}()
	if err := d.model.Restore(s.Model); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	d.accounts = make(map[string]*dirServiceAccount, h.Accounts)
	d.restoreState(s, logins)
	for n := 0; n < h.Accounts; {
		var chunk []snapshotAccount
		if err := dec.Decode(&chunk); err != nil {
			return fmt.Errorf("snapshot: account %d of %d: %w", n, h.Accounts, err)
		}
		if len(chunk) == 0 {
			return fmt.Errorf("snapshot: account %d of %d: empty chunk", n, h.Accounts)
		}
		for i := range chunk {
			d.restoreAccount(&chunk[i])
		}
		n += len(chunk)
	}
	for _, t := range s.Tokens {
		if t.Account {
			if d.accountTokens == nil {
				d.accountTokens = map[string][]string{}
			}
			d.accountTokens[t.Owner] = append(d.accountTokens[t.Owner], t.Verifier)
		}
	}
	for _, n := range s.Named {
		if sa := d.accounts[n.Account]; sa != nil {
			d.named[[2]string{sa.tenant, n.Name}] = sa
		}
	}
	d.seq = h.Sequence
	return nil
}

// fresh reports whether the directory has applied nothing yet.
func (d *Directory) fresh() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.freshLocked()
}

// freshLocked is fresh for callers holding mu.
func (d *Directory) freshLocked() bool {
	return d.seq == 0 && len(d.accounts) == 0 && len(d.users) == 0 && len(d.tenantIDs) == 0
}

// revealed is a user's logins read again from the event they came from.
type revealed struct {
	p   events.Personal
	env events.Envelope
	err error
}

// snapshotLogins reads users' logins again from the events they came from.
func (d *Directory) snapshotLogins(ctx context.Context, users []snapshotUser, log SnapshotLog) (map[string]revealed, error) {
	out := map[string]revealed{}
	for _, u := range users {
		if u.PersonalSeq == 0 {
			continue
		}
		env, err := log.Get(ctx, u.PersonalSeq)
		if err != nil {
			return nil, fmt.Errorf("snapshot: logins of user %s: %w", u.ID, err)
		}
		e, err := events.Decode(env)
		if err != nil {
			return nil, fmt.Errorf("snapshot: logins of user %s: %w", u.ID, err)
		}
		if env.Subject != u.ID {
			return nil, fmt.Errorf("%w: event %d is not about user %s", ErrSnapshotMismatch, u.PersonalSeq, u.ID)
		}
		p, err := d.reveal(env, e)
		out[u.ID] = revealed{p: p, env: events.Envelope{Sequence: env.Sequence, Type: env.Type}, err: err}
	}
	return out, nil
}

// restoreState puts everything but the service accounts. Callers hold mu.
func (d *Directory) restoreState(s snapshotState, logins map[string]revealed) {
	for _, t := range s.Tenants {
		d.tenantIDs[t] = struct{}{}
	}
	for _, f := range s.Failures {
		d.failures = append(d.failures, ApplyFailure{Sequence: f.Sequence, Type: f.Type, Err: errors.New(f.Err)})
	}
	for _, su := range s.Users {
		u := &dirUser{id: su.ID, active: su.Active, verifier: su.Verifier, tenants: su.Tenants, bindings: su.Bindings,
			superadmin: su.Superadmin, personalSeq: su.PersonalSeq}
		d.users[u.id] = u
		if l, ok := logins[u.id]; ok {
			// As Apply does; snapshots keep no failure of this read.
			d.indexRevealed(l.env, u, l.p, l.err)
		}
		d.putUser(u)
		for _, t := range u.tenants {
			d.model.GrantTenant(u.id, t)
		}
	}
	for _, t := range s.Tokens {
		d.tokens[t.Verifier] = dirAPIToken{id: t.ID, owner: t.Owner, account: t.Account, expires: t.Expires}
		d.tokenIDs[t.ID] = t.Verifier
	}
}

// restoreAccount puts one service account as Apply would have left it,
// sharing strings and lists as Apply does. Callers hold mu.
func (d *Directory) restoreAccount(a *snapshotAccount) {
	sa := &dirServiceAccount{id: a.ID, tenant: d.name(a.Tenant), otherClientID: a.ClientID, scope: d.ownScope(a.Scope),
		roles: d.ownNames(a.Roles), active: a.Active, generation: a.Generation, name: a.Name}
	if len(a.Revoked) > 0 {
		sa.revoked = make(map[string]time.Time, len(a.Revoked))
		for _, r := range a.Revoked {
			sa.revoked[r.Token] = r.Expires
		}
	}
	for _, c := range a.Creds {
		sa.creds = append(sa.creds, dirCredential{id: c.ID, verifier: c.Verifier, expires: c.Expires})
	}
	if len(a.Bound) > 0 {
		sa.bound = make(map[string]auth.Binding, len(a.Bound))
		for _, b := range a.Bound {
			sa.bound[b.ID] = auth.Binding{Role: d.name(b.Binding.Role), Tenant: sa.tenant, Scope: d.ownScope(b.Binding.Scope)}
			d.boundTo[b.ID] = sa
		}
	}
	key := shareKey(sa)
	d.rebuild(sa, key)
	d.accounts[sa.id] = sa
	if sa.otherClientID != "" {
		d.clients[sa.otherClientID] = sa
	}
	d.putAccount(sa, key)
}

// reset empties a directory a failed load half filled. Callers hold mu.
func (d *Directory) reset() {
	n := NewDirectory(WithPersonal(d.personal))
	d.seq, d.accounts, d.clients, d.users = 0, n.accounts, n.clients, n.users
	d.tokens, d.tokenIDs, d.logins, d.tenantIDs = n.tokens, n.tokenIDs, n.logins, n.tenantIDs
	d.names, d.bindingSets, d.roleSets, d.nameLists = n.names, n.bindingSets, n.roleSets, n.nameLists
	d.boundTo, d.named, d.failures, d.accountTokens = n.boundTo, n.named, nil, nil
	d.model.Reset()
}

// WriteSnapshotFile writes a snapshot to path atomically (a file beside it,
// then a rename), readable by its owner only, followed by its HMAC-SHA256
// under key, so that a snapshot changed on disk, or written by another
// instance, is refused by LoadSnapshotFile.
func (d *Directory) WriteSnapshotFile(path, stream string, key []byte) error {
	if len(key) == 0 {
		return errors.New("snapshot: no MAC key")
	}
	// WriteSnapshot's errors say "snapshot" already, the file system's
	// name the path.
	return atomicfile.Write(path, func(w io.Writer) error {
		mac := hmac.New(sha256.New, key)
		if err := d.WriteSnapshot(io.MultiWriter(w, mac), stream); err != nil {
			return err
		}
		if _, err := w.Write(mac.Sum(nil)); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		return nil
	})
}

// LoadSnapshotFile is LoadSnapshot from a file WriteSnapshotFile wrote
// with key: its MAC is checked before anything is loaded
// (ErrSnapshotMismatch when it does not verify). A missing file is
// os.ErrNotExist.
func (d *Directory) LoadSnapshotFile(ctx context.Context, path string, log SnapshotLog, stream string, key []byte) error {
	if len(key) == 0 {
		return errors.New("snapshot: no MAC key")
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	size := fi.Size() - sha256.Size
	if size <= 0 {
		return fmt.Errorf("%w: %s is too short", ErrSnapshotMismatch, path)
	}
	mac := hmac.New(sha256.New, key)
	if _, err := io.Copy(mac, io.NewSectionReader(f, 0, size)); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	want := make([]byte, sha256.Size)
	if _, err := f.ReadAt(want, size); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if !hmac.Equal(mac.Sum(nil), want) {
		return fmt.Errorf("%w: %s does not carry this instance's MAC (changed since written, or written under another key-encryption key)", ErrSnapshotMismatch, path)
	}
	return d.LoadSnapshot(ctx, io.NewSectionReader(f, 0, size), log, stream)
}
