package postgres

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/jackc/pgx/v5/pgconn"
)

// MarkUnavailable returns err wrapped so that errors.Is(err,
// runtime.ErrUnavailable) holds when err says the server could not be
// reached or went away: a lost or refused connection (unexpected EOF,
// connection reset, refused, a missing unix socket while the server
// restarts), SQLSTATE class 08 (connection exception), 57P01
// (admin_shutdown: the server is stopping or restarting), 57P02
// (crash_shutdown), 57P03 (cannot_connect_now: starting up or in
// recovery) and 53300 (too_many_connections). Other errors, nil included,
// are returned as they are. The store wraps its own errors so; a read
// model kept in the same database wraps its errors with it so that its
// projection waits out an outage instead of failing (see
// projection.Projection.Handle).
func MarkUnavailable(err error) error {
	if err == nil || errors.Is(err, runtime.ErrUnavailable) || !unavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", runtime.ErrUnavailable, err)
}

// unavailable classifies err; see MarkUnavailable.
func unavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case len(pe.Code) == 5 && pe.Code[:2] == "08",
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", pe.Code == "53300":
			return true
		}
		return false // a server's answer: the server is there
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		// Dialling failed (a unix socket that is gone while the server
		// restarts reports ENOENT) or the connection broke.
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true // not a server's refusal (that is a PgError, above)
	}
	// pgx marks errors that happened before anything was sent, and a
	// connection it found closed, as safe to retry.
	return pgconn.SafeToRetry(err)
}
