package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/runtime"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openT(t testing.TB, dir string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(dir, append([]Option{WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ev(data string) runtime.EventData {
	return runtime.EventData{Name: "E", Schema: 1, Data: []byte(data), Metadata: map[string]string{"k": data}}
}

func collect(t *testing.T, seq func(func(runtime.Record, error) bool)) ([]runtime.Record, error) {
	t.Helper()
	var out []runtime.Record
	for r, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

func TestStreamKeyInjective(t *testing.T) {
	pairs := []runtime.StreamID{
		{Type: "a", ID: "bc"}, {Type: "ab", ID: "c"}, {Type: "a", ID: "b"}, {Type: "a\x01", ID: "b"},
		{Type: "a", ID: "b\x00"}, {Type: "\x01a", ID: "b"}, {Type: "a", ID: strings.Repeat("x", 200)},
		{Type: "a", ID: strings.Repeat("x", 128)}, {Type: strings.Repeat("x", 128), ID: "a"},
	}
	seen := map[string]runtime.StreamID{}
	for _, p := range pairs {
		k := string(appendStreamKey(nil, p))
		if q, ok := seen[k]; ok {
			t.Fatalf("%v and %v share key %x", p, q, k)
		}
		seen[k] = p
	}
	for _, p := range pairs {
		for _, q := range pairs {
			if p != q && bytes.HasPrefix(appendStreamKey(nil, q), appendStreamKey(nil, p)) {
				t.Errorf("key of %v is a prefix of the key of %v", p, q)
			}
		}
	}
}

func TestRecordRoundTripAndDamage(t *testing.T) {
	rec := runtime.Record{
		EventID: runtime.NewEventID(),
		Stream:  runtime.StreamID{Type: "Account", ID: "a-1"}, Version: 7, Position: 1 << 40,
		Name: "Deposited", Schema: 3, Time: time.Date(1500, 1, 2, 3, 4, 5, 6, time.UTC),
		Metadata: map[string]string{"b": "2", "a": "1"}, Data: []byte("payload"),
	}
	enc := encodeRecord(nil, &rec, []string{"a", "b"})
	got, err := decodeRecord(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got.EventID != rec.EventID || got.Stream != rec.Stream || got.Version != rec.Version || got.Position != rec.Position || got.Name != rec.Name ||
		got.Schema != rec.Schema || !got.Time.Equal(rec.Time) || string(got.Data) != "payload" || got.Metadata["a"] != "1" || got.Metadata["b"] != "2" || len(got.Metadata) != 2 {
		t.Fatalf("round trip: got %+v, want %+v", got, rec)
	}
	// Every single-bit flip and every truncation is detected.
	for i := range enc {
		for bit := range 8 {
			b := bytes.Clone(enc)
			b[i] ^= 1 << bit
			if _, err := decodeRecord(b); err == nil {
				t.Fatalf("flip of bit %d of byte %d not detected", bit, i)
			}
		}
	}
	for n := range len(enc) {
		if _, err := decodeRecord(enc[:n]); err == nil {
			t.Fatalf("truncation to %d bytes not detected", n)
		}
	}
	// VisitStream's view of the record: the same fields, the same checks.
	var v runtime.EventView
	if err := viewRecord(&v, enc, appendStreamKey(nil, rec.Stream), rec.Version, rec.Position); err != nil || v.Name != rec.Name ||
		v.Schema != rec.Schema || string(v.Data) != "payload" || v.Version != rec.Version || v.Position != rec.Position {
		t.Fatalf("viewRecord: %+v, %v; want the record's fields", v, err)
	}
	for i := range enc {
		for bit := range 8 {
			b := bytes.Clone(enc)
			b[i] ^= 1 << bit
			if err := viewRecord(&v, b, appendStreamKey(nil, rec.Stream), rec.Version, rec.Position); err == nil {
				t.Fatalf("viewRecord: flip of bit %d of byte %d not detected", bit, i)
			}
		}
	}
	for n := range len(enc) {
		if err := viewRecord(&v, enc[:n], appendStreamKey(nil, rec.Stream), rec.Version, rec.Position); err == nil {
			t.Fatalf("viewRecord: truncation to %d bytes not detected", n)
		}
	}
	other := runtime.StreamID{Type: rec.Stream.Type, ID: "a-2"}
	for _, c := range []struct {
		st       *runtime.StreamID
		ver, pos uint64
	}{{&other, rec.Version, rec.Position}, {&rec.Stream, rec.Version + 1, rec.Position}, {&rec.Stream, rec.Version, rec.Position - 1}} {
		if err := viewRecord(&v, enc, appendStreamKey(nil, *c.st), c.ver, c.pos); err == nil {
			t.Errorf("viewRecord accepted the record as %s version %d position %d", c.st, c.ver, c.pos)
		}
	}
}

// TestRecordEnvelope2 checks that records written before event ids existed
// (envelope 2, no id) still decode, with a zero id and every other field
// as written, and that damage to them is still detected.
func TestRecordEnvelope2(t *testing.T) {
	for _, rec := range fuzzRecords() {
		rec.EventID = runtime.EventID{}
		v2 := encodeV2ForTest(&rec)
		if v2[0] != recordV2 {
			t.Fatalf("test encoding starts with %d, want envelope 2", v2[0])
		}
		got, err := decodeRecord(v2)
		if err != nil {
			t.Fatalf("%s v%d: envelope 2 does not decode: %v", rec.Stream, rec.Version, err)
		}
		if !sameRecord(got, rec) {
			t.Errorf("envelope 2 decoded as %+v, want %+v", got, rec)
		}
		if _, err := decodeRecord(v2[:len(v2)-1]); err == nil {
			t.Errorf("%s v%d: truncated envelope 2 accepted", rec.Stream, rec.Version)
		}
		if st, ver, ok := peekRecordHeader(v2[:len(v2)-4]); !ok || st != rec.Stream || ver != rec.Version {
			t.Errorf("peekRecordHeader(envelope 2) = %s, %d, %v; want %s, %d", st, ver, ok, rec.Stream, rec.Version)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	rec := runtime.Record{Stream: runtime.StreamID{Type: "T", ID: "i"}, Version: 1, Position: 1, Name: "E", Data: []byte("x")}
	f.Add(encodeRecord(nil, &rec, nil))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		// Also bypass the checksum to exercise the parser on arbitrary bytes.
		_, _ = decodeRecord(b)
		_, _ = parseRecord(b)
		_, _ = decodeSnapshot(runtime.StreamID{Type: "T", ID: "i"}, b)
		_, _ = decodeIdem("k", b)
		_, _ = decodeCounters(b)
	})
}

func TestParseHugeLengthPrefix(t *testing.T) {
	// A metadata count and a data length far beyond the value must fail
	// without allocating them.
	b := []byte{recordV2, 1, 'T', 1, 'i', 1, 'E', 1, 0, 0}
	b = binary.AppendUvarint(b, 1<<40)
	b = append(b, make([]byte, 16)...) // the fixed-width version and position
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := parseRecord(b); err == nil {
			t.Fatal("huge metadata count accepted")
		}
	})
	if allocs > 4 {
		t.Errorf("%v allocations for a rejected value", allocs)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Run("DoubleOpen", func(t *testing.T) {
		dir := t.TempDir()
		s := openT(t, dir)
		defer s.Close()
		_, err := Open(dir, WithLogger(quiet))
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
			t.Fatalf("second Open: %v, want ErrLocked naming %s", err, dir)
		}
		// The first store is unharmed.
		if _, err := s.Append(context.Background(), runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "x"}, Events: []runtime.EventData{ev("a")}}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("NotAStore", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hi"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir, WithLogger(quiet))
		if !errors.Is(err, ErrNotStore) || !strings.Contains(err.Error(), dir) {
			t.Fatalf("Open: %v, want ErrNotStore naming %s", err, dir)
		}
		if _, err := os.Stat(filepath.Join(dir, "LOCK")); err == nil {
			t.Error("Open left a LOCK file in a foreign directory")
		}
	})
	t.Run("OtherPebbleDB", func(t *testing.T) {
		dir := t.TempDir()
		db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: &logger{s: &Store{}, l: quiet}})
		if err != nil {
			t.Fatal(err)
		}
		_ = db.Set([]byte("foreign"), []byte("x"), pebbledb.Sync)
		_ = db.Close()
		_, err = Open(dir, WithLogger(quiet))
		if !errors.Is(err, ErrNotStore) {
			t.Fatalf("Open: %v, want ErrNotStore", err)
		}
	})
	t.Run("FileNotDir", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(f, WithLogger(quiet))
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Fatalf("Open of a file: %v, want an error naming %s", err, f)
		}
	})
	t.Run("NewerFormat", func(t *testing.T) {
		dir := t.TempDir()
		s := openT(t, dir)
		s.Close()
		db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: &logger{s: &Store{}, l: quiet}})
		if err != nil {
			t.Fatal(err)
		}
		_ = db.Set(keyFormat, binary.AppendUvarint(nil, FormatVersion+1), pebbledb.Sync)
		_ = db.Close()
		_, err = Open(dir, WithLogger(quiet))
		want := fmt.Sprintf("format version %d; this build reads format version %d", FormatVersion+1, FormatVersion)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Open: %v, want ErrFormat naming %s and %q", err, dir, want)
		}
	})
}

