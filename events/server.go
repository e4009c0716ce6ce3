package events

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/keyhold/keyhold/internal/atomicfile"
)

// ErrStoreInUse is wrapped by the error StartEmbedded returns when another
// process (or another Embedded in this one) holds the store directory: two
// servers writing one JetStream store lose each other's writes. The error
// is a *StoreInUseError naming the holder's client URL when known.
var ErrStoreInUse = errors.New("nats store in use by another server")

// StoreInUseError says which server holds a store directory.
type StoreInUseError struct {
	Dir string
	// URL is the client URL of the server holding the store; empty while
	// that server is still starting.
	URL string
}

func (e *StoreInUseError) Error() string {
	if e.URL == "" {
		return fmt.Sprintf("%s: %s, which is still starting", ErrStoreInUse, e.Dir)
	}
	return fmt.Sprintf("%s: %s is held by the NATS server at %s", ErrStoreInUse, e.Dir, e.URL)
}

// Unwrap returns ErrStoreInUse.
func (e *StoreInUseError) Unwrap() error { return ErrStoreInUse }

// The lock and address files in a store directory. The lock is an flock,
// which the kernel releases when its holder dies (even by SIGKILL), so the
// address file is only trusted while its lock is held.
const (
	lockFile = "keyhold.lock"
	addrFile = "keyhold.addr"
)

// Embedded is an in-process NATS server with JetStream.
type Embedded struct {
	srv  *server.Server
	dir  string
	lock *os.File
}

// StartEmbedded starts a NATS server with JetStream storing under dir and
// listening on listen ("host:port"; port 0 picks a free one). It returns
// once the server accepts connections.
//
// The server holds an exclusive lock on dir until Shutdown, and records its
// client URL there for RunningEmbedded. When another server holds dir,
// StartEmbedded starts nothing and fails with a *StoreInUseError.
func StartEmbedded(dir, listen string) (*Embedded, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("nats listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	lock, err := lockStore(dir)
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: "keyhold-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
		// Events are small; a 1 MiB payload limit is ample and bounds abuse.
		MaxPayload: 1 << 20,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		lock.Close()
		return nil, fmt.Errorf("nats server on %s did not become ready", listen)
	}
	e := &Embedded{srv: srv, dir: dir, lock: lock}
	if err := writeAddr(dir, e.ClientURL()); err != nil {
		e.Shutdown()
		return nil, err
	}
	return e, nil
}

// lockStore takes the store's lock without waiting and removes the
// address a dead holder may have left.
func lockStore(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats store %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("nats store lock: %w", err)
	}
	// RunningEmbedded holds the lock for an instant to probe it; a few
	// tries keep a probe from refusing a server.
	for try := 0; ; try++ {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("nats store lock %s: %w", f.Name(), err)
		}
		if try == 4 {
			f.Close()
			return nil, &StoreInUseError{Dir: dir, URL: readAddr(dir)}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := os.Remove(filepath.Join(dir, addrFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		f.Close()
		return nil, fmt.Errorf("nats store %s: %w", dir, err)
	}
	return f, nil
}

// writeAddr records url in dir atomically, so a reader never sees half.
func writeAddr(dir, url string) error {
	if err := atomicfile.Write(filepath.Join(dir, addrFile), func(w io.Writer) error {
		_, err := io.WriteString(w, url+"\n")
		return err
	}); err != nil {
		return fmt.Errorf("record nats address: %w", err)
	}
	return nil
}

func readAddr(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, addrFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// RunningEmbedded reports whether a server holds the store in dir, and its
// client URL (empty while it is still starting). It never starts, locks or
// changes anything for longer than the check.
func RunningEmbedded(dir string) (url string, running bool, err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("nats store lock: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return readAddr(dir), true, nil
		}
		return "", false, fmt.Errorf("nats store lock %s: %w", f.Name(), err)
	}
	// Closing f releases the lock taken for the check.
	return "", false, nil
}

// ClientURL returns the URL clients connect to.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Connect opens a client connection to the embedded server.
func (e *Embedded) Connect(name string) (*nats.Conn, error) {
	return nats.Connect(e.ClientURL(), nats.Name(name), nats.MaxReconnects(-1))
}

// Shutdown stops the server, waits for it to finish and releases the
// store.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	if e.lock != nil {
		// The address goes before the lock, so no one reads it unlocked.
		_ = os.Remove(filepath.Join(e.dir, addrFile))
		_ = e.lock.Close()
		e.lock = nil
	}
}
