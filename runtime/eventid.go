package runtime

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// EventID is an event's unique id: a UUID, version 7 when the store made it
// (RFC 9562: 48-bit Unix milliseconds, then random bits), so ids sort by
// the time they were made. The zero EventID means "none": records written
// before event ids existed carry it, and an EventData with a zero ID gets a
// new one when it is appended.
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

// eventIDs makes UUIDv7 ids that are strictly increasing within a process:
// within one millisecond (or when the clock steps back) the 12-bit rand_a
// field and then the 62-bit rand_b field continue as a counter from the
// previous id (RFC 9562 §6.2, method 3: monotonic random), so two ids made
// one after the other never compare out of order.
var eventIDs struct {
	sync.Mutex
	last EventID
}

// NewEventID returns a new UUIDv7 event id, unique and greater than every
// id made before it by this process. Stores call NewEventIDs instead, once
// per append.
func NewEventID() EventID { return NewEventIDs(1) }

// NewEventIDs reserves n ≥ 1 consecutive event ids and returns the first;
// the others follow it through Next. Every id of the block is unique and
// greater than every id made before it by this process. Stores call it once
// per append for the events appended with a zero EventData.ID, so an append
// reads the clock and takes the generator's lock once, whatever its size.
func NewEventIDs(n int) EventID {
	ms := uint64(time.Now().UnixMilli())
	eventIDs.Lock()
	defer eventIDs.Unlock()
	id := eventIDs.last
	if lastMS := binary.BigEndian.Uint64(id[0:8]) >> 16; ms <= lastMS {
		// Same millisecond, or the clock went back: continue from the
		// previous id, one step up. No random read: appends make ids in
		// bursts, and this keeps one id to a few nanoseconds.
		increment(&id)
	} else {
		// A new millisecond: fresh random bits (74 of them), read at most
		// once a millisecond. crypto/rand's Read does not fail (Go 1.24+).
		_, _ = rand.Read(id[6:])
		binary.BigEndian.PutUint16(id[4:6], uint16(ms))
		binary.BigEndian.PutUint32(id[0:4], uint32(ms>>16))
		id[6] = 0x70 | id[6]&0x0f // version 7
		id[8] = 0x80 | id[8]&0x3f // variant 10
	}
	last := id
	if lo, add := binary.BigEndian.Uint64(last[8:16])&(1<<62-1), uint64(max(n, 1)-1); lo <= 1<<62-1-add {
		binary.BigEndian.PutUint64(last[8:16], 0x80<<56|(lo+add)) // the block in one step
	} else {
		for i := 1; i < n; i++ {
			increment(&last)
		}
	}
	eventIDs.last = last
	return id
}

// Next returns the id that follows id in a block reserved by NewEventIDs.
func (id EventID) Next() EventID {
	increment(&id)
	return id
}

// increment adds one to the 74 random bits of a UUIDv7 (rand_a, then
// rand_b), skipping the version and variant bits. On the (practically
// unreachable) overflow of all 74 bits it moves on to the next millisecond.
func increment(id *EventID) {
	lo := binary.BigEndian.Uint64(id[8:16]) & (1<<62 - 1)
	if lo < 1<<62-1 {
		binary.BigEndian.PutUint64(id[8:16], 0x80<<56|(lo+1))
		return
	}
	binary.BigEndian.PutUint64(id[8:16], 0x80<<56)
	hi := binary.BigEndian.Uint16(id[6:8]) & 0x0fff
	if hi < 0x0fff {
		binary.BigEndian.PutUint16(id[6:8], 0x7000|(hi+1))
		return
	}
	binary.BigEndian.PutUint16(id[6:8], 0x7000)
	ms := binary.BigEndian.Uint64(id[0:8])>>16 + 1
	binary.BigEndian.PutUint32(id[0:4], uint32(ms>>16))
	binary.BigEndian.PutUint16(id[4:6], uint16(ms))
}
