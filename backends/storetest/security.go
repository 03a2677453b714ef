package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// hostile are user-controlled strings that must be stored as opaque bytes:
// SQL metacharacters and injections, LIKE wildcards, PostgreSQL parameter
// and escape syntax, NUL, 0xff and invalid UTF-8, and separators of
// textual key encodings. None may reach another stream's keys, break out
// of a key prefix or be interpreted by a database.
var hostile = []string{
	"'; DROP TABLE events; --",
	"'); DELETE FROM streams; --",
	"' OR '1'='1",
	`" OR ""="`,
	"$1", "$2::bytea", "$$", "$tag$x$tag$",
	`\`, `\\`, `\x00`, `E'\x41'`,
	"%", "_", "%%", "a%", "a_", "%_%", "[a-z]*",
	"\x00", "\x00\x00", "a\x00'; DROP TABLE events; --",
	"\xff", "\xff\xff", "\xfe\xff", "\xc3\x28", "\xed\xa0\x80", "\x80abc",
	"/*", "*/", "--", ";", "`", "{{S}}", ":name", "?", "@p1",
	"\r\n", "\u2028", "\t", "é",
}

// family returns a base id and ids that are prefixes, suffixes and
// extensions of it: a store that matches ids by prefix, by LIKE, or
// without a terminator would mix their records.
func family(base string) []string {
	return []string{
		base, base[:len(base)-1], base[1:], base + "\x00", base + "\xff", base + "%", base + "_",
		"\x00" + base, base + "/x", strings.ToUpper(base), base + base,
	}
}

// securityStreams returns the streams of the security tests: hostile ids
// under an ordinary type, hostile types with an ordinary id, and a family of
// ids that prefix and extend one another.
func securityStreams() []runtime.StreamID {
	var out []runtime.StreamID
	for _, x := range hostile {
		out = append(out, stream("T", x), stream(x, "id"))
	}
	for _, id := range family("acct-1234") {
		out = append(out, stream("acct", id))
	}
	for _, typ := range family("acct") {
		if typ != "acct" {
			out = append(out, stream(typ, "acct-1234"))
		}
	}
	return out
}

// hostileEvents returns n events whose names, metadata keys and values and
// data are hostile strings, distinct per (i, j).
func hostileEvents(i, n int) []runtime.EventData {
	evs := make([]runtime.EventData, n)
	for j := range evs {
		h := hostile[(i+j)%len(hostile)]
		g := hostile[(i+2*j+1)%len(hostile)]
		evs[j] = runtime.EventData{
			Name:   h + fmt.Sprint(i, "/", j) + g,
			Schema: uint32(i + 1),
			Metadata: map[string]string{
				h:                   g,
				g + "\x00":          h + "\xff",
				"k" + fmt.Sprint(i): "'; DROP TABLE events; --",
			},
			Data: fmt.Appendf(nil, "%s\x00%d\xff%d%s", g, i, j, h),
		}
	}
	return evs
}

func (h *harness) testSecurity(t *testing.T) {
	t.Run("Streams", h.securityStreams)
	t.Run("AtLimits", h.securityAtLimits)
	t.Run("Keys", h.securityKeys)
}

