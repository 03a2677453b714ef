package storetest

import (
	"bytes"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

func (h *harness) testAppend(t *testing.T) {
	t.Run("ReadBack", h.appendReadBack)
	t.Run("Numbering", h.appendNumbering)
	t.Run("ReadStreamAfter", h.appendReadStreamAfter)
	t.Run("ReadAllAfter", h.appendReadAllAfter)
	t.Run("ExpectedVersion", func(t *testing.T) {
		t.Run("Exact", h.expectExact)
		t.Run("NoStream", h.expectNoStream)
		t.Run("StreamExists", h.expectStreamExists)
		t.Run("AnyVersion", h.expectAnyVersion)
		t.Run("Reserved", h.expectReserved)
	})
	t.Run("Atomic", h.appendAtomic)
	t.Run("RoundTrip", func(t *testing.T) {
		t.Run("Metadata", h.roundTripMetadata)
		t.Run("Time", h.roundTripTime)
		t.Run("Data", h.roundTripData)
	})
	t.Run("NoAliasing", h.appendNoAliasing)
	t.Run("RecordsKept", h.appendRecordsKept)
	t.Run("BreakEarly", h.appendBreakEarly)
}

func (h *harness) appendReadBack(t *testing.T) {
	s := h.open(t)
	st := stream("Account", "1")
	if got := readStream(t, s, st, 0); len(got) != 0 {
		t.Fatalf("ReadStream of a missing stream yielded %d records", len(got))
	}
	if v := version(t, s, st); v != 0 {
		t.Fatalf("StreamVersion of a missing stream = %d, want 0", v)
	}
	evs := Events(3)
	res := mustAppend(t, s, st, runtime.NoStream, evs...)
	if res.FirstVersion != 1 || res.LastVersion != 3 || res.FirstPosition != 1 || res.LastPosition != 3 {
		t.Errorf("first append result %+v, want versions 1..3 at positions 1..3", res)
	}
	recs := readStream(t, s, st, 0)
	checkEvents(t, recs, st, 1, evs)
	for i, r := range recs {
		if r.Position != uint64(i+1) {
			t.Errorf("record %d position %d, want %d", i, r.Position, i+1)
		}
	}
	if v := version(t, s, st); v != 3 {
		t.Errorf("StreamVersion = %d, want 3", v)
	}
	if p := head(t, s); p != 3 {
		t.Errorf("Head = %d, want 3", p)
	}
	all := readAll(t, s, 0)
	if len(all) != 3 {
		t.Fatalf("ReadAll yielded %d records, want 3", len(all))
	}
	for i := range all {
		if msg := diffRecord(recs[i], all[i]); msg != "" {
			t.Errorf("ReadAll record %d differs from ReadStream: %s", i, msg)
		}
	}
	if err := s.Flush(ctx(t)); err != nil {
		t.Errorf("Flush: %v", err)
	}
}

// appendNumbering checks 1-based versions per stream and gap-free
// positions in commit order across streams.
func (h *harness) appendNumbering(t *testing.T) {
	s := h.open(t)
	a, b, c := stream("T", "a"), stream("T", "b"), stream("U", "a")
	type step struct {
		st runtime.StreamID
		n  int
	}
	steps := []step{{a, 2}, {b, 1}, {a, 3}, {c, 1}, {b, 4}, {a, 1}}
	versions := map[runtime.StreamID]uint64{}
	var pos uint64
	var want []runtime.Record
	for i, sp := range steps {
		evs := EventsWith(sp.st.ID+sp.st.Type, sp.n)
		res := mustAppend(t, s, sp.st, versions[sp.st], evs...)
		if res.FirstVersion != versions[sp.st]+1 || res.LastVersion != versions[sp.st]+uint64(sp.n) {
			t.Errorf("step %d: versions %d..%d, want %d..%d", i, res.FirstVersion, res.LastVersion, versions[sp.st]+1, versions[sp.st]+uint64(sp.n))
		}
		if res.FirstPosition != pos+1 || res.LastPosition != pos+uint64(sp.n) {
			t.Errorf("step %d: positions %d..%d, want %d..%d", i, res.FirstPosition, res.LastPosition, pos+1, pos+uint64(sp.n))
		}
		for j, e := range evs {
			want = append(want, runtime.Record{Stream: sp.st, Version: versions[sp.st] + uint64(j) + 1, Position: pos + uint64(j) + 1,
				Name: e.Name, Schema: e.Schema, Metadata: e.Metadata, Data: e.Data})
		}
		versions[sp.st] += uint64(sp.n)
		pos += uint64(sp.n)
	}
	all := readAll(t, s, 0)
	if len(all) != len(want) {
		t.Fatalf("ReadAll yielded %d records, want %d", len(all), len(want))
	}
	for i := range all {
		want[i].Time, want[i].EventID = all[i].Time, all[i].EventID // made by the store; see testEventIDs
		if msg := diffRecord(want[i], all[i]); msg != "" {
			t.Errorf("ReadAll record %d: %s", i, msg)
		}
	}
	for st, v := range versions {
		if got := version(t, s, st); got != v {
			t.Errorf("StreamVersion(%s) = %d, want %d", st, got, v)
		}
		recs := readStream(t, s, st, 0)
		if uint64(len(recs)) != v {
			t.Errorf("ReadStream(%s) yielded %d records, want %d", st, len(recs), v)
		}
		for i, r := range recs {
			if r.Version != uint64(i+1) {
				t.Errorf("ReadStream(%s) record %d has version %d", st, i, r.Version)
			}
		}
		checkPositions(t, recs)
	}
	if p := head(t, s); p != pos {
		t.Errorf("Head = %d, want %d", p, pos)
	}
}

func (h *harness) appendReadStreamAfter(t *testing.T) {
	s := h.open(t)
	st := stream("T", "x")
	evs := Events(5)
	mustAppend(t, s, st, runtime.NoStream, evs[:2]...)
	mustAppend(t, s, stream("T", "other"), runtime.NoStream, Events(2)...)
	mustAppend(t, s, st, 2, evs[2:]...)
	for after := uint64(0); after <= 7; after++ {
		recs := readStream(t, s, st, after)
		var want []runtime.EventData
		if after < 5 {
			want = evs[after:]
		}
		checkEvents(t, recs, st, after+1, want)
		checkPositions(t, recs)
	}
	if recs := readStream(t, s, st, runtime.MaxVersion); len(recs) != 0 {
		t.Errorf("ReadStream after MaxVersion yielded %d records", len(recs))
	}
}

func (h *harness) appendReadAllAfter(t *testing.T) {
	s := h.open(t)
	for i := range 4 {
		mustAppend(t, s, stream("T", string(rune('a'+i))), runtime.NoStream, Events(i+1)...)
	}
	all := readAll(t, s, 0)
	if len(all) != 10 {
		t.Fatalf("ReadAll yielded %d records, want 10", len(all))
	}
	for after := uint64(0); after <= 12; after++ {
		recs := readAll(t, s, after)
		want := 0
		if after < 10 {
			want = 10 - int(after)
		}
		if len(recs) != want {
			t.Errorf("ReadAll(after %d) yielded %d records, want %d", after, len(recs), want)
			continue
		}
		for i, r := range recs {
			if r.Position != after+uint64(i)+1 {
				t.Errorf("ReadAll(after %d) record %d has position %d", after, i, r.Position)
			}
			if msg := diffRecord(all[int(after)+i], r); msg != "" {
				t.Errorf("ReadAll(after %d) record %d: %s", after, i, msg)
			}
		}
	}
}

func (h *harness) expectExact(t *testing.T) {
	s := h.open(t)
	st := stream("T", "exact")
	if _, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: 5, Events: Events(1)}); err == nil {
		t.Fatal("append with expected 5 to a missing stream succeeded")
	} else {
		wantConflict(t, "expected 5 on missing stream", err, st, 5, 0)
	}
	mustAppend(t, s, st, 0, Events(2)...)
	mustAppend(t, s, st, 2, Events(1)...)
	for _, exp := range []uint64{1, 2, 4, 100} {
		before := capture(t, s, st)
		_, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: exp, Events: Events(2)})
		wantConflict(t, "stale expected version", err, st, exp, 3)
		unchanged(t, s, st, before)
	}
	mustAppend(t, s, st, 3, Events(1)...)
	if v := version(t, s, st); v != 4 {
		t.Errorf("version = %d, want 4", v)
	}
}

