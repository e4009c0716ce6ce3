package query_test

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
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

var footprintAccounts = flag.Int("accounts", 200_000, "service accounts BenchmarkDirectoryFootprint loads")

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
