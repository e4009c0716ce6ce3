package atomicfile_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyhold/keyhold/internal/atomicfile"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	put := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	if err := atomicfile.Write(path, put("one")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("after a write: %v, %v", fi, err)
	}
	failed := errors.New("half written")
	if err := atomicfile.Write(path, func(w io.Writer) error { _, _ = io.WriteString(w, "tw"); return failed }); !errors.Is(err, failed) {
		t.Fatalf("a failing write: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one" {
		t.Fatalf("a failed write left %q", b)
	}
	if err := atomicfile.Write(path, put("two")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "two" {
		t.Fatalf("content %q", b)
	}
	if files, _ := os.ReadDir(dir); len(files) != 1 {
		t.Fatalf("left behind: %v", files)
	}
}