func (h *harness) expectNoStream(t *testing.T) {
	s := h.open(t)
	st := stream("T", "nostream")
	mustAppend(t, s, st, runtime.NoStream, Events(2)...)
	before := capture(t, s, st)
	_, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: Events(1)})
	wantConflict(t, "NoStream on an existing stream", err, st, runtime.NoStream, 2)
	unchanged(t, s, st, before)
	// Another stream is unaffected.
	mustAppend(t, s, stream("T", "nostream2"), runtime.NoStream, Events(1)...)
}

func (h *harness) expectStreamExists(t *testing.T) {
	s := h.open(t)
	st := stream("T", "exists")
	before := capture(t, s, st)
	_, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: runtime.StreamExists, Events: Events(1)})
	wantConflict(t, "StreamExists on a missing stream", err, st, runtime.StreamExists, 0)
	unchanged(t, s, st, before)
	mustAppend(t, s, st, runtime.NoStream, Events(1)...)
	res := mustAppend(t, s, st, runtime.StreamExists, Events(2)...)
	if res.FirstVersion != 2 || res.LastVersion != 3 {
		t.Errorf("StreamExists append got versions %d..%d, want 2..3", res.FirstVersion, res.LastVersion)
	}
}

func (h *harness) expectAnyVersion(t *testing.T) {
	s := h.open(t)
	st := stream("T", "any")
	res := mustAppend(t, s, st, runtime.AnyVersion, Events(1)...)
	if res.LastVersion != 1 {
		t.Errorf("AnyVersion on a missing stream: version %d, want 1", res.LastVersion)
	}
	res = mustAppend(t, s, st, runtime.AnyVersion, Events(2)...)
	if res.FirstVersion != 2 || res.LastVersion != 3 {
		t.Errorf("AnyVersion on an existing stream: versions %d..%d, want 2..3", res.FirstVersion, res.LastVersion)
	}
}

