package pebble

import (
	"log/slog"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Default sizes. The memtable is large enough that a group holding a
// maximal append (runtime.MaxBatchSize, 16 MiB) stays an ordinary memtable
// write instead of being turned into a separately flushed "large batch"
// (Pebble does that for batches over half the memtable size).
const (
	// DefaultCacheSize is the block cache size used unless WithCacheSize
	// says otherwise.
	DefaultCacheSize = 64 << 20
	// DefaultMemTableSize is the memtable size used unless
	// WithMemTableSize says otherwise.
	DefaultMemTableSize = 64 << 20
	// maxGroupBytes bounds the payload one writer group commits in one
	// batch (a single larger append is still committed alone).
	maxGroupBytes = 24 << 20
)

// Option configures Open.
type Option func(*options)

type options struct {
	noSync       bool
	syncEvery    time.Duration
	cacheSize    int64
	memTableSize uint64
	logger       *slog.Logger
	fs           vfs.FS
	tune         func(*pebbledb.Options)
	now          func() time.Time
	keyTTL       time.Duration // WithIdempotencyTTL (retention.go)
}

func defaultOptions() options {
	return options{
		cacheSize:    DefaultCacheSize,
		memTableSize: DefaultMemTableSize,
		logger:       slog.Default(),
		fs:           vfs.Default,
		now:          time.Now,
	}
}

// WithNoSync relaxes durability for bulk imports. Appends are then
// acknowledged as soon as their batch is committed to Pebble without an
// fsync, and a background synced commit runs every `every` (never when
// every ≤ 0) as well as on Flush and Close.
//
// What a crash can lose in this mode: every append acknowledged after the
// last completed sync. That holds for a plain process crash too, not only
// for power loss, because Pebble's NoSync does not even hand the write to
// the operating system. What it cannot do: lose part of an append, reorder
// appends, or leave a gap in global positions (the WAL is replayed as a
// prefix). Call Flush (or Close) to make everything acknowledged so far
// durable.
//
// Readers of the whole log are not misled: ReadAll, Head and Wait only
// expose positions that a sync has made durable, so they lag acknowledged
// appends by up to `every`. ReadStream and StreamVersion show acknowledged
// appends immediately (read-your-writes for command handlers).
func WithNoSync(every time.Duration) Option {
	return func(o *options) { o.noSync, o.syncEvery = true, every }
}

// WithCacheSize sets the bytes of sstable blocks Pebble's block cache keeps
// (default DefaultCacheSize). The cache Open creates is larger by the
// memtables' reservation (see CacheCapacity), so that the blocks keep this
// much room however full the memtables are.
func WithCacheSize(bytes int64) Option {
	return func(o *options) {
		if bytes > 0 {
			o.cacheSize = bytes
		}
	}
}

// WithMemTableSize sets Pebble's memtable size in bytes (default
// DefaultMemTableSize). Values below 2×runtime.MaxBatchSize make the largest
// appends take Pebble's slower large-batch path.
func WithMemTableSize(bytes uint64) Option {
	return func(o *options) {
		if bytes > 0 {
			o.memTableSize = bytes
		}
	}
}

// WithLogger routes Pebble's log messages (and the store's own) to l
// (default slog.Default()). Pebble's fatal messages are logged at error
// level and put the store into a failed state instead of exiting the
// process: see Store.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithFS opens the store on fs instead of the operating system's file
// system, for example vfs.NewMem() for tests.
func WithFS(fs vfs.FS) Option {
	return func(o *options) {
		if fs != nil {
			o.fs = fs
		}
	}
}

// WithPebbleOptions lets f adjust the Pebble options after the store has
// set its own (for tuning compactions, levels, …). The store's choices of
// comparer, format, logger, lock and file system must be left alone.
func WithPebbleOptions(f func(*pebbledb.Options)) Option {
	return func(o *options) { o.tune = f }
}

// WithClock sets the clock that stamps events appended with a zero Time
// (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// CacheCapacity returns the capacity Open gives Pebble's block cache so that
// blockBytes of it stay available to sstable blocks: blockBytes plus the
// largest reservation the memtables can hold. Pebble charges every memtable
// it allocates (the mutable one, the frozen ones waiting for a flush, up to
// MemTableStopWritesThreshold, and one kept for reuse) against the block
// cache's capacity; a cache no larger than those memtables holds no block at
// all once they have grown to MemTableSize, which is what a store with the
// default sizes met after its first 128 MiB of writes until it was
// reopened. Memory in use stays bounded by the returned capacity: blocks
// take what the memtables do not.
func CacheCapacity(blockBytes int64, o *pebbledb.Options) int64 {
	threshold := int64(max(o.MemTableStopWritesThreshold, 2))
	return blockBytes + (threshold+1)*int64(o.MemTableSize)
}
