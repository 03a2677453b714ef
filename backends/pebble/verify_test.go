package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

var verifyQuiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fillVerifyStore writes three streams, a snapshot, a checkpoint and an
// idempotency key, and returns the directory (closed).
func fillVerifyStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, WithLogger(verifyQuiet))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	at := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	appendN := func(st runtime.StreamID, n int, key string) {
		var evs []runtime.EventData
		for i := range n {
			evs = append(evs, runtime.EventData{Name: fmt.Sprintf("E%d", i), Schema: 1, Time: at, Data: []byte{0x80}})
		}
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: evs, IdempotencyKey: key}); err != nil {
			t.Fatal(err)
		}
	}
	appendN(runtime.StreamID{Type: "account", ID: "a1"}, 2, "")
	appendN(runtime.StreamID{Type: "order", ID: "o1"}, 1, "req-1")
	appendN(runtime.StreamID{Type: "account", ID: "a2"}, 3, "")
	appendN(runtime.StreamID{Type: "account", ID: "a1"}, 1, "")
	if err := s.SaveSnapshot(ctx, runtime.Snapshot{Stream: runtime.StreamID{Type: "account", ID: "a1"}, Version: 2, Schema: "x", Data: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "proj", 5); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("fresh store has problems: %v", rep.Problems)
	}
	want := storekit.VerifyReport{Events: 7, Streams: 3, Snapshots: 1, Checkpoints: 1, IdempotencyKeys: 1, Head: 7,
		Extra: map[string]uint64{VerifyKeys: 2 + 7 + 7 + 1 + 1 + 1, VerifyIndexEntries: 7}}
	rep.Problems = nil
	if !reflect.DeepEqual(rep, want) {
		t.Errorf("report %+v, want %+v", rep, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// damage opens dir as a raw Pebble database and lets f change it.
func damage(t *testing.T, dir string, f func(db *pebbledb.DB)) {
	t.Helper()
	db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	f(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestVerifyFindsDamage(t *testing.T) {
	a1 := runtime.StreamID{Type: "account", ID: "a1"}
	a2 := runtime.StreamID{Type: "account", ID: "a2"}
	tests := []struct {
		name   string
		damage func(t *testing.T, db *pebbledb.DB)
		want   []string // problem kinds, in order
		opens  bool     // the store still opens (Store.Verify is checked too)
	}{
		{"flipped byte in an event record", func(t *testing.T, db *pebbledb.DB) {
			v, c, err := db.Get(eventKey(nil, 4))
			must(t, err)
			b := append([]byte(nil), v...)
			must(t, c.Close())
			b[len(b)/2] ^= 0xff
			must(t, db.Set(eventKey(nil, 4), b, pebbledb.Sync))
		}, []string{ProblemRecord}, true},
		{"deleted stream index entry", func(t *testing.T, db *pebbledb.DB) {
			must(t, db.Delete(streamIndexKey(nil, a2, 2), pebbledb.Sync))
		}, []string{ProblemIndexMissing, ProblemVersionGap}, true},
		{"deleted event record", func(t *testing.T, db *pebbledb.DB) {
			must(t, db.Delete(eventKey(nil, 3), pebbledb.Sync))
		}, []string{ProblemPositionGap, ProblemIndexDangling, ProblemCounters}, true},
		{"index pointing at another stream's event", func(t *testing.T, db *pebbledb.DB) {
			must(t, db.Set(streamIndexKey(nil, a1, 1), binary.BigEndian.AppendUint64(nil, 4), pebbledb.Sync))
		}, []string{ProblemIndexMissing, ProblemIndexMismatch, ProblemVersionOrder}, true},
		{"damaged counters", func(t *testing.T, db *pebbledb.DB) {
			must(t, db.Set(keyCounters, []byte{1, 2, 3}, pebbledb.Sync))
		}, []string{ProblemCounters}, false},
		{"counters off by one", func(t *testing.T, db *pebbledb.DB) {
			must(t, db.Set(keyCounters, encodeCounters(counters{Events: 8, Streams: 3, Snapshots: 1, Checkpoints: 1, IdempotencyKeys: 1}), pebbledb.Sync))
		}, []string{ProblemCounters}, true},
		{"unknown key", func(t *testing.T, db *pebbledb.DB) {
			must(t, db.Set([]byte("zzz"), []byte("x"), pebbledb.Sync))
		}, []string{ProblemUnknownKey}, true},
		{"checkpoint past the head, snapshot ahead", func(t *testing.T, db *pebbledb.DB) {
			must(t, db.Set(checkpointKey("proj"), encodeCheckpoint(99), pebbledb.Sync))
			must(t, db.Set(snapshotKey(a1), encodeSnapshot(runtime.Snapshot{Version: 9, Schema: "x"}), pebbledb.Sync))
		}, []string{ProblemCheckpoint, ProblemSnapshot}, true},
		{"damaged idempotency record", func(t *testing.T, db *pebbledb.DB) {
			must(t, db.Set(idemKey("req-1"), []byte{1, 0, 0, 0, 0, 0}, pebbledb.Sync))
		}, []string{ProblemIdempotency}, true},
		{"missing format key", func(t *testing.T, db *pebbledb.DB) {
			must(t, db.Delete(keyFormat, pebbledb.Sync))
		}, []string{ProblemFormat}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := fillVerifyStore(t)
			damage(t, dir, func(db *pebbledb.DB) { tt.damage(t, db) })
			rep, err := VerifyDir(context.Background(), dir, WithLogger(verifyQuiet))
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, p := range rep.Problems {
				kinds = append(kinds, p.Kind)
				t.Log(p)
			}
			if !slices.Equal(kinds, tt.want) {
				t.Errorf("problems %q, want %q", kinds, tt.want)
			}
			if rep.OK() {
				t.Error("OK() on a damaged store")
			}
			s, err := Open(dir, WithLogger(verifyQuiet))
			if !tt.opens {
				if err == nil {
					_ = s.Close()
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			rep2, err := s.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(rep2.Problems) != len(rep.Problems) {
				t.Errorf("Store.Verify found %v, VerifyDir %v", rep2.Problems, rep.Problems)
			}
		})
	}
}

func TestVerifyDirErrors(t *testing.T) {
	dir := fillVerifyStore(t)
	s, err := Open(dir, WithLogger(verifyQuiet))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyDir(context.Background(), dir); !errors.Is(err, ErrLocked) {
		t.Errorf("VerifyDir of an open store: %v, want ErrLocked", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Verify(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify on a canceled context: %v", err)
	}
	must(t, s.Close())
	if _, err := s.Verify(context.Background()); !errors.Is(err, runtime.ErrClosed) {
		t.Errorf("Verify after Close: %v", err)
	}
	if _, err := VerifyDir(context.Background(), dir+"/missing"); err == nil {
		t.Error("VerifyDir of a missing directory succeeded")
	}
}

func TestStreams(t *testing.T) {
	dir := fillVerifyStore(t)
	s, err := Open(dir, WithLogger(verifyQuiet))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	list := func(typ string, after runtime.StreamID, limit int) []string {
		t.Helper()
		var out []string
		for info, err := range s.Streams(ctx, typ, after) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s v%d p%d", info.Stream, info.Version, info.LastPosition))
			if len(out) == limit {
				break
			}
		}
		return out
	}
	tests := []struct {
		name  string
		typ   string
		after runtime.StreamID
		limit int
		want  []string
	}{
		{"all", "", runtime.StreamID{}, 0, []string{`order/"o1" v1 p3`, `account/"a1" v3 p7`, `account/"a2" v3 p6`}},
		{"type", "account", runtime.StreamID{}, 0, []string{`account/"a1" v3 p7`, `account/"a2" v3 p6`}},
		{"page 1", "", runtime.StreamID{}, 2, []string{`order/"o1" v1 p3`, `account/"a1" v3 p7`}},
		{"page 2", "", runtime.StreamID{Type: "account", ID: "a1"}, 2, []string{`account/"a2" v3 p6`}},
		{"type after", "account", runtime.StreamID{Type: "account", ID: "a1"}, 0, []string{`account/"a2" v3 p6`}},
		{"missing type", "nope", runtime.StreamID{}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := list(tt.typ, tt.after, tt.limit); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	for _, err := range s.Streams(ctx, "order", runtime.StreamID{Type: "account", ID: "a1"}) {
		if !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("after of another type: %v", err)
		}
	}
}

// countingReader counts the point lookups made through it.
type countingReader struct {
	kvReader
	gets int
}

func (c *countingReader) Get(key []byte) ([]byte, io.Closer, error) {
	c.gets++
	return c.kvReader.Get(key)
}

// TestVerifyHealthyStoreNeedsNoLookups checks that a consistent store is
// verified in one walk, comparing the events' and the index entries'
// digests instead of looking each up, and that a store whose index lost
// one entry is then walked again with lookups that name it.
func TestVerifyHealthyStoreNeedsNoLookups(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	defer s.Close()
	for i := range 20 {
		st := runtime.StreamID{Type: "T", ID: fmt.Sprint(i % 4)}
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: []runtime.EventData{ev("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	cr := &countingReader{kvReader: s.db}
	rep, err := verify(ctx, cr)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || rep.Events != 20 || rep.Streams != 4 {
		t.Fatalf("healthy store: %+v", rep)
	}
	if cr.gets != 0 {
		t.Errorf("verified a healthy store with %d lookups, want none", cr.gets)
	}

	if err := s.db.Delete(streamIndexKey(nil, runtime.StreamID{Type: "T", ID: "2"}, 3), pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	cr.gets = 0
	rep, err = verify(ctx, cr)
	if err != nil {
		t.Fatal(err)
	}
	if cr.gets == 0 {
		t.Error("a damaged index was not walked again with lookups")
	}
	var missing int
	for _, p := range rep.Problems {
		if p.Kind == ProblemIndexMissing && p.Stream.ID == "2" && p.Version == 3 {
			missing++
		}
	}
	if missing != 1 {
		t.Errorf("want one %s problem for T/2 version 3, got %+v", ProblemIndexMissing, rep.Problems)
	}
}

// TestEnvelope2RecordsInAStore rewrites the first events of a store as
// they were written before event ids existed (envelope 2): the store opens,
// reads them with a zero id beside the newer records' ids, verifies clean
// and keeps appending.
func TestEnvelope2RecordsInAStore(t *testing.T) {
	dir := fillVerifyStore(t)
	const old = 4
	damage(t, dir, func(db *pebbledb.DB) {
		for pos := uint64(1); pos <= old; pos++ {
			v, c, err := db.Get(eventKey(nil, pos))
			must(t, err)
			rec, err := decodeRecord(v)
			must(t, c.Close())
			must(t, err)
			must(t, db.Set(eventKey(nil, pos), encodeV2ForTest(&rec), pebbledb.Sync))
		}
	})
	rep, err := VerifyDir(context.Background(), dir)
	if err != nil || !rep.OK() {
		t.Fatalf("VerifyDir of a store holding envelope-2 records: %v, %v", rep.Problems, err)
	}
	s, err := Open(dir, WithLogger(verifyQuiet))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Append(ctx, runtime.AppendRequest{Stream: runtime.StreamID{Type: "account", ID: "a1"}, Expected: 3,
		Events: []runtime.EventData{{Name: "E", Schema: 1, Data: []byte{0x80}}}}); err != nil {
		t.Fatal(err)
	}
	var n uint64
	for rec, err := range s.ReadAll(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if zero := rec.EventID.IsZero(); zero != (rec.Position <= old) {
			t.Errorf("position %d: event id %q; want zero exactly for the envelope-2 records 1..%d", rec.Position, rec.EventID, old)
		}
	}
	if n != 8 {
		t.Errorf("ReadAll yielded %d records, want 8", n)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Errorf("Verify after appending: %v, %v", rep.Problems, err)
	}
}
