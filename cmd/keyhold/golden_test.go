package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/keyhold/keyhold/internal/testenv"
)

// goldenDir holds an event log written by an older Keyhold (see its README).
var goldenDir = filepath.Join("..", "..", "events", "testdata", "golden")

// goldenHeaders are the message headers the fixture keeps: the ones a
// reader of the log looks at. Batch and expectation headers only steer the
// append and are not kept.
var goldenHeaders = []string{"Keyhold-Type", "Nats-Msg-Id"}

// goldenMessage is one stored stream message of the fixture.
type goldenMessage struct {
	Seq     uint64            `json:"seq"`
	Subject string            `json:"subject"`
	Header  map[string]string `json:"header"`
	// Data is the message's data, byte for byte.
	Data string `json:"data"`
}

// loadGolden publishes the fixture's messages, in order, into the stream of
// h, which must be empty, and checks each lands at its original sequence.
func loadGolden(t *testing.T, h *harness) {
	t.Helper()
	f, err := os.Open(filepath.Join(goldenDir, "stream.jsonl"))
	testenv.Must(t, err, "open fixture")
	defer f.Close()
	ctx := context.Background()
	js := h.env.store.JetStream()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		var m goldenMessage
		testenv.Must(t, json.Unmarshal(sc.Bytes(), &m), "decode fixture line")
		msg := nats.NewMsg(m.Subject)
		msg.Data = []byte(m.Data)
		for k, v := range m.Header {
			msg.Header.Set(k, v)
		}
		ack, err := js.PublishMsg(ctx, msg)
		testenv.Must(t, err, "publish fixture message")
		if ack.Sequence != m.Seq {
			t.Fatalf("fixture message %d stored at sequence %d", m.Seq, ack.Sequence)
		}
		n++
	}
	testenv.Must(t, sc.Err(), "read fixture")
	if n == 0 {
		t.Fatal("empty fixture")
	}
}

// goldenJSON decodes one of the fixture's JSON side files.
func goldenJSON(t *testing.T, name string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, name))
	testenv.Must(t, err, "read %s", name)
	var m map[string]string
	testenv.Must(t, json.Unmarshal(b, &m), "decode %s", name)
	return m
}
