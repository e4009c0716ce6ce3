package kestra

import (
	"net/http"

	khttp "github.com/keyhold/keyhold/http"
)

// noBody is the request of a write that takes no body and no query
// parameters (a DELETE, a PUT of the path alone).
type noBody struct{}

// items is the request of a write whose body is a JSON array of T.
type items[T any] struct {
	Items []T `json:"items"`
}

func (items[T]) array() {}

// arrayBody is the request of a write whose body is a JSON array (items).
type arrayBody interface{ array() }

// answer writes a write's response once the read side has applied the
// write. An answer that reads the read side reports its errors itself.
type answer func(w http.ResponseWriter, r *http.Request)

// withStatus answers with status and no body.
func withStatus(status int) answer {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }
}

// withJSON answers with status and v as a JSON body.
func withJSON(status int, v any) answer {
	return func(w http.ResponseWriter, _ *http.Request) { khttp.WriteJSON(w, status, v) }
}

// write is a write route's course: it reads the request into a Req (the
// JSON object body, see decode; a JSON array for items, see decodeArray;
// for noBody nothing, and query parameters are refused) and calls do,
// which maps the request to commands, runs them and maps their result to
// an answer. Once the read side has applied the sequence do returns,
// write gives the answer. An error from reading the request or from do
// goes to fail, and nothing else is written.
func write[Req any](h handlers, w http.ResponseWriter, r *http.Request, do func(req Req) (uint64, answer, error)) {
	var req Req
	var err error
	switch any(req).(type) {
	case noBody:
		err = noQuery(r)
	case arrayBody:
		err = decodeArray(w, r, &req)
	default:
		_, err = decode(w, r, &req)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	seq, ans, err := do(req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.kit.AwaitRead(r.Context(), w, seq)
	ans(w, r)
}

// read is a read route's course for a route without query parameters:
// get reads the read side and maps what it found to the answer, which is
// the 200 JSON response; its error goes to fail.
func read(h handlers, w http.ResponseWriter, r *http.Request, get func() (any, error)) {
	if err := noQuery(r); err != nil {
		h.fail(w, r, err)
		return
	}
	v, err := get()
	if err != nil {
		h.fail(w, r, err)
		return
	}
	khttp.WriteJSON(w, http.StatusOK, v)
}
