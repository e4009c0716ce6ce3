package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/keyhold/keyhold/query"
)

// snapshotFile is where serve keeps the directory's snapshot, in the data
// dir: written on shutdown, read on start so the directory follows the log
// from there instead of replaying all of it.
const snapshotFile = "directory.snapshot"

// snapshotPurpose derives the key of the snapshot's MAC from the KEK: a
// snapshot holds the verifiers the directory authenticates with, so only
// whoever holds the KEK may make one the server takes.
const snapshotPurpose = "directory snapshot"

// loadSnapshot fills dir from the data dir's snapshot when there is one of
// this stream, and returns the stream's identity for saveSnapshot ("" when
// the stream could not tell it: then snapshots are neither read nor
// written). Any failure leaves dir new, for a replay from the start.
func loadSnapshot(ctx context.Context, e *env, dir *query.Directory, key []byte) string {
	stream, err := e.store.Identity(ctx)
	if err != nil {
		e.log.Warn("directory snapshots off", "err", err)
		return ""
	}
	t0 := time.Now()
	path := filepath.Join(e.cfg.dataDir, snapshotFile)
	switch err := dir.LoadSnapshotFile(ctx, path, e.store, stream, key); {
	case err == nil:
		e.log.Info("directory snapshot loaded", "path", path, "sequence", dir.Sequence(), "took", time.Since(t0).Round(time.Millisecond).String())
	case errors.Is(err, os.ErrNotExist):
	default:
		e.log.Warn("directory snapshot not used, replaying the log", "path", path, "err", err)
	}
	return stream
}

// saveSnapshot writes dir's snapshot to the data dir. A failure is logged:
// the next start replays more of the log.
func (s *server) saveSnapshot() {
	if s.stream == "" {
		return
	}
	t0 := time.Now()
	path := filepath.Join(s.env.cfg.dataDir, snapshotFile)
	if err := os.MkdirAll(s.env.cfg.dataDir, 0o755); err != nil {
		s.env.log.Warn("write directory snapshot", "err", err)
		return
	}
	if err := s.dir.WriteSnapshotFile(path, s.stream, s.snapshotKey); err != nil {
		s.env.log.Warn("write directory snapshot", "path", path, "err", err)
		return
	}
	s.env.log.Info("directory snapshot written", "path", path, "sequence", s.dir.Sequence(), "took", time.Since(t0).Round(time.Millisecond).String())
}
