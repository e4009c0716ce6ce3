package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"
)

// snapshotFile is where serve keeps the directory's snapshot, in the data
// dir: written on shutdown, read on start so the directory follows the log
// from there instead of replaying all of it.
const snapshotFile = "directory.snapshot"

// snapshotPath is where the directory's snapshot of this data dir is.
func (c *config) snapshotPath() string { return filepath.Join(c.dataDir, snapshotFile) }

// snapshotPurpose derives the key of the snapshot's MAC from the KEK: a
// snapshot holds the verifiers the directory authenticates with, so only
// whoever holds the KEK may make one the server takes.
const snapshotPurpose = "directory snapshot"

// loadSnapshot fills the directory from the data dir's snapshot when there
// is one of this stream. Any failure leaves the directory new, for a
// replay from the start.
func (s *server) loadSnapshot(ctx context.Context) {
	if s.stream == "" {
		return
	}
	t0 := time.Now()
	path := s.env.cfg.snapshotPath()
	switch err := s.dir.LoadSnapshotFile(ctx, path, s.env.store, s.stream, s.snapshotKey); {
	case err == nil:
		s.env.log.Info("directory snapshot loaded", "path", path, "sequence", s.dir.Sequence(), "took", time.Since(t0).Round(time.Millisecond).String())
	case errors.Is(err, os.ErrNotExist):
	default:
		s.env.log.Warn("directory snapshot not used, replaying the log", "path", path, "err", err)
	}
}

// saveSnapshot writes dir's snapshot to the data dir. A failure is logged:
// the next start replays more of the log.
func (s *server) saveSnapshot() {
	// A directory that applied nothing (stopped while loading) would
	// only replace a good snapshot with an empty one.
	if s.stream == "" || s.dir.Sequence() == 0 {
		return
	}
	t0 := time.Now()
	path := s.env.cfg.snapshotPath()
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