// TestCorruptRecord damages a stored record through a raw Pebble handle and
// expects typed errors naming the stream and version.
func TestCorruptRecord(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	st := runtime.StreamID{Type: "Account", ID: "acc-9"}
	for i := range 3 {
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: []runtime.EventData{ev(fmt.Sprint("e", i))}}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"FlipDataByte", func(b []byte) []byte { b[len(b)-6] ^= 0x40; return b }},
		{"FlipHeaderByte", func(b []byte) []byte { b[3] ^= 0x01; return b }},
		{"Truncate", func(b []byte) []byte { return b[:len(b)/2] }},
		{"Empty", func([]byte) []byte { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: &logger{s: &Store{}, l: quiet}})
			if err != nil {
				t.Fatal(err)
			}
			key := eventKey(nil, 2)
			v, c, err := db.Get(key)
			if err != nil {
				t.Fatal(err)
			}
			orig := bytes.Clone(v)
			c.Close()
			if err := db.Set(key, tc.damage(bytes.Clone(orig)), pebbledb.Sync); err != nil {
				t.Fatal(err)
			}
			db.Close()
			defer func() {
				db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: &logger{s: &Store{}, l: quiet}})
				if err != nil {
					t.Fatal(err)
				}
				_ = db.Set(key, orig, pebbledb.Sync)
				db.Close()
			}()

			s := openT(t, dir)
			defer s.Close()
			recs, err := collect(t, s.ReadStream(ctx, st, 0))
			var de *runtime.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, runtime.ErrCorrupt) || de.Stream != st || de.Version != 2 || de.Position != 2 {
				t.Fatalf("ReadStream: %v, want a DecodeError for %s version 2", err, st)
			}
			if len(recs) != 1 || string(recs[0].Data) != "e0" {
				t.Fatalf("ReadStream yielded %d records before the damage, want 1", len(recs))
			}
			var shown []string
			err = s.VisitStream(ctx, st, 0, func(e *runtime.EventView) error { shown = append(shown, string(e.Data)); return nil })
			if !errors.As(err, &de) || !errors.Is(err, runtime.ErrCorrupt) || de.Stream != st || de.Version != 2 || de.Position != 2 {
				t.Fatalf("VisitStream: %v, want a DecodeError for %s version 2", err, st)
			}
			if len(shown) != 1 || shown[0] != "e0" {
				t.Fatalf("VisitStream showed %q before the damage, want [e0]", shown)
			}
			recs, err = collect(t, s.ReadAll(ctx, 0))
			if !errors.As(err, &de) || de.Position != 2 || len(recs) != 1 {
				t.Fatalf("ReadAll: %v after %d records, want a DecodeError at position 2 after 1", err, len(recs))
			}
			if !strings.Contains(err.Error(), "position 2") {
				t.Errorf("error %q does not name the position", err)
			}
		})
	}
}

