// Package eventid makes the UUIDv7 ids of events: runtime.NewEventID one
// at a time, storekit.Stamp a block per append.
package eventid

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// eventIDs makes UUIDv7 ids that are strictly increasing within a process:
// within one millisecond (or when the clock steps back) the 12-bit rand_a
// field and then the 62-bit rand_b field continue as a counter from the
// previous id (RFC 9562 §6.2, method 3: monotonic random), so two ids made
// one after the other never compare out of order.
var eventIDs struct {
	sync.Mutex
	last [16]byte
}

// Block reserves n ≥ 1 consecutive event ids and returns the first; the
// others follow it through Next. Every id of the block is unique and
// greater than every id made before it by this process. Stores reserve one
// block per append for the events appended without an id
// (storekit.Stamp), so an append reads the clock and takes the generator's
// lock once, whatever its size.
func Block(n int) [16]byte {
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

// Next returns the id that follows id in a block reserved by Block.
func Next(id [16]byte) [16]byte {
	increment(&id)
	return id
}

// increment adds one to the 74 random bits of a UUIDv7 (rand_a, then
// rand_b), skipping the version and variant bits. On the (practically
// unreachable) overflow of all 74 bits it moves on to the next millisecond.
func increment(id *[16]byte) {
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
