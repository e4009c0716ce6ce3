package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	fastjson "github.com/segmentio/encoding/json"
)

// JetStream API error codes the store reacts to.
const (
	codeWrongLastSequence         = 10071
	codeWrongLastSequenceConstant = 10164
	codeExpectedSeqNotReady       = 10163
	codeClusterNotAvailable       = 10008
	codeBatchDuplicateMsgID       = 10201
)

// Header names used on published events.
const (
	hdrExpectedLastSubjSeq = "Nats-Expected-Last-Subject-Sequence"
	hdrMsgID               = "Nats-Msg-Id"
	hdrBatchID             = "Nats-Batch-Id"
	hdrBatchSeq            = "Nats-Batch-Sequence"
	hdrBatchCommit         = "Nats-Batch-Commit"
	hdrType                = "Keyhold-Type"
)

// Store appends events to and reads them from one JetStream stream.
// A Store is safe for concurrent use.
type Store struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	opts   options
}

type options struct {
	stream    string
	prefix    string
	replicas  int
	dupWindow time.Duration
	memory    bool
	timeout   time.Duration
}

// Option configures Open.
type Option func(*options) error

// WithStream sets the stream name (default KEYHOLD).
func WithStream(name string) Option {
	return func(o *options) error {
		if !ValidToken(name) {
			return fmt.Errorf("%w: stream name %q", ErrInvalidOption, name)
		}
		o.stream = name
		return nil
	}
}

// WithSubjectPrefix sets the first subject token (default keyhold). Tests
// use their own prefix and stream so they can share one server.
func WithSubjectPrefix(prefix string) Option {
	return func(o *options) error {
		if !ValidToken(prefix) {
			return fmt.Errorf("%w: subject prefix %q", ErrInvalidOption, prefix)
		}
		o.prefix = prefix
		return nil
	}
}

// WithReplicas sets the stream replica count (1 or 3 for a cluster).
func WithReplicas(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 5 {
			return fmt.Errorf("%w: replicas %d (want 1..5)", ErrInvalidOption, n)
		}
		o.replicas = n
		return nil
	}
}

// WithDuplicateWindow sets how long JetStream remembers message ids for
// idempotent publishing (default 10m).
func WithDuplicateWindow(d time.Duration) Option {
	return func(o *options) error {
		if d < time.Second || d > 7*24*time.Hour {
			return fmt.Errorf("%w: duplicate window %s", ErrInvalidOption, d)
		}
		o.dupWindow = d
		return nil
	}
}

// WithMemoryStorage keeps the stream in memory (benchmarks only).
func WithMemoryStorage() Option {
	return func(o *options) error { o.memory = true; return nil }
}

// Open creates or updates the stream (idempotently) and returns a Store.
func Open(ctx context.Context, nc *nats.Conn, opts ...Option) (*Store, error) {
	o := options{stream: "KEYHOLD", prefix: "keyhold", replicas: 1, dupWindow: 10 * time.Minute, timeout: 5 * time.Second}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	cfg := jetstream.StreamConfig{
		Name:               o.stream,
		Description:        "Keyhold event log",
		Subjects:           []string{o.prefix + ".>"},
		Retention:          jetstream.LimitsPolicy,
		Storage:            jetstream.FileStorage,
		Replicas:           o.replicas,
		Duplicates:         o.dupWindow,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		DenyDelete:         true,
		DenyPurge:          true,
	}
	if o.memory {
		cfg.Storage = jetstream.MemoryStorage
	}
	stream, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", o.stream, err)
	}
	return &Store{nc: nc, js: js, stream: stream, opts: o}, nil
}

// StreamName returns the stream's name.
func (s *Store) StreamName() string { return s.opts.stream }

// Prefix returns the first subject token.
func (s *Store) Prefix() string { return s.opts.prefix }

// JetStream returns the underlying JetStream context.
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// SubjectOf returns the subject of an aggregate in this store.
func (s *Store) SubjectOf(tenant, aggregate, id string) string {
	return Subject(s.opts.prefix, tenant, aggregate, id)
}

// Pending is one event to append.
type Pending struct {
	// Aggregate is the aggregate type (third subject token).
	Aggregate string
	Envelope  Envelope
	// Expect, when true, makes the append conditional: the aggregate's last
	// stored sequence must equal ExpectedSeq (0: the aggregate has no events).
	Expect      bool
	ExpectedSeq uint64
	// MsgID, when set, makes the publish idempotent within the duplicate window.
	MsgID string
}

// Appended reports where an append landed.
type Appended struct {
	// Sequence is the stream sequence of the last event appended.
	Sequence uint64
	// Duplicate is true when JetStream recognised the message id and stored
	// nothing new.
	Duplicate bool
}

type pubAck struct {
	Stream    string `json:"stream"`
	Sequence  uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate,omitempty"`
	BatchSize int    `json:"count,omitempty"`
	Error     *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error,omitempty"`
}