func TestCloseEndsOpenIterators(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	st := runtime.StreamID{Type: "T", ID: "x"}
	for range 5 {
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: []runtime.EventData{ev("a"), ev("b")}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		seq  func() func(func(runtime.Record, error) bool)
	}{
		{"ReadStream", func() func(func(runtime.Record, error) bool) { return s.ReadStream(ctx, st, 0) }},
		{"ReadAll", func() func(func(runtime.Record, error) bool) { return s.ReadAll(ctx, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s2 := openT(t, t.TempDir())
			_ = s2 // a second store whose iterators must not matter
			var n int
			var last error
			ran := false
			for _, err := range tc.seq() {
				if err != nil {
					last = err
					break
				}
				n++
				if n == 3 && !ran {
					ran = true
					if tc.name == "ReadAll" {
						if err := s.Close(); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			s2.Close()
			if tc.name == "ReadStream" {
				// Break early: the iterator must be released.
				for range s.ReadStream(ctx, st, 0) {
					break
				}
				s.itersMu.Lock()
				open := len(s.iters)
				s.itersMu.Unlock()
				if open != 0 {
					t.Fatalf("%d iterators open after the loops ended", open)
				}
				return
			}
			if !errors.Is(last, runtime.ErrClosed) || n != 3 {
				t.Fatalf("after Close mid-loop: %d records then %v, want 3 then ErrClosed", n, last)
			}
		})
	}
	if err := s.Close(); !errors.Is(err, runtime.ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	if _, err := s.Stats(ctx); !errors.Is(err, runtime.ErrClosed) {
		t.Fatalf("Stats after Close: %v", err)
	}
}

// TestFatalFailsStore simulates Pebble calling Logger.Fatalf: the process
// must survive and the store refuse further work.
func TestFatalFailsStore(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	defer s.Close()
	st := runtime.StreamID{Type: "T", ID: "x"}
	if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Events: []runtime.EventData{ev("a")}}); err != nil {
		t.Fatal(err)
	}
	(&logger{s: s, l: quiet}).Fatalf("pebble: fatal commit error: %v", errors.New("disk on fire"))
	_, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: 1, Events: []runtime.EventData{ev("b")}})
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Append after fatal: %v, want ErrFailed", err)
	}
	if _, err := s.StreamVersion(ctx, st); !errors.Is(err, ErrFailed) {
		t.Fatalf("StreamVersion after fatal: %v, want ErrFailed", err)
	}
}

