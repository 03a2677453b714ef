// Package sealkey names the reserved key subjects of crypto-shredding,
// which the runtime (sealing snapshots) and runtime/lifecycle (forgetting
// them) must agree on.
package sealkey

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// SnapshotMagic starts a sealed snapshot's data (runtime's sealSnapshot);
// lifecycle.DeleteStream looks for it to know the stream has a snapshot key.
const SnapshotMagic = "cqS\x01"

// SnapshotSubject is the reserved subject whose key seals the snapshots of the
// stream typ/id. It starts with a NUL byte, which runtime.ValidateSubject
// refuses in subjects of applications, and is a hash of the stream's
// injective encoding, so that it is short whatever the stream's length.
func SnapshotSubject(typ, id string) string {
	b := binary.AppendUvarint(nil, uint64(len(typ)))
	b = append(b, typ...)
	sum := sha256.Sum256(append(b, id...))
	return "\x00snapshot:" + hex.EncodeToString(sum[:])
}
