package postgres

import (
	"fmt"
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