// TestGroupConflictFailsAlone queues many appends with the same expected
// version at once: exactly one per round wins, the rest conflict, and the
// winners' positions are gap-free.
func TestGroupConflictFailsAlone(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	defer s.Close()
	st := runtime.StreamID{Type: "T", ID: "hot"}
	const writers, rounds = 32, 20
	for round := range rounds {
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, conflicts := 0, 0
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A second stream per writer shares the group.
				other := runtime.StreamID{Type: "T", ID: fmt.Sprint("w", w)}
				if _, err := s.Append(ctx, runtime.AppendRequest{Stream: other, Expected: runtime.AnyVersion, Events: []runtime.EventData{ev("o")}}); err != nil {
					t.Error(err)
				}
				_, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: uint64(round), Events: []runtime.EventData{ev("h")}})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, runtime.ErrConflict):
					conflicts++
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 || conflicts != writers-1 {
			t.Fatalf("round %d: %d wins, %d conflicts", round, wins, conflicts)
		}
	}
	recs, err := collect(t, s.ReadAll(ctx, 0))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Position != uint64(i+1) {
			t.Fatalf("record %d has position %d", i, r.Position)
		}
	}
	if want := rounds * (writers + 1); len(recs) != want {
		t.Fatalf("%d records, want %d", len(recs), want)
	}
	stats, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Events != uint64(len(recs)) || stats.Streams != writers+1 || stats.Head != uint64(len(recs)) {
		t.Fatalf("Stats = %+v", stats)
	}
}