func (h *harness) expectReserved(t *testing.T) {
	s := h.open(t)
	st := stream("T", "reserved")
	mustAppend(t, s, st, runtime.NoStream, Events(1)...)
	for _, exp := range []uint64{runtime.MaxVersion + 1, runtime.MaxVersion + 2, 1 << 63, runtime.StreamExists - 1} {
		before := capture(t, s, st)
		_, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: exp, Events: Events(1)})
		wantErr(t, "reserved expected version", err, runtime.ErrInvalid)
		unchanged(t, s, st, before)
	}
}

// appendAtomic checks that every kind of failed batch leaves nothing
// behind.
func (h *harness) appendAtomic(t *testing.T) {
	s := h.open(t)
	st := stream("T", "atomic")
	mustAppend(t, s, st, runtime.NoStream, Events(2)...)
	mustAppend(t, s, stream("T", "key"), runtime.NoStream, Events(1)...)
	if _, err := s.Append(ctx(t), runtime.AppendRequest{Stream: stream("T", "key"), Expected: 1, Events: Events(1), IdempotencyKey: "used"}); err != nil {
		t.Fatalf("append with key: %v", err)
	}
	big := Events(3)
	big[2].Data = make([]byte, runtime.MaxEventSize+1)
	emptyName := Events(3)
	emptyName[2].Name = ""
	cases := []struct {
		name   string
		req    runtime.AppendRequest
		target error
	}{
		{"Conflict", runtime.AppendRequest{Stream: st, Expected: 1, Events: Events(5)}, runtime.ErrConflict},
		{"ConflictNewStream", runtime.AppendRequest{Stream: stream("T", "new"), Expected: runtime.StreamExists, Events: Events(5)}, runtime.ErrConflict},
		{"LastEventTooLarge", runtime.AppendRequest{Stream: st, Expected: 2, Events: big}, runtime.ErrTooLarge},
		{"LastEventUnnamed", runtime.AppendRequest{Stream: st, Expected: 2, Events: emptyName}, runtime.ErrInvalid},
		{"DuplicateKey", runtime.AppendRequest{Stream: st, Expected: 2, Events: Events(5), IdempotencyKey: "used"}, runtime.ErrDuplicate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := capture(t, s, c.req.Stream)
			_, err := s.Append(ctx(t), c.req)
			wantErr(t, "failed batch", err, c.target)
			unchanged(t, s, c.req.Stream, before)
		})
	}
	res := mustAppend(t, s, st, 2, Events(1)...)
	if res.LastVersion != 3 || res.LastPosition != 5 {
		t.Errorf("append after failed batches got version %d position %d, want 3 and 5", res.LastVersion, res.LastPosition)
	}
}

