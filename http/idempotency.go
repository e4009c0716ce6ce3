package http

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
)

// IdempotencyKeyHeader is the request header clients set to make a write
// safe to retry.
const IdempotencyKeyHeader = "Idempotency-Key"

// ReplayedHeader is "true" on a response replayed from an earlier request.
const ReplayedHeader = "Idempotent-Replayed"

// secretPrefixes start every secret Keyhold makes. A recorded response
// is searched for string values with them even where no handler declared
// a secret field: a forgotten SecretFields must not put a secret into the
// idempotency table.
var secretPrefixes = []string{auth.PrefixClientSecret, auth.PrefixAPIToken, auth.PrefixInvitation}

// secretsKey holds the *secretSet of the request being recorded.
type secretsKey struct{}

type secretSet struct{ paths [][]string }

// SecretFields declares that the JSON response to r carries one-time
// secrets at these field paths (dot-separated, "clientSecret",
// "credential.secret"): the idempotency store records the response with
// them as null, so a replay never shows a secret again, and says so with
// Keyhold-Redacted. Call it before writing the response; without an
// idempotency key it does nothing.
func SecretFields(r *http.Request, paths ...string) {
	set, _ := r.Context().Value(secretsKey{}).(*secretSet)
	if set == nil {
		return
	}
	for _, p := range paths {
		set.paths = append(set.paths, strings.Split(p, "."))
	}
}

// Idempotency records the outcome of writes sent with an Idempotency-Key,
// per caller, for a day. Repeating the key with the same method, path and
// body returns the first response (status, body, Location) and changes
// nothing; the same key with a different request is rejected with 422; a
// repeat while the first is still running gets 409. A request that never
// completed (its process died, or it failed with a 5xx) is run again by a
// repeat, with the id seed of its first attempt (see IDSeed). Responses
// are stored without one-time secrets. Safe for concurrent use and across
// replicas.
type Idempotency struct {
	db  *sqlx.DB
	ttl time.Duration
}

// NewIdempotency returns a store over the idempotency_keys table.
func NewIdempotency(db *sqlx.DB) *Idempotency {
	return &Idempotency{db: db, ttl: 24 * time.Hour}
}

// Sweep deletes expired records every interval until ctx ends.
func (i *Idempotency) Sweep(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = i.db.ExecContext(ctx, "DELETE FROM idempotency_keys WHERE created_at < now() - $1::interval", i.ttl.String())
		}
	}
}

type recorded struct {
	RequestHash string         `db:"request_hash"`
	Status      int            `db:"status"`
	Headers     []byte         `db:"headers"`
	Body        []byte         `db:"body"`
	CreatedAt   time.Time      `db:"created_at"`
	CompletedAt sql.NullTime   `db:"completed_at"`
	IDSeed      sql.NullString `db:"id_seed"`
	LeaseUntil  sql.NullTime   `db:"lease_until"`
}

// idempotencyLease is how long a claim on a key stands while its request
// runs; a repeat meanwhile gets 409. A claim whose lease ran out (its
// process died, or it failed) is taken over by the next repeat, with the
// same id seed.
const idempotencyLease = time.Minute

// MarkReplayed marks a response that answers with what an earlier attempt
// of the same keyed request did (found through its id seed) rather than
// with a change made now.
func MarkReplayed(w http.ResponseWriter) { w.Header().Set(ReplayedHeader, "true") }

type idSeedKey struct{}

// IDSeed returns the id seed of the keyed request ctx belongs to, or "".
// Commands give what they create this id (commands.Meta.IDSeed), so every
// attempt of one keyed request creates the same thing once.
func IDSeed(ctx context.Context) string {
	s, _ := ctx.Value(idSeedKey{}).(string)
	return s
}

// bufferedWriter records the status like statusRecorder and keeps a copy
// of the body for the idempotency record.
type bufferedWriter struct {
	statusRecorder
	buf bytes.Buffer
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.buf.Write(p)
	return b.statusRecorder.Write(p)
}

func validKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func (i *Idempotency) middleware(onErr ErrorWriter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(r.Header.Values(IdempotencyKeyHeader)) > 1 {
				onErr(w, r, http.StatusBadRequest, IdempotencyKeyHeader, "send the "+IdempotencyKeyHeader+" header once")
				return
			}
			key := r.Header.Get(IdempotencyKeyHeader)
			if key == "" || r.Method == http.MethodGet || r.Method == http.MethodHead {
				next.ServeHTTP(w, r)
				return
			}
			if !validKey(key) {
				onErr(w, r, http.StatusBadRequest, IdempotencyKeyHeader, "Idempotency-Key must be 1-255 printable ASCII characters")
				return
			}
			p, _ := PrincipalFrom(r.Context())
			body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
			if err != nil {
				onErr(w, r, http.StatusBadRequest, "", "could not read the request body")
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			kh := hash(p.Tenant, p.Kind, p.ID, key)
			rh := hash(r.Method, r.URL.Path, string(body))
			ctx := r.Context()

			prev, seed, fresh, err := i.begin(ctx, kh, rh)
			if err != nil {
				onErr(w, r, http.StatusServiceUnavailable, "", "idempotency store unavailable; retry later")
				return
			}
			if !fresh {
				switch {
				case prev.RequestHash != rh:
					onErr(w, r, http.StatusUnprocessableEntity, IdempotencyKeyHeader, "this Idempotency-Key was already used for a different request; use a new key")
				case !prev.CompletedAt.Valid:
					onErr(w, r, http.StatusConflict, IdempotencyKeyHeader, "a request with this Idempotency-Key is still being processed; retry shortly")
				default:
					replay(w, prev)
				}
				return
			}
			bw := &bufferedWriter{statusRecorder: statusRecorder{ResponseWriter: w}}
			completed := false
			defer func() {
				// The request may have reached the log even so: the row and its
				// id seed stay, and a retry takes the claim over at once.
				if !completed {
					_, _ = i.db.ExecContext(context.WithoutCancel(ctx), "UPDATE idempotency_keys SET lease_until = now() WHERE key_hash = $1", kh)
				}
			}()
			secrets := &secretSet{}
			rctx := context.WithValue(context.WithValue(ctx, idSeedKey{}, seed), secretsKey{}, secrets)
			next.ServeHTTP(bw, r.WithContext(rctx))
			if bw.status >= 500 || bw.status == 0 {
				return // let the client retry with the same key
			}
			hdr := map[string]string{}
			for _, h := range []string{"Content-Type", "Location", SequenceHeader} {
				if v := w.Header().Get(h); v != "" {
					hdr[h] = v
				}
			}
			stored, redacted := redact(bw.buf.Bytes(), secrets.paths)
			if redacted {
				hdr["Keyhold-Redacted"] = "one-time secrets are not replayed"
			}
			hj, _ := json.Marshal(hdr)
			_, err = i.db.ExecContext(context.WithoutCancel(ctx), `UPDATE idempotency_keys SET status = $2, headers = $3, body = $4, completed_at = now() WHERE key_hash = $1`,
				kh, bw.status, string(hj), stored)
			completed = err == nil
		})
	}
}

// begin claims the key with a new id seed, or returns the earlier record.
// A claim whose request is not completed and whose lease ran out is taken
// over with its id seed, so the retry creates what the first attempt
// created, or finds it created. Expired records are replaced.
func (i *Idempotency) begin(ctx context.Context, kh, rh string) (prev recorded, seed string, fresh bool, err error) {
	for attempt := 0; attempt < 3; attempt++ {
		seed = events.NewID()
		res, err := i.db.ExecContext(ctx, `INSERT INTO idempotency_keys (key_hash, request_hash, id_seed, lease_until)
			VALUES ($1, $2, $3, now() + $4::interval) ON CONFLICT (key_hash) DO NOTHING`, kh, rh, seed, idempotencyLease.String())
		if err != nil {
			return recorded{}, "", false, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return recorded{}, seed, true, nil
		}
		err = i.db.GetContext(ctx, &prev, `SELECT request_hash, status, headers, body, created_at, completed_at, id_seed, lease_until
			FROM idempotency_keys WHERE key_hash = $1`, kh)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return recorded{}, "", false, err
		}
		if time.Since(prev.CreatedAt) > i.ttl {
			_, _ = i.db.ExecContext(ctx, "DELETE FROM idempotency_keys WHERE key_hash = $1 AND created_at = $2", kh, prev.CreatedAt)
			continue
		}
		if prev.CompletedAt.Valid || prev.RequestHash != rh {
			return prev, "", false, nil
		}
		// Not completed: take the claim over if its lease ran out. Rows
		// from before leases count a minute from their creation; rows
		// from before seeds get one now, and with it no memory of what
		// their first attempt created.
		var taken string
		err = i.db.GetContext(ctx, &taken, `UPDATE idempotency_keys
			SET lease_until = now() + $2::interval, id_seed = COALESCE(id_seed, $3)
			WHERE key_hash = $1 AND completed_at IS NULL
			  AND COALESCE(lease_until, created_at + interval '1 minute') <= now()
			RETURNING id_seed`, kh, idempotencyLease.String(), seed)
		if errors.Is(err, sql.ErrNoRows) {
			return prev, "", false, nil // still running
		}
		if err != nil {
			return recorded{}, "", false, err
		}
		return recorded{}, taken, true, nil
	}
	return recorded{}, "", false, errors.New("idempotency key contended")
}

