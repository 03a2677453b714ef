package runtime

import (
	"errors"
	"fmt"
)

// Truncating the log (runtime/lifecycle: Retention, PlanTruncation)
// removes its oldest events once they are archived. Positions are never
// renumbered, streams keep their versions, and a read of a stream from
// before its first kept version fails with a *TruncatedError: a Repository
// whose stream has a snapshot at or after that version loads as before.

// ErrTruncated is matched (errors.Is) by every *TruncatedError.
var ErrTruncated = errors.New("cqrsgen: events truncated")

// TruncatedError reports a read of a stream from before its first kept
// version: the events up to Through were removed by a truncation of the
// log (see lifecycle.Retention).
type TruncatedError struct {
	Stream StreamID
	// After is the version the read asked to start after.
	After uint64
	// Through is the stream's last removed version (a read that a truncation
	// overtook may be told a lower one, never a higher).
	Through uint64
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("cqrsgen: %s: events up to version %d were truncated from the log (read asked for versions after %d; load a snapshot at version %d or later, or read from the archive)",
		e.Stream, e.Through, e.After, e.Through)
}

// Is reports target == ErrTruncated.
func (e *TruncatedError) Is(target error) bool { return target == ErrTruncated }
