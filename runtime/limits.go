package runtime

import (
	"fmt"
)

// Limits every store enforces, so that data written through one backend can
// be moved to any other. They are checked before anything is written.
const (
	// MaxTypeLength is the longest stream type, in bytes.
	MaxTypeLength = 255
	// MaxIDLength is the longest stream id, idempotency key or checkpoint
	// name, in bytes.
	MaxIDLength = 1024
	// MaxNameLength is the longest event wire name, in bytes.
	MaxNameLength = 255
	// MaxEventSize is the largest event: its Data plus the keys and values
	// of its Metadata, in bytes.
	MaxEventSize = 4 << 20
	// MaxBatchEvents is the most events one append may carry.
	MaxBatchEvents = 10_000
	// MaxBatchSize is the largest total of event sizes in one append.
	MaxBatchSize = 16 << 20
	// MaxSnapshotSize is the largest snapshot Data.
	MaxSnapshotSize = 64 << 20
)

// ValidateStream checks a stream id against the rules every store applies.
func ValidateStream(s StreamID) error {
	switch {
	case s.Type == "":
		return fmt.Errorf("%w: empty stream type (stream id %q)", ErrInvalid, s.ID)
	case s.ID == "":
		return fmt.Errorf("%w: empty stream id (stream type %q)", ErrInvalid, s.Type)
	case len(s.Type) > MaxTypeLength:
		return fmt.Errorf("%w: stream type is %d bytes, limit %d", ErrTooLarge, len(s.Type), MaxTypeLength)
	case len(s.ID) > MaxIDLength:
		return fmt.Errorf("%w: stream id is %d bytes, limit %d", ErrTooLarge, len(s.ID), MaxIDLength)
	}
	return nil
}

// ValidateKey checks an idempotency key or a checkpoint name.
func ValidateKey(what, key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	case len(key) > MaxIDLength:
		return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, what, len(key), MaxIDLength)
	}
	return nil
}
