package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// runMainEnv makes the test binary run keyhold's main with its arguments
// instead of the tests: crash tests start a real `keyhold serve` process
// from it and kill it.
const runMainEnv = "KEYHOLD_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}
