package runtime

import (
	"encoding/hex"
	"fmt"

	"github.com/cqrsgen/cqrsgen/runtime/internal/eventid"
)

// EventID is an event's unique id: a UUIDv7 (RFC 9562) when the store made it,
// sorting by time. Zero means none: old records, or an EventData to stamp.
type EventID [16]byte

// IsZero reports whether id is the zero id (no id).
func (id EventID) IsZero() bool { return id == EventID{} }

// String returns id in the canonical 8-4-4-4-12 hex form, or "" for the
// zero id.
func (id EventID) String() string {
	if id.IsZero() {
		return ""
	}
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:], id[10:])
	return string(b[:])
}

// ParseEventID parses the canonical 8-4-4-4-12 hex form of a UUID (either
// case); "" parses as the zero id.
func ParseEventID(s string) (EventID, error) {
	var id EventID
	if s == "" {
		return id, nil
	}
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return EventID{}, fmt.Errorf("cqrsgen: event id %q: want 8-4-4-4-12 hex", s)
	}
	hexPart := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(id[:], []byte(hexPart)); err != nil {
		return EventID{}, fmt.Errorf("cqrsgen: event id %q: %w", s, err)
	}
	return id, nil
}

// NewEventID returns a new UUIDv7, greater than every id this process made
// before it (stores use storekit.Stamp for one append's block of ids).
func NewEventID() EventID { return EventID(eventid.Block(1)) }
