package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// collidingNames are strings that naive key encodings (concatenation,
// separators, NUL terminators, prefix scans) confuse with one another.
// Names with ':' matter to the runtime: projection checkpoints are often
// named "app:projection" and rebuild markers "cqrsgen:rebuild:<name>".
var collidingNames = []string{"a", "ab", "a\x00b", "a/b", "a\x00", "a\x00\x00", "\x00", "/", "b", "a\xff", "A", "a:", "a:b", ":", "é:ü"}

// collidingStreams returns stream ids that must all be distinct.
func collidingStreams() []runtime.StreamID {
	var out []runtime.StreamID
	for _, typ := range []string{"a", "ab", "a\x00", "a/b", "a\x00b"} {
		for _, id := range collidingNames {
			out = append(out, stream(typ, id))
		}
	}
	// Pairs whose concatenations with a separator or NUL are equal.
	out = append(out,
		stream("x", "b/c"), stream("x/b", "c"),
		stream("x\x00b", "c"), stream("x", "b\x00c"),
		stream("x", "\x00b"), stream("x\x00", "b"),
		stream("x", "bc"), stream("xb", "c"),
	)
	return out
}

func (h *harness) testKeys(t *testing.T) {
	t.Run("Streams", h.keysStreams)
	t.Run("Snapshots", h.keysSnapshots)
	t.Run("Checkpoints", h.keysCheckpoints)
	t.Run("IdempotencyKeys", h.keysIdempotency)
	t.Run("AtLimits", h.keysAtLimits)
}

func (h *harness) keysStreams(t *testing.T) {
	s := h.open(t)
	streams := collidingStreams()
	events := make(map[runtime.StreamID][]runtime.EventData)
	for i, st := range streams {
		evs := EventsWith(fmt.Sprintf("s%d-", i), i%3+1)
		events[st] = evs
		mustAppend(t, s, st, runtime.NoStream, evs...)
	}
	total := 0
	for _, st := range streams {
		evs := events[st]
		total += len(evs)
		if v := version(t, s, st); v != uint64(len(evs)) {
			t.Errorf("StreamVersion(%s) = %d, want %d", st, v, len(evs))
		}
		checkEvents(t, readStream(t, s, st, 0), st, 1, evs)
	}
	all := readAll(t, s, 0)
	if len(all) != total {
		t.Fatalf("ReadAll yielded %d records, want %d", len(all), total)
	}
	seen := make(map[runtime.StreamID]int)
	for _, r := range all {
		evs, ok := events[r.Stream]
		if !ok {
			t.Fatalf("ReadAll yielded a record of unknown stream %s", r.Stream)
		}
		i := seen[r.Stream]
		seen[r.Stream]++
		if i >= len(evs) || r.Name != evs[i].Name || r.Version != uint64(i+1) {
			t.Errorf("ReadAll record at position %d: %s v%d %q, want v%d of that stream", r.Position, r.Stream, r.Version, r.Name, i+1)
		}
	}
	if st := stats(t, s); st.Streams != uint64(len(streams)) || st.Events != uint64(total) {
		t.Errorf("Stats: %d streams, %d events; want %d, %d", st.Streams, st.Events, len(streams), total)
	}
}

func (h *harness) keysSnapshots(t *testing.T) {
	s := h.open(t)
	streams := collidingStreams()
	for i, st := range streams {
		mustAppend(t, s, st, runtime.NoStream, Events(i%3+1)...)
		if err := s.SaveSnapshot(ctx(t), runtime.Snapshot{Stream: st, Version: uint64(i%3 + 1), Schema: fmt.Sprint("schema", i), Data: fmt.Append(nil, i)}); err != nil {
			t.Fatalf("SaveSnapshot(%s): %v", st, err)
		}
	}
	for i, st := range streams {
		snap, err := s.LoadSnapshot(ctx(t), st)
		if err != nil {
			t.Errorf("LoadSnapshot(%s): %v", st, err)
			continue
		}
		if snap.Stream != st || snap.Version != uint64(i%3+1) || snap.Schema != fmt.Sprint("schema", i) || string(snap.Data) != fmt.Sprint(i) {
			t.Errorf("LoadSnapshot(%s) = %s v%d %q %q, want v%d schema%d %d", st, snap.Stream, snap.Version, snap.Schema, snap.Data, i%3+1, i, i)
		}
	}
	if n := stats(t, s).Snapshots; n != uint64(len(streams)) {
		t.Errorf("Stats.Snapshots = %d, want %d", n, len(streams))
	}
}

