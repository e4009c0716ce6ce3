// Package atomicfile writes files whole or not at all: into a temporary
// file beside the target, synced, then renamed over it, so a reader (or a
// restart after a crash) sees the old content or the new, never half.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write writes path with what write puts out, atomically. The file is
// readable and writable by its owner only (mode 0600). When write or any
// step fails, path is left as it was and the temporary file is removed.
func Write(path string, write func(io.Writer) error) (err error) {
	// Hidden, and never ending in a name a reader of the directory looks
	// for (the outbox lists *.eml).
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
