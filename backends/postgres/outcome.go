package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrOutcomeUnknown is wrapped by the error of an append (or a delete, or
// a truncation) whose request reached the server but whose answer did not
// reach the store: the connection broke, or the caller's context ended,
// after the transaction's commit may have been sent. Its writes are then
// either all committed or all absent, and the store cannot tell which.
// A caller may read the stream to find out, or retry with an idempotency
// key (runtime.IdempotencyKey), which makes the retry a
// *runtime.DuplicateError if the first attempt committed. Errors before
// anything was sent, and the server's refusals, do not wrap it.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// unknownOutcome wraps err, met while doing what, with ErrOutcomeUnknown.
func unknownOutcome(what string, err error) error {
	return fmt.Errorf("%s (%w): %w", what, ErrOutcomeUnknown, err)
}

// isPgError reports whether err is the server's answer (an error response
// to a statement), after which the server rolls the failed transaction
// back.
func isPgError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe)
}

// afterSend classifies err, met while reading the answers to a request
// that held a whole transaction, COMMIT included: the server's refusal
// (the transaction rolled back) and an error before anything was sent are
// returned as they are; anything else wraps ErrOutcomeUnknown.
func afterSend(what string, err error) error {
	if isPgError(err) || pgconn.SafeToRetry(err) {
		return err
	}
	return unknownOutcome(what, err)
}