func (h *harness) roundTripMetadata(t *testing.T) {
	s := h.open(t)
	st := stream("T", "meta")
	metas := []map[string]string{
		nil,
		{},
		{"k": "v"},
		{"correlation": "c-1", "user": "ünïcødé", "empty": "", "": "empty key", "nul": "a\x00b", "bin\xff": "\xfe"},
	}
	evs := make([]runtime.EventData, len(metas))
	for i, m := range metas {
		evs[i] = runtime.EventData{Name: "E", Schema: uint32(i), Metadata: m, Data: []byte{byte(i)}}
	}
	mustAppend(t, s, st, runtime.NoStream, evs...)
	checkEvents(t, readStream(t, s, st, 0), st, 1, evs)
	checkEvents(t, readAll(t, s, 0), st, 1, evs)
}

func (h *harness) roundTripTime(t *testing.T) {
	s := h.open(t)
	st := stream("T", "time")
	evs := Events(4)
	evs[0].Time = fixedTime
	evs[1].Time = time.Date(1970, 1, 1, 0, 0, 0, 1, time.UTC)
	evs[2].Time = time.Date(2262, 4, 11, 23, 47, 16, 854775807, time.UTC)
	// evs[3].Time is zero: the store stamps it.
	lo := time.Now().Add(-time.Second)
	mustAppend(t, s, st, runtime.NoStream, evs...)
	hi := time.Now().Add(time.Second)
	for _, recs := range [][]runtime.Record{readStream(t, s, st, 0), readAll(t, s, 0)} {
		if len(recs) != 4 {
			t.Fatalf("read %d records, want 4", len(recs))
		}
		for i, r := range recs {
			if r.Time.Location() != time.UTC {
				t.Errorf("record %d time %v is not in UTC", i, r.Time)
			}
			if i < 3 {
				if !r.Time.Equal(evs[i].Time) || r.Time.Nanosecond() != evs[i].Time.Nanosecond() {
					t.Errorf("record %d time %v, want %v", i, r.Time, evs[i].Time.UTC())
				}
				continue
			}
			// Stamped: between the calls around Append (one second of slack
			// each side covers clocks of a remote database).
			if r.Time.IsZero() || r.Time.Before(lo) || r.Time.After(hi) {
				t.Errorf("zero time stamped as %v, want between %v and %v", r.Time, lo, hi)
			}
		}
	}
}

func (h *harness) roundTripData(t *testing.T) {
	s := h.open(t)
	st := stream("T", "data")
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	large := bytes.Repeat([]byte("0123456789abcdef\x00\xff"), runtime.MaxEventSize/18)
	large = append(large, make([]byte, runtime.MaxEventSize-len(large)-2)...) // with metadata "k":"v", exactly the limit
	cases := []struct {
		name string
		data []byte
	}{
		{"Nil", nil},
		{"Empty", []byte{}},
		{"Zero", []byte{0}},
		{"AllBytes", all},
		{"Invalid UTF-8", []byte("\xff\xfe\xc3")},
		{"AtLimit", large},
	}
	var evs []runtime.EventData
	for _, c := range cases {
		evs = append(evs, runtime.EventData{Name: c.name, Metadata: map[string]string{"k": "v"}, Data: c.data})
	}
	for i, e := range evs {
		mustAppend(t, s, st, uint64(i), e)
	}
	checkEvents(t, readStream(t, s, st, 0), st, 1, evs)
	checkEvents(t, readAll(t, s, 0), st, 1, evs)
}

// appendNoAliasing checks that a store copies Data and Metadata in and out.
func (h *harness) appendNoAliasing(t *testing.T) {
	s := h.open(t)
	st := stream("T", "alias")
	evs := Events(2)
	want := Events(2)
	mustAppend(t, s, st, runtime.NoStream, evs...)
	// Mutating what was passed in must not change what is stored.
	evs[0].Data[0] = 'X'
	evs[0].Metadata["i"] = "changed"
	evs[1].Metadata["new"] = "x"
	checkEvents(t, readStream(t, s, st, 0), st, 1, want)

	for _, read := range []func() []runtime.Record{
		func() []runtime.Record { return readStream(t, s, st, 0) },
		func() []runtime.Record { return readAll(t, s, 0) },
	} {
		recs := read()
		for i := range recs {
			for j := range recs[i].Data {
				recs[i].Data[j] = '!'
			}
			recs[i].Data = append(recs[i].Data[:0], "overwritten"...)
			if recs[i].Metadata != nil {
				recs[i].Metadata["i"] = "changed"
				recs[i].Metadata["added"] = "x"
			}
		}
		checkEvents(t, read(), st, 1, want)
	}
}

