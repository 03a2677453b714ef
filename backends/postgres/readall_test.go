package postgres

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/jackc/pgx/v5"
)

// TestReadAllAcrossHoles reads the log in windows of pageSize positions
// across holes wider than a window (a hard-deleted stream, a truncated
// log) and from positions inside and around them, and checks every read
// against the positions the event_log view holds.
func TestReadAllAcrossHoles(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	appendN := func(id string, n int) {
		t.Helper()
		st := runtime.StreamID{Type: "hole", ID: id}
		for n > 0 {
			k := min(n, 700) // several commits per stream
			v, err := s.StreamVersion(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: v, Events: storetest.Events(k)}); err != nil {
				t.Fatal(err)
			}
			n -= k
		}
	}
	appendN("a", 10)
	appendN("gone", 2*pageSize+500)
	appendN("c", 10)
	appendN("gone2", pageSize)
	appendN("d", 3)
	if _, err := s.DeleteStream(ctx, lifecycle.DeleteRequest{Stream: runtime.StreamID{Type: "hole", ID: "gone"}, Mode: runtime.HardDelete}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteStream(ctx, lifecycle.DeleteRequest{Stream: runtime.StreamID{Type: "hole", ID: "gone2"}, Mode: runtime.HardDelete}); err != nil {
		t.Fatal(err)
	}
	want := func() []uint64 {
		rows, err := s.pool.Query(ctx, `SELECT position FROM `+pgx.Identifier{s.opt.schema}.Sanitize()+`.event_log ORDER BY position`)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := pgx.CollectRows(rows, pgx.RowTo[uint64])
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	check := func(when string) {
		t.Helper()
		all := want()
		if len(all) == 0 {
			t.Fatalf("%s: the log is empty", when)
		}
		froms := []uint64{0, 5, 10, 11, 12, pageSize, pageSize + 1, 2*pageSize + 509, 2*pageSize + 510, 2*pageSize + 511, all[len(all)-1] - 1, all[len(all)-1]}
		for _, from := range froms {
			var got []uint64
			for r, err := range s.ReadAll(ctx, from) {
				if err != nil {
					t.Fatalf("%s: ReadAll(%d): %v", when, from, err)
				}
				got = append(got, r.Position)
			}
			exp := all[:0:0]
			for _, p := range all {
				if p > from {
					exp = append(exp, p)
				}
			}
			if !slices.Equal(got, exp) {
				t.Errorf("%s: ReadAll(%d) = %s, want %s", when, from, span(got), span(exp))
			}
		}
	}
	check("after two hard deletes")
	if _, err := s.TruncateLog(ctx, 2*pageSize); err != nil {
		t.Fatal(err)
	}
	check("after a truncation through a deleted stream's hole")
}

// span describes a list of positions briefly: its length and ends.
func span(ps []uint64) string {
	if len(ps) == 0 {
		return "[]"
	}
	return fmt.Sprintf("%d positions %d..%d", len(ps), ps[0], ps[len(ps)-1])
}

func TestInPositionOrder(t *testing.T) {
	recs := func(ps ...uint64) []runtime.Record {
		out := make([]runtime.Record, len(ps))
		for i, p := range ps {
			out[i].Position = p
		}
		return out
	}
	for _, tc := range []struct{ in, want []runtime.Record }{
		{recs(), recs()},
		{recs(1, 2, 3), recs(1, 2, 3)},
		{recs(4, 6, 5, 7), recs(4, 5, 6, 7)},
		{recs(9, 8, 1), recs(1, 8, 9)},
	} {
		got := slices.Clone(tc.in)
		inPositionOrder(got)
		if !slices.EqualFunc(got, tc.want, func(a, b runtime.Record) bool { return a.Position == b.Position }) {
			t.Errorf("inPositionOrder(%v) = %v", tc.in, got)
		}
	}
}

// TestScanRecordFormats decodes the same rows sent in binary (the raw
// path of eventRow.read) and in text (the simple protocol, through
// rows.Scan): both give the same records, metadata and event ids
// included.
func TestScanRecordFormats(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	st := runtime.StreamID{Type: "fmt", ID: "a"}
	evs := storetest.Events(3)
	evs[1].Metadata = map[string]string{"k": "v", "trace": "0af7"}
	evs[2].Data = nil
	if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Events: evs}); err != nil {
		t.Fatal(err)
	}
	read := func(mode pgx.QueryExecMode) []runtime.Record {
		t.Helper()
		rows, err := s.pool.Query(ctx, s.q.readStream, mode, []byte(st.Type), []byte(st.ID), int64(0), int64(pageSize))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []runtime.Record
		for rows.Next() {
			r, err := scanRecord(rows)
			if err != nil {
				t.Fatalf("mode %v: %v", mode, err)
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	bin, text := read(pgx.QueryExecModeCacheStatement), read(pgx.QueryExecModeSimpleProtocol)
	if len(bin) != 3 || !reflect.DeepEqual(bin, text) {
		t.Fatalf("binary rows %+v\ntext rows %+v", bin, text)
	}
	if bin[1].Metadata["trace"] != "0af7" || bin[0].EventID == [16]byte{} || bin[2].Data == nil || len(bin[2].Data) != 0 {
		t.Errorf("decoded %+v: want metadata, an event id and empty (non-nil) data", bin)
	}
}