func replay(w http.ResponseWriter, prev recorded) {
	var hdr map[string]string
	_ = json.Unmarshal(prev.Headers, &hdr)
	for k, v := range hdr {
		w.Header().Set(k, v)
	}
	w.Header().Set(ReplayedHeader, "true")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(prev.Status)
	_, _ = w.Write(prev.Body)
}

// redact nulls the declared secret fields of a JSON body, and any string
// value holding a Keyhold secret wherever it is. It reports whether it
// changed anything; a body that is not JSON is kept as it is (error
// bodies of other shapes hold no secrets).
func redact(body []byte, paths [][]string) ([]byte, bool) {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers come back as they were sent
	if dec.Decode(&doc) != nil {
		return body, false
	}
	changed := false
	for _, p := range paths {
		changed = nullAt(doc, p) || changed
	}
	doc, found := scrub(doc)
	if !changed && !found {
		return body, false
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, true
	}
	return append(out, '\n'), true
}

// nullAt sets the field at path to null, reporting whether it was there.
func nullAt(doc any, path []string) bool {
	m, ok := doc.(map[string]any)
	if !ok || len(path) == 0 {
		return false
	}
	v, ok := m[path[0]]
	if !ok {
		return false
	}
	if len(path) == 1 {
		m[path[0]] = nil
		return true
	}
	return nullAt(v, path[1:])
}

// scrub replaces string values that hold a Keyhold secret with null.
func scrub(v any) (any, bool) {
	switch v := v.(type) {
	case string:
		for _, p := range secretPrefixes {
			if strings.Contains(v, p) {
				return nil, true
			}
		}
	case map[string]any:
		found := false
		for k, e := range v {
			var f bool
			if v[k], f = scrub(e); f {
				found = true
			}
		}
		return v, found
	case []any:
		found := false
		for i, e := range v {
			var f bool
			if v[i], f = scrub(e); f {
				found = true
			}
		}
		return v, found
	}
	return v, false
}

// Redact blanks the recorded bodies that hold any of values (in plain or
// JSON-escaped form), for personal data just erased: the rows stay, so a
// retry still replays the status instead of running again, but its body
// is gone (Keyhold-Redacted says so). It returns how many rows changed.
func (i *Idempotency) Redact(ctx context.Context, values ...string) (int64, error) {
	var needles [][]byte
	for _, v := range values {
		if len(v) < 3 { // too short to tell apart from anything else
			continue
		}
		needles = append(needles, []byte(v))
		if esc, err := json.Marshal(v); err == nil {
			if e := esc[1 : len(esc)-1]; !bytes.Equal(e, []byte(v)) {
				needles = append(needles, e)
			}
		}
	}
	if len(needles) == 0 {
		return 0, nil
	}
	res, err := i.db.ExecContext(ctx, `UPDATE idempotency_keys
		SET body = NULL, headers = headers || '{"Keyhold-Redacted": "personal data erased since"}'::jsonb
		WHERE body IS NOT NULL AND EXISTS (SELECT 1 FROM unnest($1::bytea[]) AS n WHERE position(n IN body) > 0)`, pq.Array(needles))
	if err != nil {
		return 0, fmt.Errorf("redact idempotent responses: %w", err)
	}
	return res.RowsAffected()
}

func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