// appendBreakEarly checks that abandoning a range loop releases whatever
// the iterator holds: writes, reads and Close still work.
func (h *harness) appendBreakEarly(t *testing.T) {
	s := h.f.Open(t)
	cs := &closer{s: s}
	t.Cleanup(func() { cs.close(t) })
	st := stream("T", "break")
	mustAppend(t, s, st, runtime.NoStream, Events(10)...)
	for range 3 {
		for _, err := range s.ReadStream(ctx(t), st, 0) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		n := 0
		for _, err := range s.ReadAll(ctx(t), 0) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 5 {
				break
			}
		}
	}
	// Appending while a loop is in progress, then breaking.
	n := 0
	for _, err := range s.ReadAll(ctx(t), 0) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		mustAppend(t, s, stream("T", "during"), runtime.AnyVersion, Events(1)...)
		if n == 3 {
			break
		}
	}
	for _, err := range s.ReadStream(ctx(t), st, 0) {
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, s, st, runtime.AnyVersion, Events(1)...)
		break
	}
	if got := len(readStream(t, s, st, 0)); got != 11 {
		t.Errorf("stream has %d events, want 11", got)
	}
	if got := head(t, s); got != 14 {
		t.Errorf("Head = %d, want 14", got)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after abandoned iterations: %v", err)
	}
}

// appendRecordsKept checks that the Records a read yields are the caller's
// for good: nothing in them (Data, Metadata, the strings) changes through
// later reads that could reuse a buffer, appends, a hard delete of their
// stream, a truncation of the log and Close. Callers keep Records, and
// storekit.VisitStream lends their Data to decoders as Stable bytes.
func (h *harness) appendRecordsKept(t *testing.T) {
	s := h.open(t)
	st, other := stream("T", "kept"), stream("T", "kept-other")
	mustAppend(t, s, st, runtime.NoStream, EventsWith("K", 300)...)
	kept := append(readStream(t, s, st, 0), readAll(t, s, 0)...)
	want := make([]runtime.Record, len(kept))
	for i, r := range kept {
		want[i] = r
		want[i].Stream = runtime.StreamID{Type: strings.Clone(r.Stream.Type), ID: strings.Clone(r.Stream.ID)}
		want[i].Name, want[i].Data, want[i].Metadata = strings.Clone(r.Name), bytes.Clone(r.Data), maps.Clone(r.Metadata)
		for k, v := range r.Metadata {
			want[i].Metadata[strings.Clone(k)] = strings.Clone(v)
		}
	}
	disturb(t, s, st, other, func() {
		readStream(t, s, other, 0)
		readAll(t, s, 0)
	})
	for i := range kept {
		g, w := kept[i], want[i]
		if g.Stream != w.Stream || g.Name != w.Name || !bytes.Equal(g.Data, w.Data) || !maps.Equal(g.Metadata, w.Metadata) {
			t.Fatalf("record %d (%s v%d) changed after the read: %s %q %q %v, was %s %q %q %v",
				i, w.Stream, w.Version, g.Stream, g.Name, g.Data, g.Metadata, w.Stream, w.Name, w.Data, w.Metadata)
		}
	}
}

// disturb does to store s what could rewrite bytes a reader kept from
// stream st: 20 appends to other, each followed by read (which may reuse
// a read's buffers), a hard delete of st and a truncation of the log
// (where the store has them), and Close.
func disturb(t *testing.T, s runtime.Store, st, other runtime.StreamID, read func()) {
	t.Helper()
	for i := range 20 {
		mustAppend(t, s, other, runtime.AnyVersion, EventsWith(fmt.Sprintf("X%d-", i), 50)...)
		read()
	}
	if d, ok := s.(lifecycle.StreamDeleter); ok {
		if _, err := d.DeleteStream(ctx(t), lifecycle.DeleteRequest{Stream: st, Mode: runtime.HardDelete}); err != nil {
			t.Fatal(err)
		}
	}
	if r, ok := s.(lifecycle.Retention); ok {
		head, err := s.Head(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.TruncateLog(ctx(t), head-1); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
