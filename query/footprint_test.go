package query_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/query"
)

// BenchmarkDirectoryFootprint reports what one service account with one
// credential costs the directory (live heap per account), the figure the
// scale bench measures over a real log, here without JetStream so that it
// is quick and repeatable. Run with -benchtime=1x; -accounts sets N.
func BenchmarkDirectoryFootprint(b *testing.B) {
	n := *footprintAccounts
	envs := accountEvents(n)
	b.ResetTimer()
	for range b.N {
		before := heap()
		d := query.NewDirectory()
		for _, env := range envs {
			d.Apply(env)
		}
		after := heap()
		b.ReportMetric(float64(after-before)/float64(n), "B/account")
		runtime.KeepAlive(d)
	}
}

// BenchmarkDirectorySnapshot reports what writing and loading a snapshot
// of -accounts service accounts with a credential each costs, per
// account, and its size.
func BenchmarkDirectorySnapshot(b *testing.B) {
	n := *footprintAccounts
	d := query.NewDirectory()
	for _, env := range accountEvents(n) {
		d.Apply(env)
	}
	var snap bytes.Buffer
	b.Run("write", func(b *testing.B) {
		for range b.N {
			snap.Reset()
			if err := d.WriteSnapshot(&snap, "bench"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/account")
		b.ReportMetric(float64(snap.Len())/float64(n), "B/account")
	})
	b.Run("load", func(b *testing.B) {
		for range b.N {
			l := query.NewDirectory()
			if err := l.LoadSnapshot(context.Background(), bytes.NewReader(snap.Bytes()), logAt(d.Sequence()), "bench"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/account")
	})
}

// logAt is a log that ends at a sequence and holds no user events: all a
// snapshot of service accounts alone reads of it.
type logAt uint64

func (l logAt) LastSequence(context.Context) (uint64, error) { return uint64(l), nil }

func (logAt) Get(_ context.Context, seq uint64) (events.Envelope, error) {
	return events.Envelope{}, fmt.Errorf("no event %d here", seq)
}

// accountEvents returns the events of n service accounts with a credential
// each, numbered from sequence 1.
func accountEvents(n int) []events.Envelope {
	envs := make([]events.Envelope, 0, 2*n)
	exp := time.Now().Add(24 * time.Hour).UTC()
	for i := range n {
		id := events.NewID()
		envs = append(envs, events.New("acme", id, events.System, "", events.ServiceAccountCreated{
			ClientID: commands.ClientIDPrefix + id, DisplayName: "sa " + strconv.Itoa(i),
			Scope: events.Scope{Level: events.ScopeNamespace, Target: "team-" + strconv.Itoa(i%50)}, Roles: []string{"viewer"}, Status: "active"}))
		sum := sha256.Sum256([]byte(id))
		envs = append(envs, events.New("acme", id, events.System, "", events.CredentialCreated{CredentialID: events.NewID(), Verifier: hex.EncodeToString(sum[:]), ExpiresAt: exp}))
	}
	for i := range envs {
		envs[i].Sequence = uint64(i + 1)
		envs[i].Aggregate = events.AggregateServiceAccount
	}
	return envs
}

var footprintAccounts = flag.Int("accounts", 200_000, "service accounts BenchmarkDirectoryFootprint loads")

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
