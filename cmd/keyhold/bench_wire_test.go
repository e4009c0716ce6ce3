package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestWireClient checks the load generator's client against net/http's
// server: request line, headers and body arrive intact; responses framed
// by Content-Length or chunked coding are read whole; a response that
// closes the connection is still returned, and the next request dials
// again.
func TestWireClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo", r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization")+" ["+string(body)+"]")
		switch r.URL.Path {
		case "/chunked":
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, "first ")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "second")
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "bye")
		default:
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, "plain")
		}
	}))
	defer srv.Close()
	c, err := newWireClient(strings.TrimPrefix(srv.URL, "http://"), 1, "Authorization", "Bearer x")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	tests := []struct {
		path, body, wantBody string
		wantStatus           int
	}{
		{"/plain?a=1", `{"k":1}`, "plain", http.StatusCreated},
		{"/chunked", "", "first second", http.StatusAccepted},
		{"/close", "x", "bye", http.StatusOK},
		{"/plain", "after close", "plain", http.StatusCreated},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := c.do(ctx, 0, http.MethodPost, tt.path, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.status != tt.wantStatus || string(resp.body) != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.status, resp.body, tt.wantStatus, tt.wantBody)
			}
			if got, want := resp.headerValue("x-echo"), "POST "+tt.path+" Bearer x ["+tt.body+"]"; got != want {
				t.Errorf("server saw %q, want %q", got, want)
			}
		})
	}
	if _, err := newWireClient("127.0.0.1:1", 1, "odd"); err == nil {
		t.Error("an unpaired header was accepted")
	}
}
