package http

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/jmoiron/sqlx"
)

// IdempotencyKeyHeader is the request header clients set to make a write
// safe to retry.
const IdempotencyKeyHeader = "Idempotency-Key"

// ReplayedHeader is "true" on a response replayed from an earlier request.
const ReplayedHeader = "Idempotent-Replayed"

// secretFields are never stored with a recorded response: a secret is
// shown once, so a replay carries the field as null.
var secretFields = []string{"clientSecret", "client_secret", "secret", "token", "password", "access_token"}

// Idempotency records the outcome of writes sent with an Idempotency-Key,
// per caller, for a day. Repeating the key with the same method, path and
// body returns the first response (status, body, Location) and changes
// nothing; the same key with a different request is rejected with 422; a
// repeat while the first is still running gets 409. Responses are stored
// without one-time secrets. Safe for concurrent use and across replicas.
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
	RequestHash string       `db:"request_hash"`
	Status      int          `db:"status"`
	Headers     []byte       `db:"headers"`
	Body        []byte       `db:"body"`
	CreatedAt   time.Time    `db:"created_at"`
	CompletedAt sql.NullTime `db:"completed_at"`
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

			prev, fresh, err := i.begin(ctx, kh, rh)
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
				if !completed {
					_, _ = i.db.ExecContext(context.WithoutCancel(ctx), "DELETE FROM idempotency_keys WHERE key_hash = $1", kh)
				}
			}()
			next.ServeHTTP(bw, r)
			if bw.status >= 500 || bw.status == 0 {
				return // let the client retry with the same key
			}
			hdr := map[string]string{}
			for _, h := range []string{"Content-Type", "Location", SequenceHeader} {
				if v := w.Header().Get(h); v != "" {
					hdr[h] = v
				}
			}
			stored, redacted := redact(bw.buf.Bytes())
			if redacted {
				hdr["Keyhold-Redacted"] = "one-time secrets are not replayed"
			}
			hj, _ := json.Marshal(hdr)
			_, err = i.db.ExecContext(context.WithoutCancel(ctx), `UPDATE idempotency_keys SET status = $2, headers = $3, body = $4, completed_at = now() WHERE key_hash = $1`,
				kh, bw.status, hj, stored)
			completed = err == nil
		})
	}
}

// begin claims the key, or returns the earlier record. Abandoned claims
// (a crash mid-request) and expired records are taken over.
func (i *Idempotency) begin(ctx context.Context, kh, rh string) (recorded, bool, error) {
	for attempt := 0; attempt < 3; attempt++ {
		res, err := i.db.ExecContext(ctx, `INSERT INTO idempotency_keys (key_hash, request_hash) VALUES ($1, $2) ON CONFLICT (key_hash) DO NOTHING`, kh, rh)
		if err != nil {
			return recorded{}, false, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return recorded{}, true, nil
		}
		var prev recorded
		err = i.db.GetContext(ctx, &prev, `SELECT request_hash, status, headers, body, created_at, completed_at FROM idempotency_keys WHERE key_hash = $1`, kh)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return recorded{}, false, err
		}
		stale := !prev.CompletedAt.Valid && time.Since(prev.CreatedAt) > time.Minute
		if stale || time.Since(prev.CreatedAt) > i.ttl {
			_, _ = i.db.ExecContext(ctx, "DELETE FROM idempotency_keys WHERE key_hash = $1 AND created_at = $2", kh, prev.CreatedAt)
			continue
		}
		return prev, false, nil
	}
	return recorded{}, false, errors.New("idempotency key contended")
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

// redact nulls secret fields at the top level and one level down.
func redact(body []byte) ([]byte, bool) {
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		return body, false
	}
	changed := false
	null := json.RawMessage("null")
	for k, v := range doc {
		for _, s := range secretFields {
			if k == s {
				doc[k] = null
				changed = true
			}
		}
		var inner map[string]json.RawMessage
		if json.Unmarshal(v, &inner) == nil {
			innerChanged := false
			for ik := range inner {
				for _, s := range secretFields {
					if ik == s {
						inner[ik] = null
						innerChanged = true
					}
				}
			}
			if innerChanged {
				doc[k], _ = json.Marshal(inner)
				changed = true
			}
		}
	}
	if !changed {
		return body, false
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, true
	}
	return append(out, '\n'), true
}

func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