// TestNoSyncWatermark: with relaxed syncing, appends are acknowledged and
// readable per stream at once, but the whole log only shows them after a
// sync.
func TestNoSyncWatermark(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir(), WithNoSync(0))
	defer s.Close()
	st := runtime.StreamID{Type: "T", ID: "x"}
	res, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Events: []runtime.EventData{ev("a"), ev("b")}})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.StreamVersion(ctx, st); err != nil || v != 2 {
		t.Fatalf("StreamVersion = %d, %v", v, err)
	}
	if recs, err := collect(t, s.ReadStream(ctx, st, 0)); err != nil || len(recs) != 2 {
		t.Fatalf("ReadStream: %d records, %v", len(recs), err)
	}
	if h, _ := s.Head(ctx); h != 0 {
		t.Fatalf("Head = %d before any sync, want 0", h)
	}
	if recs, _ := collect(t, s.ReadAll(ctx, 0)); len(recs) != 0 {
		t.Fatalf("ReadAll showed %d unsynced records", len(recs))
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.Head(ctx); h != res.LastPosition {
		t.Fatalf("Head = %d after Flush, want %d", h, res.LastPosition)
	}
}

// TestOneClockPerAppend checks that an append reads the clock once: its
// events without a time and its idempotency record share one reading.
func TestOneClockPerAppend(t *testing.T) {
	var calls atomic.Int64
	base := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return base.Add(time.Duration(calls.Add(1)) * time.Second) }
	s, err := Open(t.TempDir(), WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := runtime.StreamID{Type: "acct", ID: "1"}
	events := []runtime.EventData{{Name: "A"}, {Name: "B"}, {Name: "C", Time: base.Add(-time.Hour)}}
	if _, err := s.Append(t.Context(), runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: events, IdempotencyKey: "k"}); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the clock was read %d times for one append, want 1", n)
	}
	var times []time.Time
	for rec, err := range s.ReadStream(t.Context(), st, 0) {
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, rec.Time)
	}
	rec, err := s.LoadIdempotency(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	want := base.Add(time.Second)
	if len(times) != 3 || !times[0].Equal(want) || !times[1].Equal(want) || !times[2].Equal(base.Add(-time.Hour)) || !rec.Time.Equal(want) {
		t.Errorf("event times %v, idempotency time %v; want %v for the events without a time and the record, the given time kept", times, rec.Time, want)
	}
}

// TestCursorNumbers: numbers reads a record's schema, time and metadata
// count as four binary.Uvarint calls do, through its 64-bit loads and
// through its field-by-field path alike (short input, long or overlong
// varints, truncation), and moves past the same bytes.
func TestCursorNumbers(t *testing.T) {
	vals := []uint64{0, 1, 127, 128, 1 << 14, 1<<21 - 1, 1 << 35, 1<<56 - 1, 1 << 56, 1 << 63, math.MaxUint64}
	var cases [][]byte
	for _, s := range []uint64{0, 1, 300} {
		for _, sec := range vals {
			for _, ns := range []uint64{0, 999_999_999, 1 << 56, math.MaxUint64} {
				for _, k := range []uint64{0, 2, 200} {
					b := binary.AppendUvarint(nil, s)
					b = binary.AppendUvarint(b, sec)
					b = binary.AppendUvarint(b, ns)
					b = binary.AppendUvarint(b, k)
					cases = append(cases, b, append(slices.Clone(b), make([]byte, 20)...), b[:len(b)-1])
				}
			}
		}
	}
	cases = append(cases, nil, bytes.Repeat([]byte{0x80}, 30), append(bytes.Repeat([]byte{0xff}, 9), 0x02, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
	for _, b := range cases {
		var want [4]uint64
		off, bad := 0, false
		for i := range want {
			v, n := binary.Uvarint(b[off:])
			if n <= 0 {
				bad = true
				break
			}
			want[i], off = v, off+n
		}
		c := cursor{b: b}
		s, sec, ns, k := c.numbers()
		got := [4]uint64{s, uint64(sec<<1) ^ uint64(sec>>63), ns, k}
		if c.bad != bad || (!bad && (got != want || c.off != off)) {
			t.Errorf("numbers(%x) = %v, off %d, bad %v; want %v, off %d, bad %v", b, got, c.off, c.bad, want, off, bad)
		}
	}
}
