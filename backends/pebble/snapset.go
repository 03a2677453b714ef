package pebble

import (
	"errors"
	"hash/maphash"
	"sync"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// snapSet records, in memory, which streams may have a snapshot, so that
// LoadSnapshot of a stream without one (most streams, and every Load of
// them) answers ErrNotFound without a Pebble Get that misses: about 1.3 µs
// through the memtables and every level's filter and index, the largest
// fixed cost of a short Load (docs/benchmarks-history.md, "Snapshot presence").
//
// The set holds a 64-bit hash of each snapshotted stream's key (see
// split), so it may say "maybe" for a stream without a snapshot (a
// collision, or a stream whose snapshot was deleted): LoadSnapshot then does the Get, which
// answers. It must never say "no" for a stream with a snapshot, so:
//
//   - Open builds it from the durable snapshot keys (buildSnapSet), before
//     the writer starts: the directory lock makes the store the only
//     writer of its keys.
//   - The writer adds a stream when it puts the snapshot into a batch,
//     before the commit (writer.snapshot): a reader may see "maybe" for a
//     snapshot not yet durable (the Get then misses, as it would without
//     the set), never "no" for one that is.
//   - Nothing is ever removed: a hard delete's snapshot stays "maybe"
//     until the next Open, costing only the Get. Removing would need a
//     count per hash (two streams may share one) for a rare case.
//
// Memory: one 8-byte map slot per snapshotted stream, about 12 bytes with
// the map's control bytes and free slots (see BenchmarkSnapSetOpen).
type snapSet struct {
	seed   maphash.Seed
	shards [snapShards]snapShard
	// everything makes the set say "maybe" for every stream: the Get path
	// for tests and for the before/after benchmark rungs. Set before use.
	everything bool
}

// snapShards spreads the readers' lock traffic: a Load takes one shard's
// read lock, and readers of different streams rarely share its cache line.
const snapShards = 64

type snapShard struct {
	mu sync.RWMutex
	m  map[uint32]uint32 // see split
	_  [64 - 24 - 8]byte // a cache line per shard
}

// snapHash hashes the encoded stream key sk.
func (s *snapSet) snapHash(sk []byte) uint64 { return maphash.Bytes(s.seed, sk) }

func (s *snapSet) shard(h uint64) *snapShard { return &s.shards[h>>(64-6)] }

// maybe reports whether stream may have a snapshot; false means it has
// none.
func (s *snapSet) maybe(stream runtime.StreamID) bool {
	if s.everything {
		return true
	}
	var buf [64]byte
	return s.maybeHash(s.snapHash(appendStreamKey(buf[:0], stream)))
}

// maybeHash is maybe for the stream whose key hashes to h.
func (s *snapSet) maybeHash(h uint64) bool {
	sh := s.shard(h)
	k, v := split(h)
	sh.mu.RLock()
	got, ok := sh.m[k]
	sh.mu.RUnlock()
	return ok && (got == v || got == several)
}

// add records that the stream with encoded key sk has a snapshot. Only
// the writer adds, so the read-locked look-up sees the latest entry.
func (s *snapSet) add(sk []byte) { s.addHash(s.snapHash(sk)) }

// addHash is add for the stream whose key hashes to h.
func (s *snapSet) addHash(h uint64) {
	sh := s.shard(h)
	k, v := split(h)
	sh.mu.RLock()
	got, ok := sh.m[k]
	sh.mu.RUnlock()
	if ok && (got == v || got == several) {
		return
	}
	sh.mu.Lock()
	got, ok = sh.m[k] // again: another add may have come between the locks
	sh.m[k] = merge(got, ok, v)
	sh.mu.Unlock()
}

// An entry maps the low 32 bits of a stream's hash to the next 32 (never
// zero): a map[uint32]uint32 slot is 8 bytes, where a map[uint64]struct{}
// one is padded to 16. When two streams share the low bits the entry
// becomes several, "maybe" for every stream with those bits.
const several = 0

func split(h uint64) (k, v uint32) {
	k, v = uint32(h), uint32(h>>32)
	if v == several {
		v = 1
	}
	return k, v
}

// merge returns the entry that records v beside got (present when ok).
func merge(got uint32, ok bool, v uint32) uint32 {
	if !ok || got == v {
		return v
	}
	return several
}

// build fills the set from the snapshot keys in db. n, the
// snapshot counter, sizes the maps.
func (s *snapSet) build(db *pebbledb.DB, n uint64) error {
	s.seed = maphash.MakeSeed()
	per := int(min(n, 1<<32) / snapShards)
	for i := range s.shards {
		s.shards[i].m = make(map[uint32]uint32, per)
	}
	it, err := db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{tagSnapshot}, UpperBound: []byte{tagSnapshot + 1}})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		s.addHash(s.snapHash(it.Key()[1:]))
	}
	return errors.Join(it.Error(), it.Close())
}

// noSnapshotError is LoadSnapshot's ErrNotFound when the set rules the
// stream out: its message, the Get miss's, is built only when read, so
// that the common answer of a Load costs one small allocation.
type noSnapshotError struct{ stream runtime.StreamID }

func (e *noSnapshotError) Error() string {
	return "cqrsgen/pebble: load snapshot of " + e.stream.String() + ": " + runtime.ErrNotFound.Error()
}

func (e *noSnapshotError) Unwrap() error { return runtime.ErrNotFound }
