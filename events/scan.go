package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// Batched direct gets (JetStream 2.11+): one request to the stream's
// direct-get subject returns up to batch messages matching next_by_subj
// from seq, then an end-of-batch status carrying how many are left. No
// consumer is created, so nothing is left behind on the server whatever
// the reader does, and the stream serves them without the JetStream API
// queue that consumer creation goes through.
const (
	directGetPrefix = "$JS.API.DIRECT.GET."
	hdrStatus       = "Status"
	hdrDescription  = "Description"
	hdrNumPending   = "Nats-Num-Pending"
	hdrSequence     = "Nats-Sequence"
	hdrSubject      = "Nats-Subject"
	statusEOB       = "204"
	statusNotFound  = "404"
	// Batches start small (an aggregate's history is a handful of events)
	// and double up to scanMaxBatch for long scans.
	scanFirstBatch = 32
	scanMaxBatch   = 1024
	// scanMaxBytes bounds what one batch holds in the client's buffer.
	scanMaxBytes = 1 << 20
	// maxSubjects bounds Subjects; the server answers at most 1024.
	maxSubjects = 1024
)

type directGetRequest struct {
	Seq       uint64     `json:"seq,omitempty"`
	NextFor   string     `json:"next_by_subj,omitempty"`
	Batch     int        `json:"batch,omitempty"`
	MaxBytes  int        `json:"max_bytes,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
	MultiLast []string   `json:"multi_last,omitempty"`
}

// Scan calls fn for each event stored under the filter's subjects, in
// stream order, from the filter's start until the end of the stream (events
// stored while Scan runs may be included). Unlike Read it creates no
// consumer: it pages through the stream with batched direct gets, one
// request per batch and subject, so a reader that stops, fails or is
// cancelled leaves nothing behind on the server. Each subject is best a
// literal one (see Subjects): JetStream finds a literal subject's next
// message from its index, while a wildcard may walk the stream. Undecodable
// messages and fn's ErrStop are handled as by Read.
func (s *Store) Scan(ctx context.Context, f Filter, fn func(Envelope) error) error {
	subjects := f.Subjects
	if len(subjects) == 0 {
		subjects = []string{s.opts.prefix + ".>"}
	}
	in, err := s.newInbox(scanMaxBatch + 1)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	defer in.close()
	cursors := make([]*scanCursor, len(subjects))
	for i, subj := range subjects {
		cursors[i] = &scanCursor{store: s, in: in, subject: subj, next: f.StartSeq, batch: scanFirstBatch}
		if f.StartSeq <= 1 && f.StartTime != nil {
			t := *f.StartTime
			cursors[i].startTime = &t
		}
	}
	for {
		// Merge the subjects' pages by sequence: fill each empty buffer,
		// then deliver the lowest head.
		var low *scanCursor
		for _, c := range cursors {
			if len(c.buf) == 0 && !c.done {
				if err := c.fill(ctx); err != nil {
					return err
				}
			}
			if len(c.buf) > 0 && (low == nil || c.buf[0].Sequence < low.buf[0].Sequence) {
				low = c
			}
		}
		if low == nil {
			return nil
		}
		env := low.buf[0]
		low.buf = low.buf[1:]
		if err := fn(env); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
}

// scanCursor pages through one subject.
type scanCursor struct {
	store     *Store
	in        *inbox
	subject   string
	next      uint64     // first sequence of the next batch
	startTime *time.Time // for the first batch only
	batch     int
	buf       []Envelope
	done      bool
}

// fill asks for the next batch and reads it up to its end-of-batch status.
func (c *scanCursor) fill(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.store.opts.timeout)
		defer cancel()
	}
	req := directGetRequest{NextFor: c.subject, Batch: c.batch, MaxBytes: scanMaxBytes, Seq: c.next, StartTime: c.startTime}
	if req.StartTime != nil {
		req.Seq = 0
	}
	c.startTime = nil
	c.batch = min(2*c.batch, scanMaxBatch)
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("scan %s: %w", c.subject, err)
	}
	if err := c.store.nc.PublishRequest(directGetPrefix+c.store.opts.stream, c.in.sub.Subject, body); err != nil {
		return fmt.Errorf("scan %s: %w", c.subject, err)
	}
	for {
		msg, err := c.in.next(ctx)
		if err != nil {
			return fmt.Errorf("scan %s: %w", c.subject, err)
		}
		if status := msg.Header.Get(hdrStatus); status != "" {
			switch status {
			case statusEOB:
				if msg.Header.Get(hdrNumPending) == "0" {
					c.done = true
				}
				return nil
			case statusNotFound:
				c.done = true
				return nil
			}
			return fmt.Errorf("scan %s: direct get answered %s %s", c.subject, status, msg.Header.Get(hdrDescription))
		}
		seq, err := strconv.ParseUint(msg.Header.Get(hdrSequence), 10, 64)
		if err != nil {
			return fmt.Errorf("scan %s: direct get without a sequence", c.subject)
		}
		subject := msg.Header.Get(hdrSubject)
		env, err := decodeRaw(subject, seq, msg.Data)
		if err != nil {
			env = undecodable(subject, seq)
		}
		c.buf = append(c.buf, env)
		c.next = seq + 1
	}
}

// Subjects returns the subjects holding at least one event that match
// filter (a NATS subject filter), in the order of their last events, with
// one direct get and no consumer. It answers from JetStream's subject
// index, so resolving a wildcard such as keyhold.*.*.<id> this way and
// scanning the literal subjects is cheap where scanning the wildcard is
// not. More than 1024 matching subjects is an error.
func (s *Store) Subjects(ctx context.Context, filter string) ([]string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.timeout)
		defer cancel()
	}
	body, err := json.Marshal(directGetRequest{MultiLast: []string{filter}, Batch: maxSubjects})
	if err != nil {
		return nil, fmt.Errorf("subjects %s: %w", filter, err)
	}
	in, err := s.newInbox(maxSubjects + 1)
	if err != nil {
		return nil, fmt.Errorf("subjects %s: %w", filter, err)
	}
	defer in.close()
	if err := s.nc.PublishRequest(directGetPrefix+s.opts.stream, in.sub.Subject, body); err != nil {
		return nil, fmt.Errorf("subjects %s: %w", filter, err)
	}
	var out []string
	for {
		msg, err := in.next(ctx)
		if err != nil {
			return nil, fmt.Errorf("subjects %s: %w", filter, err)
		}
		switch status := msg.Header.Get(hdrStatus); status {
		case "":
			out = append(out, msg.Header.Get(hdrSubject))
		case statusEOB, statusNotFound:
			return out, nil
		default:
			return nil, fmt.Errorf("subjects %s: direct get answered %s %s", filter, status, msg.Header.Get(hdrDescription))
		}
	}
}

// inbox is a reply subscription delivering into a channel with room for
// one whole answer. SubscribeSync would give every request nats.go's
// default 64k-message channel, half a megabyte to allocate and zero per
// read, which dominated an aggregate's audit read. A direct get answers at
// most its batch plus an end-of-batch status, and the cursors of a Scan
// ask one at a time, so room for the largest batch plus one never
// overflows (an overflow would drop a message: a slow consumer).
type inbox struct {
	sub *nats.Subscription
	ch  chan *nats.Msg
}

// newInbox subscribes a new reply inbox with room for room messages.
func (s *Store) newInbox(room int) (*inbox, error) {
	ch := make(chan *nats.Msg, room)
	sub, err := s.nc.ChanSubscribe(s.nc.NewRespInbox(), ch)
	if err != nil {
		return nil, err
	}
	return &inbox{sub: sub, ch: ch}, nil
}

// next returns the next reply, or ctx's error when ctx ends first.
func (in *inbox) next(ctx context.Context) (*nats.Msg, error) {
	select {
	case msg := <-in.ch:
		return msg, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (in *inbox) close() { _ = in.sub.Unsubscribe() }
