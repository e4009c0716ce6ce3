package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// wireTimeout bounds one request/response exchange of the load generator.
const wireTimeout = 20 * time.Second

// wireClient is the load generator's HTTP/1.1 client, in the manner of
// wrk: one keep-alive connection per worker, each request written with a
// single write, the response read with a bufio.Reader and its body kept in
// a buffer reused by the next request. On a 2-core machine net/http's
// client costs about as much CPU per request as the server's handling of
// a small one; measuring with it would charge the generator's cost to the
// server. Both sides of a comparison use this client.
//
// Worker w may only be used by one goroutine at a time; different workers
// may be used concurrently. A connection that saw an error is closed and
// dialled again by the worker's next request.
type wireClient struct {
	addr    string // host:port
	headers string // extra header lines, each ending in CRLF
	conns   []wireConn
}

type wireConn struct {
	c    net.Conn
	r    *bufio.Reader
	req  []byte
	body []byte
	stop func() bool
}

// wireResponse is a response read by wireClient. header and body alias
// the worker's buffers and are valid until its next request.
type wireResponse struct {
	status int
	header []byte // the header lines, without the status line
	body   []byte
}

// headerValue returns the first value of the named header (case
// insensitive), or "" without one.
func (r wireResponse) headerValue(name string) string {
	for line := range bytes.SplitSeq(r.header, []byte("\r\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(k), []byte(name)) {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}

// newWireClient returns a client of addr (host:port) for workers
// 0..workers-1, sending headers (name/value pairs) with every request.
func newWireClient(addr string, workers int, headers ...string) (*wireClient, error) {
	if len(headers)%2 != 0 {
		return nil, errors.New("bench: wire client headers come in name/value pairs")
	}
	var hb bytes.Buffer
	for i := 0; i < len(headers); i += 2 {
		fmt.Fprintf(&hb, "%s: %s\r\n", headers[i], headers[i+1])
	}
	return &wireClient{addr: addr, headers: hb.String(), conns: make([]wireConn, workers)}, nil
}

// Close closes every connection.
func (wc *wireClient) Close() {
	for i := range wc.conns {
		wc.conns[i].close()
	}
}

func (c *wireConn) close() {
	if c.c != nil {
		c.stop()
		_ = c.c.Close()
		c.c, c.r = nil, nil
	}
}

// do sends one request on worker w's connection and reads the response.
func (wc *wireClient) do(ctx context.Context, w int, method, path, body string) (wireResponse, error) {
	c := &wc.conns[w]
	if c.c == nil {
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", wc.addr)
		if err != nil {
			return wireResponse{}, err
		}
		c.c, c.r = conn, bufio.NewReaderSize(conn, 16<<10)
		// A cancelled run must not wait out the exchange's deadline.
		c.stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	}
	resp, closing, err := c.exchange(wc, method, path, body)
	if closing {
		c.close()
	}
	if err != nil {
		c.close()
		if ctx.Err() != nil {
			return wireResponse{}, ctx.Err()
		}
		return wireResponse{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp, nil
}

func (c *wireConn) exchange(wc *wireClient, method, path, body string) (resp wireResponse, closing bool, err error) {
	if err := c.c.SetDeadline(time.Now().Add(wireTimeout)); err != nil {
		return wireResponse{}, false, err
	}
	c.req = append(c.req[:0], method...)
	c.req = append(c.req, ' ')
	c.req = append(c.req, path...)
	c.req = append(c.req, " HTTP/1.1\r\nHost: "...)
	c.req = append(c.req, wc.addr...)
	c.req = append(c.req, "\r\n"...)
	c.req = append(c.req, wc.headers...)
	c.req = append(c.req, "Content-Length: "...)
	c.req = strconv.AppendInt(c.req, int64(len(body)), 10)
	c.req = append(c.req, "\r\n\r\n"...)
	c.req = append(c.req, body...)
	if _, err := c.c.Write(c.req); err != nil {
		return wireResponse{}, false, err
	}
	return c.read()
}

// read reads one response: status line, headers, then a body framed by
// Content-Length or chunked transfer coding. closing reports a response
// after which the server closes the connection.
func (c *wireConn) read() (resp wireResponse, closing bool, err error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return wireResponse{}, false, err
	}
	// "HTTP/1.1 201 Created\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return wireResponse{}, false, fmt.Errorf("malformed status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return wireResponse{}, false, fmt.Errorf("malformed status line %q", line)
	}
	// Headers are copied into the body buffer's spare room: ReadSlice's
	// result is only valid until the next read.
	c.body = c.body[:0]
	length, chunked := -1, false
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return wireResponse{}, false, err
		}
		if len(line) <= 2 {
			break
		}
		c.body = append(c.body, line...)
		k, v, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil || length < 0 {
				return wireResponse{}, false, fmt.Errorf("malformed Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			closing = bytes.EqualFold(v, []byte("close"))
		}
	}
	headerLen := len(c.body)
	switch {
	case chunked:
		err = c.readChunked()
	case length >= 0:
		c.body = append(c.body, make([]byte, length)...)
		_, err = io.ReadFull(c.r, c.body[headerLen:])
	default:
		err = errors.New("response without Content-Length or chunked body")
	}
	if err != nil {
		return wireResponse{}, false, err
	}
	return wireResponse{status: status, header: c.body[:headerLen], body: c.body[headerLen:]}, closing, nil
}

func (c *wireConn) readChunked() error {
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseUint(string(size), 16, 31)
		if err != nil {
			return fmt.Errorf("malformed chunk size %q", line)
		}
		if n == 0 {
			// Trailers, up to the empty line.
			for {
				line, err := c.r.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(line) <= 2 {
					return nil
				}
			}
		}
		start := len(c.body)
		c.body = append(c.body, make([]byte, n+2)...)
		if _, err := io.ReadFull(c.r, c.body[start:]); err != nil {
			return err
		}
		c.body = c.body[:len(c.body)-2]
	}
}

// wireStatusError describes an unexpected response, with the start of
// its body.
func wireStatusError(method, path string, resp wireResponse, want int) error {
	body := resp.body
	if len(body) > 512 {
		body = body[:512]
	}
	return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.status, want, body)
}
