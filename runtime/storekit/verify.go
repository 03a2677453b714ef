package storekit

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// Kinds of problem that a Verifier reports (VerifyProblem.Kind) wherever the
// concept is the same in every backend. Backends add kinds of their own
// (the Pebble store's "counters", PostgreSQL's "head", …). The values are
// stable: tools may match on them.
const (
	ProblemRecord       = "record"        // an event record does not decode, or claims another position
	ProblemPositionGap  = "position-gap"  // global positions are not exactly 1..head (Truncated()+1..head after a truncation)
	ProblemIndexMissing = "index-missing" // an event is missing from the store's stream index
	ProblemVersionGap   = "version-gap"   // a stream's versions do not run 1, 2, 3, … without holes
	ProblemVersionOrder = "version-order" // a stream's positions do not increase with its versions
	ProblemSnapshot     = "snapshot"      // a snapshot does not decode, is out of range or is ahead of its stream
	ProblemIdempotency  = "idempotency"   // an idempotency record does not decode or points past its stream
	ProblemCheckpoint   = "checkpoint"    // a checkpoint does not decode or is past the head
)

// MaxVerifyProblems bounds the problems a VerifyReport lists; VerifyReport.Add
// only counts the rest (VerifyReport.Omitted).
const MaxVerifyProblems = 1000

// VerifyProblem is one inconsistency that a store's Verify found.
type VerifyProblem struct {
	// Kind says what is wrong: one of the Problem* constants, or a kind of
	// the backend's own.
	Kind string
	// Key is the raw key concerned in a key-value backend (Pebble), nil
	// when the problem is about something missing or store-wide, or when
	// the backend has no keys.
	Key []byte
	// Table is the table concerned in a SQL backend (PostgreSQL).
	Table string
	// Stream, Version and Position locate the problem when they are known.
	Stream   runtime.StreamID
	Version  uint64
	Position uint64
	// Detail says what is wrong, in words.
	Detail string
}

// String formats the problem on one line: its kind, then what locates it
// (stream, version, position, key in hex, table; each only when set), then
// its detail.
func (p VerifyProblem) String() string {
	var b strings.Builder
	b.WriteString(p.Kind)
	if p.Stream != (runtime.StreamID{}) {
		fmt.Fprintf(&b, " stream %s", p.Stream)
	}
	if p.Version != 0 {
		fmt.Fprintf(&b, " version %d", p.Version)
	}
	if p.Position != 0 {
		fmt.Fprintf(&b, " position %d", p.Position)
	}
	if p.Key != nil {
		fmt.Fprintf(&b, " key %x", p.Key)
	}
	if p.Table != "" {
		fmt.Fprintf(&b, " table %s", p.Table)
	}
	b.WriteString(": ")
	b.WriteString(p.Detail)
	return b.String()
}

// VerifyReport is what a store's Verify found: what it counted and every
// problem.
type VerifyReport struct {
	// Events, Streams, Snapshots, Checkpoints and IdempotencyKeys count
	// what the walk found, whether or not it decoded (streams: those with
	// at least one event or index entry).
	Events, Streams, Snapshots, Checkpoints, IdempotencyKeys uint64
	// Head is the last position: the highest event position found
	// (Pebble) or the one the store records (PostgreSQL's log_head).
	Head uint64
	// Extra holds backend-specific counts under stable snake_case names,
	// for example the Pebble store's "keys" and "index_entries". Nil when
	// the backend has none.
	Extra map[string]uint64
	// Problems lists the first MaxVerifyProblems problems, in the order
	// the backend's checks found them.
	Problems []VerifyProblem
	// Omitted counts the problems found beyond MaxVerifyProblems.
	Omitted int
}

// OK reports whether no problem was found.
func (r VerifyReport) OK() bool { return len(r.Problems) == 0 && r.Omitted == 0 }

// Add records p: it is listed while fewer than MaxVerifyProblems are,
// otherwise only counted in Omitted. p.Key is copied, so callers may pass
// a key that an iterator will reuse.
func (r *VerifyReport) Add(p VerifyProblem) {
	if len(r.Problems) >= MaxVerifyProblems {
		r.Omitted++
		return
	}
	if p.Key != nil {
		p.Key = append([]byte(nil), p.Key...)
	}
	r.Problems = append(r.Problems, p)
}

// Verifier is implemented by stores that can check their own consistency:
// every record decodes, positions are gap-free, versions contiguous and
// the indexes agree with the records. Tools such as cqrsctl and test
// suites call it on any store through a type assertion.
//
// Verify reports problems in the VerifyReport; its error is only for a
// check that could not be completed (a closed store, a done context, an
// I/O error). Implementations check one consistent view of the store and
// let writers carry on meanwhile.
type Verifier interface {
	Verify(ctx context.Context) (VerifyReport, error)
}

// StreamInfo describes one stream as a StreamLister lists it.
type StreamInfo struct {
	Stream runtime.StreamID
	// Version is the stream's last committed version (its event count).
	Version uint64
	// LastPosition is the global position of that version's event.
	LastPosition uint64
}

// StreamLister is implemented by stores that can list their streams.
//
// Streams yields the streams that have at least one committed event,
// optionally only those of stream type typ ("" for all), starting after
// the stream after (the zero runtime.StreamID to start at the beginning), in the
// backend's own stable order; passing the last stream of one page as after
// yields the next page. With a type filter, after must be of that type or
// zero (a backend may reject another). The order differs between backends;
// each documents its own.
type StreamLister interface {
	Streams(ctx context.Context, typ string, after runtime.StreamID) iter.Seq2[StreamInfo, error]
}