// Append stores events atomically: either all of them or none. A single
// event is a plain conditional publish; several are one JetStream atomic
// batch, so a uniqueness claim and the event using it can never be split by
// a crash. Conditional events fail with ErrConflict when the aggregate moved
// on; ErrNotReady means the server could not check and the call may be
// retried. Append is safe for concurrent use.
func (s *Store) Append(ctx context.Context, evs ...Pending) (Appended, error) {
	if len(evs) == 0 {
		return Appended{}, errors.New("events: append of nothing")
	}
	msgs := make([]*nats.Msg, len(evs))
	for i, p := range evs {
		body, err := fastjson.Marshal(p.Envelope)
		if err != nil {
			return Appended{}, fmt.Errorf("marshal envelope: %w", err)
		}
		m := nats.NewMsg(s.SubjectOf(p.Envelope.Tenant, p.Aggregate, p.Envelope.Subject))
		m.Data = body
		m.Header.Set(hdrType, p.Envelope.Type)
		if p.Expect {
			m.Header.Set(hdrExpectedLastSubjSeq, strconv.FormatUint(p.ExpectedSeq, 10))
		}
		if p.MsgID != "" {
			m.Header.Set(hdrMsgID, p.MsgID)
		}
		msgs[i] = m
	}
	if len(msgs) == 1 {
		return s.request(ctx, msgs[0])
	}
	batch := NewID()
	for i, m := range msgs {
		m.Header.Set(hdrBatchID, batch)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i < len(msgs)-1 {
			if err := s.nc.PublishMsg(m); err != nil {
				return Appended{}, fmt.Errorf("publish batch part: %w", err)
			}
		}
	}
	last := msgs[len(msgs)-1]
	last.Header.Set(hdrBatchCommit, "1")
	return s.request(ctx, last)
}

func (s *Store) request(ctx context.Context, m *nats.Msg) (Appended, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.timeout)
		defer cancel()
	}
	resp, err := s.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return Appended{}, fmt.Errorf("%w: no responders", ErrNotReady)
		}
		return Appended{}, fmt.Errorf("publish: %w", err)
	}
	var ack pubAck
	if err := fastjson.Unmarshal(resp.Data, &ack); err != nil {
		return Appended{}, fmt.Errorf("decode publish ack: %w", err)
	}
	if ack.Error != nil {
		switch ack.Error.ErrCode {
		case codeWrongLastSequence, codeWrongLastSequenceConstant:
			return Appended{}, fmt.Errorf("%w: %s", ErrConflict, ack.Error.Description)
		case codeBatchDuplicateMsgID:
			return Appended{}, fmt.Errorf("%w: %s", ErrDuplicate, ack.Error.Description)
		case codeExpectedSeqNotReady, codeClusterNotAvailable:
			return Appended{}, fmt.Errorf("%w: %s", ErrNotReady, ack.Error.Description)
		}
		if ack.Error.Code == 503 {
			return Appended{}, fmt.Errorf("%w: %s", ErrNotReady, ack.Error.Description)
		}
		return Appended{}, fmt.Errorf("events: publish rejected (%d): %s", ack.Error.ErrCode, ack.Error.Description)
	}
	return Appended{Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// Load returns every event of one aggregate in order, and the stream
// sequence of the last one (0 when the aggregate has no events). It uses
// direct gets, one round trip per event, and never creates a consumer.
func (s *Store) Load(ctx context.Context, tenant, aggregate, id string) ([]Envelope, uint64, error) {
	subj := s.SubjectOf(tenant, aggregate, id)
	last, err := s.stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("load %s: %w", subj, err)
	}
	var out []Envelope
	for seq := uint64(1); ; {
		var m *jetstream.RawStreamMsg
		if seq == last.Sequence {
			m = last
		} else if m, err = s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj)); err != nil {
			return nil, 0, fmt.Errorf("load %s at %d: %w", subj, seq, err)
		}
		env, err := decodeRaw(m.Subject, m.Sequence, m.Data)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, env)
		if m.Sequence >= last.Sequence {
			return out, last.Sequence, nil
		}
		seq = m.Sequence + 1
	}
}

// AggregateSequence returns the stream sequence of an aggregate's last
// event (0 when it has none): one direct get. A writer compares it with
// the sequence its cached state was built to, to tell whether another
// process has changed the aggregate since.
func (s *Store) AggregateSequence(ctx context.Context, tenant, aggregate, id string) (uint64, error) {
	subj := s.SubjectOf(tenant, aggregate, id)
	last, err := s.stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("last event of %s: %w", subj, err)
	}
	return last.Sequence, nil
}

// Get returns the event at seq: one direct get, no consumer.
func (s *Store) Get(ctx context.Context, seq uint64) (Envelope, error) {
	m, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		return Envelope{}, fmt.Errorf("event %d: %w", seq, err)
	}
	return decodeRaw(m.Subject, m.Sequence, m.Data)
}

// Identity names the stream as created: its name and creation time. A
// stream deleted and made again under the same name has another
// identity, so what was derived from the old one (a directory snapshot)
// is never taken for the new one's.
func (s *Store) Identity(ctx context.Context) (string, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("stream info: %w", err)
	}
	return s.opts.stream + "@" + info.Created.UTC().Format(time.RFC3339Nano), nil
}

// LastSequence returns the stream's last sequence (0 when empty).
func (s *Store) LastSequence(ctx context.Context) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	return info.State.LastSeq, nil
}

func decodeRaw(subject string, seq uint64, data []byte) (Envelope, error) {
	var env Envelope
	if err := decodeJSON(data, &env); err != nil {
		return Envelope{}, fmt.Errorf("decode event %d: %w", seq, err)
	}
	env.Sequence = seq
	if _, agg, _, ok := ParseSubject(subject); ok {
		env.Aggregate = agg
	}
	return env, nil
}