// securityStreams appends hostile events to hostile streams and checks that
// each reads back byte for byte, alone, at the positions it was given; that
// wildcard and neighbouring ids that were never written are empty; and that
// the store still works afterwards (and after a reopen).
func (h *harness) securityStreams(t *testing.T) {
	s := h.open(t)
	streams := securityStreams()
	seen := make(map[runtime.StreamID]bool)
	events := make(map[runtime.StreamID][]runtime.EventData)
	first := make(map[runtime.StreamID]uint64) // first position of each stream's append
	var total uint64
	for i, st := range streams {
		if seen[st] {
			t.Fatalf("storetest: stream %s listed twice", st)
		}
		seen[st] = true
		evs := hostileEvents(i, i%3+1)
		res := mustAppend(t, s, st, runtime.NoStream, evs...)
		if res.FirstPosition != total+1 || res.LastPosition != total+uint64(len(evs)) {
			t.Fatalf("Append(%s) at positions %d..%d, want %d..%d", st, res.FirstPosition, res.LastPosition, total+1, total+uint64(len(evs)))
		}
		events[st], first[st] = evs, res.FirstPosition
		total += uint64(len(evs))
	}
	verify := func(t *testing.T, s runtime.Store) {
		t.Helper()
		for _, st := range streams {
			recs := readStream(t, s, st, 0)
			checkEvents(t, recs, st, 1, events[st])
			for k, r := range recs {
				if want := first[st] + uint64(k); r.Position != want {
					t.Errorf("%s v%d at position %d, want %d", st, r.Version, r.Position, want)
				}
			}
			if v := version(t, s, st); v != uint64(len(events[st])) {
				t.Errorf("StreamVersion(%s) = %d, want %d", st, v, len(events[st]))
			}
		}
		all := readAll(t, s, 0)
		if uint64(len(all)) != total {
			t.Fatalf("ReadAll yielded %d records, want %d", len(all), total)
		}
		for k, r := range all {
			evs, ok := events[r.Stream]
			if !ok {
				t.Fatalf("ReadAll record at position %d belongs to stream %s, which was never written", r.Position, r.Stream)
			}
			if r.Position != uint64(k+1) || r.Version < 1 || r.Version > uint64(len(evs)) || r.Position != first[r.Stream]+r.Version-1 {
				t.Fatalf("ReadAll record %d: %s v%d at position %d, appended at %d", k, r.Stream, r.Version, r.Position, first[r.Stream]+r.Version-1)
			}
			if msg := diffRecord(runtime.Record{EventID: r.EventID, Stream: r.Stream, Version: r.Version, Position: r.Position, Name: evs[r.Version-1].Name,
				Schema: evs[r.Version-1].Schema, Time: r.Time, Metadata: evs[r.Version-1].Metadata, Data: evs[r.Version-1].Data}, r); msg != "" {
				t.Errorf("ReadAll record %d: %s", k, msg)
			}
		}
		// Streams never written: wildcards, neighbours and escapes of written ones.
		for _, st := range []runtime.StreamID{
			stream("T", "%%%"), stream("T", "_%"), stream("T", "'"), stream("T", "\x00\x00\x00"), stream("T", "'; DROP TABLE events; -"),
			stream("acct", "acct-%"), stream("acct", "acct-123_"), stream("acct", "acct-1234\x00\x00"), stream("acct", "acct"),
			stream("%", "%"), stream("_", "id"), stream("T\x00", "id"), stream("acct\x00acct-1234", "x"),
		} {
			if seen[st] {
				continue
			}
			if recs := readStream(t, s, st, 0); len(recs) != 0 {
				t.Errorf("ReadStream(%s), never written, yielded %d records, the first of %s", st, len(recs), recs[0].Stream)
			}
			if v := version(t, s, st); v != 0 {
				t.Errorf("StreamVersion(%s), never written, = %d", st, v)
			}
			if _, err := s.LoadSnapshot(ctx(t), st); !errors.Is(err, runtime.ErrNotFound) {
				t.Errorf("LoadSnapshot(%s), never written: %v, want ErrNotFound", st, err)
			}
		}
		if st := stats(t, s); st.Events != total || st.Streams != uint64(len(streams)) || st.Head != total {
			t.Errorf("Stats = %d events in %d streams, head %d; want %d in %d, head %d", st.Events, st.Streams, st.Head, total, len(streams), total)
		}
	}
	verify(t, s)

	// The store still works: an ordinary stream appends at the next position.
	ord := stream("Order", "o-1")
	res := mustAppend(t, s, ord, runtime.NoStream, Events(2)...)
	if res.FirstPosition != total+1 {
		t.Errorf("ordinary append after hostile input at position %d, want %d", res.FirstPosition, total+1)
	}
	checkEvents(t, readStream(t, s, ord, 0), ord, 1, Events(2))
	events[ord], first[ord] = Events(2), total+1
	streams = append(streams, ord)
	total += 2
	verify(t, s)
	if h.f.Reopen != nil {
		t.Run("Reopen", func(t *testing.T) {
			verify(t, h.reopen(t, s))
		})
	}
}

