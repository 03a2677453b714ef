// Command cqrsctl inspects, verifies, deletes streams of, exports and imports cqrsgen event
// stores (a Pebble directory or a PostgreSQL database) without the
// application's Go types, and crypto-shreds subjects (forget-subject). See
// docs/operations.md, or run cqrsctl -h.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cqrsgen/cqrsgen/internal/ops/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ctl.Run(ctx, os.Args[1:], ctl.Env{
		Stdin:    os.Stdin,
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Terminal: isTerminal(os.Stderr),
	})
	stop()
	os.Exit(code)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
