package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrStop, returned by a Read callback, ends the read early without error.
var ErrStop = errors.New("events: stop reading")

// Filter selects events to read.
type Filter struct {
	// Subjects are NATS subject filters; empty means every event.
	Subjects []string
	// StartSeq starts at this stream sequence (inclusive); 0 or 1 means the beginning.
	StartSeq uint64
	// StartTime, when set and StartSeq is 0, starts at the first event stored at or after it.
	StartTime *time.Time
}

// TenantSubjects returns the filter of every aggregate of one tenant.
func (s *Store) TenantSubjects(tenant string) string {
	return s.opts.prefix + "." + tenant + ".>"
}

// AggregateSubjects returns the filter of one aggregate id in any tenant.
func (s *Store) AggregateSubjects(id string) string {
	return s.opts.prefix + ".*.*." + id
}

// consumerInactive is how long the server keeps a reader's consumer that
// nobody pulls from: the safety net for a consumer that could not be
// deleted (a process killed mid-read).
const consumerInactive = 30 * time.Second

func (s *Store) orderedConfig(f Filter) jetstream.OrderedConsumerConfig {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: f.Subjects, InactiveThreshold: consumerInactive}
	switch {
	case f.StartSeq > 1:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = f.StartSeq
	case f.StartTime != nil:
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		t := *f.StartTime
		cfg.OptStartTime = &t
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	return cfg
}

// TypeUndecodable is the Type of an envelope standing for a stored message
// that could not be decoded; it carries only Sequence, Subject and
// Aggregate. Decode fails on it with ErrUndecodable, so a reader records
// and skips it like any event it cannot apply.
const TypeUndecodable = "<undecodable>"

// undecodable returns the envelope standing for the undecodable message
// stored at seq under subject.
func undecodable(subject string, seq uint64) Envelope {
	env := Envelope{Type: TypeUndecodable, Sequence: seq}
	env.Tenant, env.Aggregate, env.Subject, _ = ParseSubject(subject)
	return env
}

// Read calls fn for each matching event in stream order, from the filter's
// start up to the last event stored when Read began. A stored message that
// cannot be decoded is delivered as a TypeUndecodable envelope, so one bad
// message never stops a reader. fn returning ErrStop ends the read early
// with a nil error; any other error ends it with that error. Read uses one
// ordered consumer for the whole call and deletes it before returning,
// however the read ends (see Scan for reads that need no consumer).
func (s *Store) Read(ctx context.Context, f Filter, fn func(Envelope) error) error {
	cons, err := s.js.OrderedConsumer(ctx, s.opts.stream, s.orderedConfig(f))
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	defer s.deleteConsumer(cons)
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("read: consumer info: %w", err)
	}
	if info.NumPending == 0 {
		return nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2000))
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	defer it.Stop()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			it.Stop()
		case <-done:
		}
	}()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read: %w", err)
		}
		seq, pending, err := position(msg)
		if err != nil {
			return fmt.Errorf("read: metadata: %w", err)
		}
		env, err := decodeRaw(msg.Subject(), seq, msg.Data())
		if err != nil {
			env = undecodable(msg.Subject(), seq)
		}
		if err := fn(env); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
		if pending == 0 {
			return nil
		}
	}
}

// Follow delivers matching events from the filter's start, then each new one
// as it is stored, to fn, one at a time and in stream order, until ctx ends
// or stop is called. A decode failure is delivered as a TypeUndecodable
// envelope with err non-nil so the caller can record it.
func (s *Store) Follow(ctx context.Context, f Filter, fn func(env Envelope, err error)) (stop func(), err error) {
	cons, err := s.js.OrderedConsumer(ctx, s.opts.stream, s.orderedConfig(f))
	if err != nil {
		return nil, fmt.Errorf("follow: %w", err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		seq, _, err := position(msg)
		if err != nil {
			fn(Envelope{}, err)
			return
		}
		env, err := decodeRaw(msg.Subject(), seq, msg.Data())
		if err != nil {
			env = undecodable(msg.Subject(), seq)
		}
		fn(env, err)
	}, jetstream.PullMaxMessages(1000))
	if err != nil {
		return nil, fmt.Errorf("follow: %w", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cc.Stop()
			s.deleteConsumer(cons)
		})
	}
	go func() {
		<-ctx.Done()
		stop()
	}()
	return stop, nil
}

// deleteConsumer deletes an ordered consumer's current server-side
// consumer. The client library only deletes the consumers it replaces;
// the last one would otherwise live on the server until its inactive
// threshold, and readers coming faster than that would pile them up to
// the server's consumer limit. Deleting is best effort: a consumer this
// misses still goes after consumerInactive.
func (s *Store) deleteConsumer(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	// The read's own context may be what ended it.
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.timeout)
	defer cancel()
	_ = s.js.DeleteConsumer(ctx, s.opts.stream, info.Name)
}

// position returns a consumed message's stream sequence and how many
// messages the consumer has pending after it. It reads them from the
// reply subject without allocating, as msg.Metadata would for every event
// read ($JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer
// seq>.<time>.<pending>, or with <domain>.<account hash> after ACK and a
// random token at the end), and falls back to Metadata for other forms.
func position(msg jetstream.Msg) (seq, pending uint64, err error) {
	if seq, pending, ok := parseAckReply(msg.Reply()); ok {
		return seq, pending, nil
	}
	meta, err := msg.Metadata()
	if err != nil {
		return 0, 0, err
	}
	return meta.Sequence.Stream, meta.NumPending, nil
}

func parseAckReply(reply string) (seq, pending uint64, ok bool) {
	var tok [12]string
	n := 0
	for n < len(tok) {
		t, rest, more := strings.Cut(reply, ".")
		tok[n] = t
		n++
		if !more {
			reply = ""
			break
		}
		reply = rest
	}
	if reply != "" || n < 9 || tok[0] != "$JS" || tok[1] != "ACK" {
		return 0, 0, false
	}
	first := 2 // the stream name's token
	switch n {
	case 9:
	case 11, 12:
		first = 4
	default:
		return 0, 0, false
	}
	seq, err1 := strconv.ParseUint(tok[first+3], 10, 64)
	pending, err2 := strconv.ParseUint(tok[first+6], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return seq, pending, true
}
