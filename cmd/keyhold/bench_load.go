package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// loadOp is one operation of a load run. worker is the worker's index
// (0..concurrency-1) and i counts that worker's operations from 0, so the
// pair is unique within a run.
type loadOp func(ctx context.Context, worker, i int) error

// loadStats is what a load run measured. Only operations that started in
// the measured window (after the warm-up) are counted; each counted
// operation's latency is kept.
type loadStats struct {
	ops       int
	errors    int
	firstErr  error
	elapsed   time.Duration
	latencies []time.Duration // sorted
}

// opsPerSecond returns successful operations per second of measured time.
func (s loadStats) opsPerSecond() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.ops) / s.elapsed.Seconds()
}

// percentile returns the q-quantile (0 < q <= 1) of the latencies by the
// nearest-rank method, or 0 when there are none.
func (s loadStats) percentile(q float64) time.Duration {
	return percentile(s.latencies, q)
}

// percentile returns the nearest-rank q-quantile of sorted, or 0 when it
// is empty.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted))+0.999999) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

// runLoad runs op from concurrency workers, each calling it in a loop, for
// warmup and then duration. Operations started during the warm-up run but
// are not counted; operations started in the measured window are timed one
// by one, and elapsed runs from the window's start to the last of them
// finishing. Failed operations are counted in errors (the first error is
// kept) and their latencies left out. The run stops early, with ctx's
// error, when ctx ends.
func runLoad(ctx context.Context, concurrency int, warmup, duration time.Duration, op loadOp) (loadStats, error) {
	type workerStats struct {
		lat      []time.Duration
		errors   int
		firstErr error
		lastEnd  time.Time
	}
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(duration)
	per := make([]workerStats, concurrency)
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws := &per[w]
			for i := 0; ; i++ {
				t0 := time.Now()
				if !t0.Before(end) || ctx.Err() != nil {
					return
				}
				err := op(ctx, w, i)
				t1 := time.Now()
				if t0.Before(measureFrom) {
					continue
				}
				ws.lastEnd = t1
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					if ws.errors == 0 {
						ws.firstErr = err
					}
					ws.errors++
					continue
				}
				ws.lat = append(ws.lat, t1.Sub(t0))
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return loadStats{}, err
	}
	var st loadStats
	last := measureFrom
	for _, ws := range per {
		st.latencies = append(st.latencies, ws.lat...)
		st.errors += ws.errors
		if st.firstErr == nil {
			st.firstErr = ws.firstErr
		}
		if ws.lastEnd.After(last) {
			last = ws.lastEnd
		}
	}
	slices.Sort(st.latencies)
	st.ops = len(st.latencies)
	st.elapsed = last.Sub(measureFrom)
	if st.ops == 0 {
		if st.firstErr != nil {
			return st, fmt.Errorf("every operation failed (%d); first error: %w", st.errors, st.firstErr)
		}
		return st, fmt.Errorf("no operation completed in %s", duration)
	}
	return st, nil
}

// newBenchClient returns an HTTP client for a load run at concurrency:
// keep-alive with an idle connection kept for every worker, so each
// worker reuses one connection, and every stage of a request bounded.
func newBenchClient(concurrency int) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          2 * concurrency,
		MaxIdleConnsPerHost:   2 * concurrency,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 15 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// drain reads the rest of a response body and closes it, so the
// connection goes back to the pool for reuse.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

// statusError describes an unexpected response, with the start of its body.
func statusError(resp *http.Response, want int) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	drain(resp)
	return fmt.Errorf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, body)
}

// loadSpec is one side of an interleaved comparison: a named scenario,
// its operation and how many workers run it.
type loadSpec struct {
	name        string
	concurrency int
	op          loadOp
}

// merge combines the statistics of several runs of one scenario.
func merge(runs ...loadStats) loadStats {
	var out loadStats
	for _, r := range runs {
		out.ops += r.ops
		out.errors += r.errors
		out.elapsed += r.elapsed
		if out.firstErr == nil {
			out.firstErr = r.firstErr
		}
		out.latencies = append(out.latencies, r.latencies...)
	}
	slices.Sort(out.latencies)
	return out
}

// interleave measures base and meas in alternating rounds (base first),
// each round lasting duration/rounds, so that a change in the machine's
// background load affects both about equally. Each side warms up once,
// in its first round. It returns each side's merged statistics and the
// ratio meas/base of every round.
func (b *bench) interleave(ctx context.Context, base, meas loadSpec) (baseStats, measStats loadStats, ratios []float64, err error) {
	rounds := b.opts.rounds
	per := b.opts.duration / time.Duration(rounds)
	var baseRuns, measRuns []loadStats
	for r := range rounds {
		warmup := time.Duration(0)
		if r == 0 {
			warmup = b.opts.warmup
		}
		var s1, s2 loadStats
		if err := b.measure(base.name, func() (err error) {
			s1, err = runLoad(ctx, base.concurrency, warmup, per, base.op)
			return err
		}); err != nil {
			return loadStats{}, loadStats{}, nil, fmt.Errorf("%s: %w", base.name, err)
		}
		if err := b.measure(meas.name, func() (err error) {
			s2, err = runLoad(ctx, meas.concurrency, warmup, per, meas.op)
			return err
		}); err != nil {
			return loadStats{}, loadStats{}, nil, fmt.Errorf("%s: %w", meas.name, err)
		}
		baseRuns, measRuns = append(baseRuns, s1), append(measRuns, s2)
		ratios = append(ratios, round(s2.opsPerSecond()/s1.opsPerSecond(), 3))
	}
	return merge(baseRuns...), merge(measRuns...), ratios, nil
}