// securityAtLimits writes hostile bytes at the length limits: a stream type
// and id, an event name, an idempotency key and a checkpoint name made of
// SQL metacharacters, NUL and 0xff up to their limits, metadata and data of
// a megabyte, and a long snapshot schema.
func (h *harness) securityAtLimits(t *testing.T) {
	s := h.open(t)
	fill := func(pattern string, n int) string { return strings.Repeat(pattern, n/len(pattern)+1)[:n] }
	st := stream(fill("'; DROP TABLE events; --\x00\xff", runtime.MaxTypeLength), fill("%_\\$1'\x00\xff", runtime.MaxIDLength))
	other := stream(st.Type, st.ID[:runtime.MaxIDLength-1])
	big := fill("'\x00\xff%_\\", 1<<20)
	ev := runtime.EventData{
		Name:     fill("$1'\x00\xff%", runtime.MaxNameLength),
		Schema:   7,
		Metadata: map[string]string{fill("'\x00", 4096): big[:1<<19], "\xff": big[:1<<10]},
		Data:     []byte(big),
	}
	key := fill("\x00'; DROP TABLE idempotency; --\xff", runtime.MaxIDLength)
	res, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: []runtime.EventData{ev}, IdempotencyKey: key})
	if err != nil {
		t.Fatalf("Append at the limits: %v", err)
	}
	mustAppend(t, s, other, runtime.NoStream, Events(1)...)
	checkEvents(t, readStream(t, s, st, 0), st, 1, []runtime.EventData{ev})
	checkEvents(t, readStream(t, s, other, 0), other, 1, Events(1))
	if rec, err := s.LoadIdempotency(ctx(t), key); err != nil || rec.Key != key || rec.Stream != st || rec.Version != 1 || rec.Position != res.LastPosition {
		t.Errorf("LoadIdempotency(long hostile key) = %+v, %v; want %s v1 at %d", rec, err, st, res.LastPosition)
	}
	if _, err := s.LoadIdempotency(ctx(t), key[:len(key)-1]); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("LoadIdempotency(key without its last byte): %v, want ErrNotFound", err)
	}
	name := fill(`\%_'`, runtime.MaxIDLength)
	if err := s.SaveCheckpoint(ctx(t), name, 42); err != nil {
		t.Fatalf("SaveCheckpoint(long hostile name): %v", err)
	}
	if p, err := s.LoadCheckpoint(ctx(t), name); err != nil || p != 42 {
		t.Errorf("LoadCheckpoint(long hostile name) = %d, %v; want 42", p, err)
	}
	if _, err := s.LoadCheckpoint(ctx(t), name[:len(name)-1]); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("LoadCheckpoint(name without its last byte): %v, want ErrNotFound", err)
	}
	snap := runtime.Snapshot{Stream: st, Version: 1, Schema: fill("'; DROP TABLE snapshots; --\x00\xff", 4096), Data: []byte(big[:1<<16])}
	if err := s.SaveSnapshot(ctx(t), snap); err != nil {
		t.Fatalf("SaveSnapshot(long hostile schema): %v", err)
	}
	if got, err := s.LoadSnapshot(ctx(t), st); err != nil {
		t.Errorf("LoadSnapshot: %v", err)
	} else if got.Stream != st || got.Version != 1 || got.Schema != snap.Schema || string(got.Data) != string(snap.Data) {
		t.Errorf("LoadSnapshot = %s v%d schema of %d bytes, %d data bytes; want the saved one", got.Stream, got.Version, len(got.Schema), len(got.Data))
	}
	if _, err := s.LoadSnapshot(ctx(t), other); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("LoadSnapshot(%s), whose id is a prefix of a snapshotted one: %v, want ErrNotFound", other, err)
	}
	// Still working.
	ord := stream("Order", "o-1")
	r := mustAppend(t, s, ord, runtime.NoStream, Events(1)...)
	if r.FirstPosition != 3 {
		t.Errorf("ordinary append at position %d, want 3", r.FirstPosition)
	}
	if all := readAll(t, s, 0); len(all) != 3 || all[0].Stream != st || all[1].Stream != other || all[2].Stream != ord {
		t.Errorf("ReadAll after writes at the limits: %d records", len(all))
	}
}

