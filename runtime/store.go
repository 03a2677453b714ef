package runtime

import (
	"context"
	"iter"
	"strconv"
	"time"
)

// Expected-version values with a special meaning. Any other value is the
// exact version the stream must be at.
const (
	// NoStream expects the stream not to exist (version 0).
	NoStream uint64 = 0
	// AnyVersion disables the expected-version check.
	AnyVersion uint64 = ^uint64(0)
	// StreamExists expects the stream to exist (version ≥ 1), whatever its
	// version.
	StreamExists uint64 = ^uint64(0) - 1
	// MaxVersion is the largest version a stream can reach and the largest
	// exact expected version. Values between MaxVersion and StreamExists are
	// reserved: an append that names one fails with ErrInvalid.
	MaxVersion uint64 = 1<<62 - 1
)

// StreamID identifies a stream: the aggregate's stable type name and the
// aggregate's id. Both must be non-empty; both may hold any bytes, and
// stores must keep distinct pairs distinct (no prefix or separator
// collisions).
type StreamID struct {
	Type string
	ID   string
}

// String formats the stream for messages as Type/"ID" (the id quoted, so
// that ids holding separators or control bytes stay readable).
func (s StreamID) String() string {
	return s.Type + "/" + strconv.Quote(s.ID)
}

// EventData is one event to append: already encoded, with its wire name and
// schema version.
type EventData struct {
	ID       EventID           // unique id; zero: the store records a NewEventID
	Name     string            // stable wire name
	Schema   uint32            // schema version (≥ 1 generated; 0: unversioned)
	Time     time.Time         // when it happened (UTC ns); zero: now, set by the store
	Metadata map[string]string // free-form (correlation ids, user, …)
	Data     []byte            // the encoded event body
}

// Record is a stored event as a store returns it.
type Record struct {
	EventID  EventID // see EventData.ID; zero if stored before event ids existed
	Stream   StreamID
	Version  uint64
	Position uint64
	Name     string
	Schema   uint32
	Time     time.Time
	Metadata map[string]string
	Data     []byte
}

// AppendRequest is one atomic append: all of Events or none.
type AppendRequest struct {
	Stream   StreamID
	Expected uint64      // an exact version, NoStream, StreamExists or AnyVersion
	Events   []EventData // at least one
	// IdempotencyKey, when set, is recorded atomically with the events; a
	// recorded one fails with a *DuplicateError before any version check.
	IdempotencyKey string
}

// AppendResult describes a committed append.
type AppendResult struct {
	FirstVersion, LastVersion   uint64 // of the first and last events (Last: the new version)
	FirstPosition, LastPosition uint64 // their global positions
}

// Snapshot is the encoded state of an aggregate at a version.
type Snapshot struct {
	Stream  StreamID
	Version uint64 // the stream version the state reflects
	// Schema is the state's shape (a hash of its fields); another one is ignored.
	Schema string
	Data   []byte
	Time   time.Time
}

// IdempotencyRecord is the persisted first result of a keyed operation.
type IdempotencyRecord struct {
	Key      string
	Stream   StreamID
	Version  uint64 // the stream version the operation resulted in
	Position uint64 // the global position of its last event, 0 if it appended none
	Time     time.Time
}

// Stats are a store's counters. Extra holds backend-specific figures
// (for Pebble: compaction and cache metrics) under stable names.
type Stats struct {
	Events          uint64
	Streams         uint64
	Snapshots       uint64 // streams that have a snapshot
	Checkpoints     uint64
	IdempotencyKeys uint64 // keys recorded by Append and SaveIdempotency
	Head            uint64 // the last durable global position
	DiskBytes       int64  // space used on disk, 0 for in-memory stores
	Extra           map[string]int64
}

// Store is the contract between the runtime and a backend. All methods are
// safe for concurrent use; errors are typed (see the sentinels), and those
// wrapping ErrUnavailable are transient. Stores expose only durable
// positions, so subscribers are only ever told about persisted events.
// The full contract for store authors: package storekit.
type Store interface {
	// Append appends req.Events atomically if req.Expected matches (else a *ConflictError).
	Append(ctx context.Context, req AppendRequest) (AppendResult, error)
	// ReadStream yields the events of stream with version > after, in version order.
	ReadStream(ctx context.Context, stream StreamID, after uint64) iter.Seq2[Record, error]
	// ReadAll yields the events of all streams with position > after, up to the durable head.
	ReadAll(ctx context.Context, after uint64) iter.Seq2[Record, error]
	// StreamVersion returns the stream's current version, 0 when missing.
	StreamVersion(ctx context.Context, stream StreamID) (uint64, error)
	// Head returns the last durable global position, 0 for an empty store.
	Head(ctx context.Context) (uint64, error)
	// Wait blocks until the durable head is greater than after, then returns it.
	Wait(ctx context.Context, after uint64) (uint64, error)
	// SaveSnapshot stores s as the stream's latest snapshot unless a newer one is stored.
	SaveSnapshot(ctx context.Context, s Snapshot) error
	// LoadSnapshot returns the stream's latest snapshot or ErrNotFound.
	LoadSnapshot(ctx context.Context, stream StreamID) (Snapshot, error)
	// SaveCheckpoint records position under name; checkpoints may move backwards.
	SaveCheckpoint(ctx context.Context, name string, position uint64) error
	// LoadCheckpoint returns the position recorded under name or ErrNotFound.
	LoadCheckpoint(ctx context.Context, name string) (uint64, error)
	// SaveIdempotency records rec, or returns a *DuplicateError if its key is recorded.
	SaveIdempotency(ctx context.Context, rec IdempotencyRecord) error
	// LoadIdempotency returns the record for key or ErrNotFound.
	LoadIdempotency(ctx context.Context, key string) (IdempotencyRecord, error)
	// Stats returns the store's counters.
	Stats(ctx context.Context) (Stats, error)
	// Flush makes everything appended so far durable and returns when it is.
	Flush(ctx context.Context) error
	// Close releases the store; every later call returns ErrClosed.
	Close() error
}
