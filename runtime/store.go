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
	// ID is the event's unique id; the zero id means "make one", and the
	// store records a new NewEventID.
	ID EventID
	// Name is the event's stable wire name.
	Name string
	// Schema is the event's schema version (≥ 1 for generated events; 0 is
	// accepted and means unversioned).
	Schema uint32
	// Time is when the event happened; the zero time means "now" and is
	// filled in by the store. Stores keep nanoseconds in UTC.
	Time time.Time
	// Metadata is free-form string metadata (correlation ids, user, …).
	Metadata map[string]string
	// Data is the encoded event body.
	Data []byte
}

// Record is a stored event as a store returns it.
type Record struct {
	// EventID is the event's unique id (see EventData.ID); zero for
	// records stored before event ids existed.
	EventID  EventID
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
	Stream StreamID
	// Expected is the version the caller saw: an exact version, NoStream,
	// StreamExists or AnyVersion.
	Expected uint64
	// Events to append, at least one.
	Events []EventData
	// IdempotencyKey, when set, is recorded atomically with the events. If
	// the key was already recorded the append writes nothing and fails with
	// a *DuplicateError carrying the first record; this check comes before
	// the expected-version check.
	IdempotencyKey string
}

// AppendResult describes a committed append.
type AppendResult struct {
	// FirstVersion and LastVersion are the versions of the first and last
	// appended events; LastVersion is the stream's new version.
	FirstVersion, LastVersion uint64
	// FirstPosition and LastPosition are their global positions.
	FirstPosition, LastPosition uint64
}

// Snapshot is the encoded state of an aggregate at a version.
type Snapshot struct {
	Stream StreamID
	// Version is the stream version the state reflects.
	Version uint64
	// Schema identifies the state's encoded shape (generated: a hash of the
	// state type's fields). A snapshot whose Schema differs from the
	// aggregate's current one is ignored and the state is rebuilt from
	// events.
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
	Events  uint64
	Streams uint64
	// Snapshots counts streams that have a snapshot.
	Snapshots   uint64
	Checkpoints uint64
	// IdempotencyKeys counts keys recorded by Append and SaveIdempotency.
	IdempotencyKeys uint64
	// Head is the last durable global position.
	Head uint64
	// DiskBytes is the space used on disk, 0 for in-memory stores.
	DiskBytes int64
	Extra     map[string]int64
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
