package query_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	fastjson "github.com/segmentio/encoding/json"

	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/query"
)

// BenchmarkDirectoryReplay measures a directory folding a log of
// -accounts service accounts with a credential each from JetStream, as
// at a restart; "follow" is the read alone (no directory), to tell the
// log's share from the directory's.
func BenchmarkDirectoryReplay(b *testing.B) {
	st, nc := testenv.Store(b)
	n := *footprintAccounts
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4000))
	testenv.Must(b, err, "jetstream")
	exp := time.Now().Add(24 * time.Hour).UTC()
	publish := func(env events.Envelope) {
		body, err := fastjson.Marshal(env)
		testenv.Must(b, err, "marshal")
		m := nats.NewMsg(st.SubjectOf(env.Tenant, events.AggregateServiceAccount, env.Subject))
		m.Data = body
		m.Header.Set("Keyhold-Type", env.Type)
		_, err = js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute))
		testenv.Must(b, err, "publish")
	}
	for i := range n {
		id := events.NewID()
		publish(events.New("acme", id, events.System, "", events.ServiceAccountCreated{
			ClientID: commands.ClientIDPrefix + id, DisplayName: "sa " + strconv.Itoa(i),
			Scope: events.Scope{Level: events.ScopeNamespace, Target: "team-" + strconv.Itoa(i%50)}, Roles: []string{"viewer"}, Status: "active"}))
		sum := sha256.Sum256([]byte(id))
		publish(events.New("acme", id, events.System, "", events.CredentialCreated{CredentialID: events.NewID(), Verifier: hex.EncodeToString(sum[:]), ExpiresAt: exp}))
	}
	<-js.PublishAsyncComplete()
	last, err := st.LastSequence(context.Background())
	testenv.Must(b, err, "last")

	b.Run("follow", func(b *testing.B) {
		for range b.N {
			done := make(chan struct{})
			stop, err := st.Follow(context.Background(), events.Filter{}, func(env events.Envelope, err error) {
				if env.Sequence == last {
					close(done)
				}
			})
			testenv.Must(b, err, "follow")
			<-done
			stop()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(last), "ns/event")
	})
	b.Run("directory", func(b *testing.B) {
		for range b.N {
			ctx, cancel := context.WithCancel(context.Background())
			d := query.NewDirectory()
			ready, err := d.Run(ctx, st, nil)
			testenv.Must(b, err, "run")
			<-ready
			cancel()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(last), "ns/event")
	})
}
