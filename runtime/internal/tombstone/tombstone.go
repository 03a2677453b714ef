// Package tombstone is the format of a tombstone record's data, which
// runtime/lifecycle writes for stores (TombstoneRecord) and runtime reads
// (TombstoneOf).
package tombstone

import "encoding/binary"

// V1 is the first byte of a tombstone record's data.
const V1 = 1

// Data returns a tombstone record's data: V1, the delete mode, then the
// stream's event count and the removed record count as uvarints.
func Data(mode byte, events, removed uint64) []byte {
	data := []byte{V1, mode}
	data = binary.AppendUvarint(data, events)
	return binary.AppendUvarint(data, removed)
}
