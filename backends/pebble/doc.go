// Package pebble is the durable, embedded event store of cqrsgen, built on
// github.com/cockroachdb/pebble/v2. Open a directory with [Open]; the
// returned [*Store] satisfies runtime.Store.
//
// Durability: Append returns only after its events are synced to disk. A
// single writer goroutine takes the appends queued by all callers, checks
// each against the state left by those before it, allocates consecutive
// global positions, writes them into one Pebble batch and commits it with
// one fsync, so concurrent appenders share fsyncs (group commit) and
// positions follow commit order without gaps. Readers of the whole log
// (ReadAll, Head, Wait) see only positions at or below a durable watermark
// that advances after the fsync. [WithNoSync] trades that for speed in
// bulk imports and documents exactly what a crash can then lose.
//
// The key layout and record encoding are described in docs/storage.md;
// every stored value carries a CRC-32C, so damaged bytes are reported as a
// *runtime.DecodeError naming the stream and version, never returned as
// data. The format version is checked at Open.
package pebble