// securityKeys saves hostile idempotency keys, checkpoint names and
// snapshot schemas, and checks that each loads its own value, that
// wildcard and neighbouring keys were not created, that a repeated key is
// still a duplicate, and that the counters are exact.
func (h *harness) securityKeys(t *testing.T) {
	s := h.open(t)
	keys := append(append([]string(nil), hostile...), family("key-1")...)
	saved := make(map[string]bool)
	want := make(map[string]runtime.IdempotencyRecord)
	for i, key := range keys {
		saved[key] = true
		st := stream("K", key)
		res, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: hostileEvents(i, 1), IdempotencyKey: key})
		if err != nil {
			t.Fatalf("Append with key %q: %v", key, err)
		}
		want[key] = runtime.IdempotencyRecord{Key: key, Stream: st, Version: 1, Position: res.LastPosition}
		if err := s.SaveCheckpoint(ctx(t), key, uint64(i+1)); err != nil {
			t.Fatalf("SaveCheckpoint(%q): %v", key, err)
		}
		if err := s.SaveSnapshot(ctx(t), runtime.Snapshot{Stream: st, Version: 1, Schema: key, Data: []byte(key)}); err != nil {
			t.Fatalf("SaveSnapshot(%s, schema %q): %v", st, key, err)
		}
	}
	for i, key := range keys {
		w := want[key]
		got, err := s.LoadIdempotency(ctx(t), key)
		if err != nil || got.Key != key || got.Stream != w.Stream || got.Version != 1 || got.Position != w.Position {
			t.Errorf("LoadIdempotency(%q) = %+v, %v; want %+v", key, got, err, w)
		}
		_, err = s.Append(ctx(t), runtime.AppendRequest{Stream: stream("K2", key), Expected: runtime.NoStream, Events: Events(1), IdempotencyKey: key})
		var de *runtime.DuplicateError
		if !errors.As(err, &de) || de.Existing.Stream != w.Stream || de.Existing.Position != w.Position {
			t.Errorf("repeating key %q: %v, want a *DuplicateError naming %s at %d", key, err, w.Stream, w.Position)
		}
		if p, err := s.LoadCheckpoint(ctx(t), key); err != nil || p != uint64(i+1) {
			t.Errorf("LoadCheckpoint(%q) = %d, %v; want %d", key, p, err, i+1)
		}
		if snap, err := s.LoadSnapshot(ctx(t), w.Stream); err != nil || snap.Schema != key || string(snap.Data) != key || snap.Stream != w.Stream {
			t.Errorf("LoadSnapshot(%s) = schema %q data %q, %v; want %q", w.Stream, snap.Schema, snap.Data, err, key)
		}
	}
	for _, probe := range []string{"%%%", "_%", "'", "\x00\x00\x00", "key-%", "key-_", "key-1\x00\x00", "key", "'; DROP TABLE events; -", "\\\\\\", "$3"} {
		if saved[probe] {
			continue
		}
		if _, err := s.LoadIdempotency(ctx(t), probe); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("LoadIdempotency(%q), never saved: %v, want ErrNotFound", probe, err)
		}
		if _, err := s.LoadCheckpoint(ctx(t), probe); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("LoadCheckpoint(%q), never saved: %v, want ErrNotFound", probe, err)
		}
	}
	st := stats(t, s)
	n := uint64(len(keys))
	if st.IdempotencyKeys != n || st.Checkpoints != n || st.Snapshots != n || st.Events != n || st.Streams != n {
		t.Errorf("Stats = %+v; want %d keys, checkpoints, snapshots, events and streams", st, n)
	}
	ord := stream("Order", "o-1")
	if r := mustAppend(t, s, ord, runtime.NoStream, Events(1)...); r.FirstPosition != n+1 {
		t.Errorf("ordinary append at position %d, want %d", r.FirstPosition, n+1)
	}
	checkEvents(t, readStream(t, s, ord, 0), ord, 1, Events(1))
}