func (h *harness) keysCheckpoints(t *testing.T) {
	s := h.open(t)
	for i, name := range collidingNames {
		if err := s.SaveCheckpoint(ctx(t), name, uint64(i+1)*10); err != nil {
			t.Fatalf("SaveCheckpoint(%q): %v", name, err)
		}
	}
	for i, name := range collidingNames {
		pos, err := s.LoadCheckpoint(ctx(t), name)
		if err != nil || pos != uint64(i+1)*10 {
			t.Errorf("LoadCheckpoint(%q) = %d, %v; want %d", name, pos, err, (i+1)*10)
		}
	}
	if _, err := s.LoadCheckpoint(ctx(t), "a\x00\x00\x00"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("LoadCheckpoint of an unsaved name that extends a saved one: %v, want ErrNotFound", err)
	}
	if n := stats(t, s).Checkpoints; n != uint64(len(collidingNames)) {
		t.Errorf("Stats.Checkpoints = %d, want %d", n, len(collidingNames))
	}
}

func (h *harness) keysIdempotency(t *testing.T) {
	s := h.open(t)
	want := make(map[string]runtime.IdempotencyRecord)
	for i, key := range collidingNames {
		rec := runtime.IdempotencyRecord{Key: key, Stream: stream("T", key), Version: uint64(i + 1), Position: uint64(i + 100), Time: fixedTime.Add(time.Duration(i) * 1_000_001)}
		if i%2 == 0 {
			if err := s.SaveIdempotency(ctx(t), rec); err != nil {
				t.Fatalf("SaveIdempotency(%q): %v", key, err)
			}
		} else {
			res, err := s.Append(ctx(t), runtime.AppendRequest{Stream: rec.Stream, Expected: runtime.NoStream, Events: Events(i), IdempotencyKey: key})
			if err != nil {
				t.Fatalf("Append with key %q: %v", key, err)
			}
			rec.Version, rec.Position = res.LastVersion, res.LastPosition
		}
		want[key] = rec
	}
	for i, key := range collidingNames {
		got, err := s.LoadIdempotency(ctx(t), key)
		if err != nil {
			t.Errorf("LoadIdempotency(%q): %v", key, err)
			continue
		}
		w := want[key]
		if got.Key != w.Key || got.Stream != w.Stream || got.Version != w.Version || got.Position != w.Position ||
			(i%2 == 0 && !got.Time.Equal(w.Time)) {
			t.Errorf("LoadIdempotency(%q) = %+v, want %+v", key, got, w)
		}
	}
	if _, err := s.LoadIdempotency(ctx(t), "ab\x00"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("LoadIdempotency of an unsaved key: %v, want ErrNotFound", err)
	}
	if n := stats(t, s).IdempotencyKeys; n != uint64(len(collidingNames)) {
		t.Errorf("Stats.IdempotencyKeys = %d, want %d", n, len(collidingNames))
	}
}

// keysAtLimits checks that ids, names and keys exactly at the limits are
// accepted and round-trip.
func (h *harness) keysAtLimits(t *testing.T) {
	s := h.open(t)
	st := stream(strings.Repeat("T", runtime.MaxTypeLength), strings.Repeat("\xff", runtime.MaxIDLength))
	st2 := stream(strings.Repeat("T", runtime.MaxTypeLength), strings.Repeat("\xff", runtime.MaxIDLength-1))
	evs := Events(2)
	evs[1].Name = strings.Repeat("n", runtime.MaxNameLength)
	mustAppend(t, s, st, runtime.NoStream, evs...)
	mustAppend(t, s, st2, runtime.NoStream, Events(1)...)
	checkEvents(t, readStream(t, s, st, 0), st, 1, evs)
	if err := s.SaveSnapshot(ctx(t), runtime.Snapshot{Stream: st, Version: 2, Data: []byte("s")}); err != nil {
		t.Errorf("SaveSnapshot at limits: %v", err)
	} else if snap, err := s.LoadSnapshot(ctx(t), st); err != nil || snap.Stream != st {
		t.Errorf("LoadSnapshot at limits: %v", err)
	}
	long := strings.Repeat("k", runtime.MaxIDLength)
	if err := s.SaveCheckpoint(ctx(t), long, 7); err != nil {
		t.Errorf("SaveCheckpoint at limit: %v", err)
	} else if p, err := s.LoadCheckpoint(ctx(t), long); err != nil || p != 7 {
		t.Errorf("LoadCheckpoint at limit = %d, %v", p, err)
	}
	if _, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: 2, Events: Events(1), IdempotencyKey: long}); err != nil {
		t.Errorf("Append with key at limit: %v", err)
	} else if rec, err := s.LoadIdempotency(ctx(t), long); err != nil || rec.Stream != st || rec.Version != 3 {
		t.Errorf("LoadIdempotency at limit = %+v, %v", rec, err)
	}
}

func (h *harness) testBadInput(t *testing.T) {
	s := h.open(t)
	good := stream("T", "good")
	mustAppend(t, s, good, runtime.NoStream, Events(2)...)
	long := func(n int) string { return strings.Repeat("x", n) }
	bigData := make([]byte, runtime.MaxEventSize+1)
	chunk := make([]byte, runtime.MaxEventSize-8)
	nameless := Events(2)
	nameless[1].Name = ""
	longName := Events(2)
	longName[0].Name = long(runtime.MaxNameLength + 1)
	bigMeta := Events(1)
	bigMeta[0].Metadata = map[string]string{"k": string(bigData[:runtime.MaxEventSize])}
	tooMany := make([]runtime.EventData, runtime.MaxBatchEvents+1)
	for i := range tooMany {
		tooMany[i] = runtime.EventData{Name: "E", Data: []byte("x")}
	}
	tooBig := make([]runtime.EventData, runtime.MaxBatchSize/len(chunk)+1)
	for i := range tooBig {
		tooBig[i] = runtime.EventData{Name: "E", Data: chunk}
	}
	app := func(req runtime.AppendRequest) func(context.Context) error {
		return func(c context.Context) error { _, err := s.Append(c, req); return err }
	}
	read := func(st runtime.StreamID) func(context.Context) error {
		return func(c context.Context) error { _, err := Collect(s.ReadStream(c, st, 0)); return err }
	}
	ver := func(st runtime.StreamID) func(context.Context) error {
		return func(c context.Context) error { _, err := s.StreamVersion(c, st); return err }
	}
	snap := func(sn runtime.Snapshot) func(context.Context) error {
		return func(c context.Context) error { return s.SaveSnapshot(c, sn) }
	}
	loadSnap := func(st runtime.StreamID) func(context.Context) error {
		return func(c context.Context) error { _, err := s.LoadSnapshot(c, st); return err }
	}
	ckpt := func(name string) func(context.Context) error {
		return func(c context.Context) error { return s.SaveCheckpoint(c, name, 1) }
	}
	loadCkpt := func(name string) func(context.Context) error {
		return func(c context.Context) error { _, err := s.LoadCheckpoint(c, name); return err }
	}
	idem := func(key string) func(context.Context) error {
		return func(c context.Context) error {
			return s.SaveIdempotency(c, runtime.IdempotencyRecord{Key: key, Stream: good, Version: 1, Position: 1})
		}
	}
	loadIdem := func(key string) func(context.Context) error {
		return func(c context.Context) error { _, err := s.LoadIdempotency(c, key); return err }
	}
	cases := []struct {
		name   string
		call   func(context.Context) error
		target error
		st     runtime.StreamID // stream to check unchanged
	}{
		{"Append/EmptyType", app(runtime.AppendRequest{Stream: stream("", "x"), Events: Events(1)}), runtime.ErrInvalid, good},
		{"Append/EmptyID", app(runtime.AppendRequest{Stream: stream("T", ""), Events: Events(1)}), runtime.ErrInvalid, good},
		{"Append/EmptyBoth", app(runtime.AppendRequest{Events: Events(1)}), runtime.ErrInvalid, good},
		{"Append/NoEvents", app(runtime.AppendRequest{Stream: good, Expected: 2, Events: []runtime.EventData{}}), runtime.ErrInvalid, good},
		{"Append/NilEvents", app(runtime.AppendRequest{Stream: stream("T", "new"), Expected: runtime.AnyVersion}), runtime.ErrInvalid, stream("T", "new")},
		{"Append/EmptyName", app(runtime.AppendRequest{Stream: good, Expected: 2, Events: nameless}), runtime.ErrInvalid, good},
		{"Append/ReservedExpected", app(runtime.AppendRequest{Stream: good, Expected: runtime.MaxVersion + 1, Events: Events(1)}), runtime.ErrInvalid, good},
		{"Append/TypeTooLong", app(runtime.AppendRequest{Stream: stream(long(runtime.MaxTypeLength+1), "x"), Events: Events(1)}), runtime.ErrTooLarge, good},
		{"Append/IDTooLong", app(runtime.AppendRequest{Stream: stream("T", long(runtime.MaxIDLength+1)), Events: Events(1)}), runtime.ErrTooLarge, good},
		{"Append/NameTooLong", app(runtime.AppendRequest{Stream: good, Expected: 2, Events: longName}), runtime.ErrTooLarge, good},
		{"Append/EventTooLarge", app(runtime.AppendRequest{Stream: good, Expected: 2, Events: []runtime.EventData{{Name: "E", Data: bigData}}}), runtime.ErrTooLarge, good},
		{"Append/MetadataTooLarge", app(runtime.AppendRequest{Stream: good, Expected: 2, Events: bigMeta}), runtime.ErrTooLarge, good},
		{"Append/TooManyEvents", app(runtime.AppendRequest{Stream: good, Expected: 2, Events: tooMany}), runtime.ErrTooLarge, good},
		{"Append/BatchTooLarge", app(runtime.AppendRequest{Stream: good, Expected: 2, Events: tooBig}), runtime.ErrTooLarge, good},
		{"Append/KeyTooLong", app(runtime.AppendRequest{Stream: good, Expected: 2, Events: Events(1), IdempotencyKey: long(runtime.MaxIDLength + 1)}), runtime.ErrTooLarge, good},
		{"ReadStream/EmptyType", read(stream("", "good")), runtime.ErrInvalid, good},
		{"ReadStream/EmptyID", read(stream("T", "")), runtime.ErrInvalid, good},
		{"StreamVersion/EmptyType", ver(stream("", "good")), runtime.ErrInvalid, good},
		{"StreamVersion/EmptyID", ver(stream("T", "")), runtime.ErrInvalid, good},
		{"SaveSnapshot/EmptyID", snap(runtime.Snapshot{Stream: stream("T", ""), Version: 1}), runtime.ErrInvalid, good},
		{"SaveSnapshot/VersionZero", snap(runtime.Snapshot{Stream: good, Version: 0}), runtime.ErrInvalid, good},
		{"SaveSnapshot/VersionReserved", snap(runtime.Snapshot{Stream: good, Version: runtime.MaxVersion + 1}), runtime.ErrInvalid, good},
		{"SaveSnapshot/TooLarge", snap(runtime.Snapshot{Stream: good, Version: 2, Data: make([]byte, runtime.MaxSnapshotSize+1)}), runtime.ErrTooLarge, good},
		{"LoadSnapshot/EmptyType", loadSnap(stream("", "good")), runtime.ErrInvalid, good},
		{"SaveCheckpoint/EmptyName", ckpt(""), runtime.ErrInvalid, good},
		{"SaveCheckpoint/NameTooLong", ckpt(long(runtime.MaxIDLength + 1)), runtime.ErrTooLarge, good},
		{"LoadCheckpoint/EmptyName", loadCkpt(""), runtime.ErrInvalid, good},
		{"SaveIdempotency/EmptyKey", idem(""), runtime.ErrInvalid, good},
		{"SaveIdempotency/KeyTooLong", idem(long(runtime.MaxIDLength + 1)), runtime.ErrTooLarge, good},
		{"LoadIdempotency/EmptyKey", loadIdem(""), runtime.ErrInvalid, good},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := capture(t, s, c.st)
			err := c.call(ctx(t))
			wantErr(t, c.name, err, c.target)
			unchanged(t, s, c.st, before)
		})
	}
	if _, err := s.LoadSnapshot(ctx(t), good); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("a rejected snapshot was stored: LoadSnapshot = %v", err)
	}
}
