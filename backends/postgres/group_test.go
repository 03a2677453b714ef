package postgres

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/jackc/pgx/v5"
)

// TestGroupRefusedRetriesEach makes the server refuse a group's call (a
// row written behind the store's back makes its insert violate the unique
// stream version index): nothing of the group is written, each append is
// retried on its own and answers its own outcome, and the group's slot is
// freed.
func TestGroupRefusedRetriesEach(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	a, b := runtime.StreamID{Type: "T", ID: "a"}, runtime.StreamID{Type: "T", ID: "b"}
	if _, err := s.Append(ctx, runtime.AppendRequest{Stream: a, Expected: runtime.NoStream, Events: storetest.Events(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.events (commit_id, off, stream_type, stream_id, version, name, schema, time_s, time_ns, data)
VALUES (-1, 1, 'T', 'a', 2, 'x', 1, 0, 0, '')`, pgx.Identifier{s.opt.schema}.Sanitize())); err != nil {
		t.Fatal(err)
	}
	batch := []*groupReq{
		s.newGroupReq(runtime.AppendRequest{Stream: a, Expected: 1, Events: storetest.Events(1)}),
		s.newGroupReq(runtime.AppendRequest{Stream: b, Expected: runtime.NoStream, Events: storetest.Events(2)}),
	}
	s.grouper.mu.Lock()
	s.grouper.inFlight++ // as appendGrouped does before it runs a group
	s.grouper.mu.Unlock()
	s.runGroup(batch)
	s.grouper.mu.Lock()
	slots := s.grouper.inFlight
	s.grouper.mu.Unlock()
	if slots != 0 {
		t.Errorf("%d groups still taking positions after the group, want 0: its slot was not freed", slots)
	}
	ansA, ansB := <-batch[0].done, <-batch[1].done
	var ce *runtime.ConflictError
	if !errors.As(ansA.err, &ce) || ce.Actual != 1 {
		t.Errorf("append to a: %v, want a conflict at version 1", ansA.err)
	}
	if ansB.err != nil || ansB.out.status != appendOK || ansB.out.actual != 0 {
		t.Errorf("append to b: %+v, %v; want ok from version 0", ansB.out, ansB.err)
	}
	if v, err := s.StreamVersion(ctx, b); err != nil || v != 2 {
		t.Errorf("StreamVersion(b) = %d, %v; want 2", v, err)
	}
	// The next group, on whichever connection, still works.
	batch = []*groupReq{
		s.newGroupReq(runtime.AppendRequest{Stream: b, Expected: 2, Events: storetest.Events(1)}),
		s.newGroupReq(runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "c"}, Expected: runtime.NoStream, Events: storetest.Events(1)}),
	}
	s.grouper.mu.Lock()
	s.grouper.inFlight++
	s.grouper.mu.Unlock()
	s.runGroup(batch)
	for i, r := range batch {
		if a := <-r.done; a.err != nil || a.out.status != appendOK {
			t.Errorf("append %d of the next group: %+v, %v", i, a.out, a.err)
		}
	}
}

// TestLoneAppendOneTransaction checks that an append alone in its process
// writes its events and the durable head in one transaction (appendSync),
// and that a group does too (groupPipeline).
func TestLoneAppendOneTransaction(t *testing.T) {
	t.Parallel()
	s := newStore(t, WithNotify(false))
	ctx := t.Context()
	st := runtime.StreamID{Type: "T", ID: "lone"}
	res, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: storetest.Events(3)})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := s.Head(ctx); err != nil || h != res.LastPosition {
		t.Fatalf("Head = %d, %v; want %d", h, err, res.LastPosition)
	}
	sameTx := func() bool { return lastAppendSync(t, s) }
	if !sameTx() {
		t.Error("a lone append and its durable head were written by two transactions")
	}
	s.grouper.mu.Lock()
	s.grouper.inFlight++
	s.grouper.mu.Unlock()
	batch := []*groupReq{
		s.newGroupReq(runtime.AppendRequest{Stream: st, Expected: 3, Events: storetest.Events(1)}),
		s.newGroupReq(runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "other"}, Expected: runtime.NoStream, Events: storetest.Events(1)}),
	}
	s.runGroup(batch)
	for i, r := range batch {
		if a := <-r.done; a.err != nil || a.out.status != appendOK {
			t.Fatalf("group append %d: %+v, %v", i, a.out, a.err)
		}
	}
	if h, err := s.Head(ctx); err != nil || h != res.LastPosition+2 {
		t.Fatalf("Head after the group = %d, %v; want %d", h, err, res.LastPosition+2)
	}
	if !sameTx() {
		t.Error("a group's append and its durable head were written by two transactions")
	}
	// A group of syncGroupMaxEvents events or more commits asynchronously
	// and flushes in a second transaction, alone or not.
	s.grouper.mu.Lock()
	s.grouper.inFlight++
	s.grouper.mu.Unlock()
	half := syncGroupMaxEvents / 2
	batch = []*groupReq{
		s.newGroupReq(runtime.AppendRequest{Stream: st, Expected: 4, Events: storetest.Events(half)}),
		s.newGroupReq(runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "other"}, Expected: 1, Events: storetest.Events(syncGroupMaxEvents - half)}),
	}
	s.runGroup(batch)
	for i, r := range batch {
		if a := <-r.done; a.err != nil || a.out.status != appendOK {
			t.Fatalf("large group append %d: %+v, %v", i, a.out, a.err)
		}
	}
	if h, err := s.Head(ctx); err != nil || h != res.LastPosition+2+syncGroupMaxEvents {
		t.Fatalf("Head after the large group = %d, %v; want %d", h, err, res.LastPosition+2+syncGroupMaxEvents)
	}
	if sameTx() {
		t.Errorf("a group of %d events committed synchronously; want its flush in a transaction of its own", syncGroupMaxEvents)
	}
}

// lastAppendSync reports whether the latest events of s's schema were
// written by the transaction that wrote the highest durable head: an
// append that committed synchronously (appendSync).
func lastAppendSync(t *testing.T, s *Store) bool {
	t.Helper()
	var same bool
	q := fmt.Sprintf(`SELECT (SELECT xmin::text FROM %[1]s.commits ORDER BY last DESC LIMIT 1) =
	(SELECT xmin::text FROM %[1]s.log_durable ORDER BY position DESC LIMIT 1)`, pgx.Identifier{s.opt.schema}.Sanitize())
	if err := s.pool.QueryRow(t.Context(), q).Scan(&same); err != nil {
		t.Fatal(err)
	}
	return same
}

// TestLoneYieldsToOtherProcesses checks that a lone append commits
// synchronously only while its store has not seen other processes append:
// once another store took positions between two of its appends, its next
// append commits asynchronously and shares flushes, until an append finds
// nobody else's positions before its own again.
func TestLoneYieldsToOtherProcesses(t *testing.T) {
	t.Parallel()
	a := newStore(t, WithNotify(false))
	b := openIn(t, a.opt.schema, WithNotify(false))
	ctx := t.Context()
	stA, stB := runtime.StreamID{Type: "T", ID: "a"}, runtime.StreamID{Type: "T", ID: "b"}
	var va, vb uint64
	appendTo := func(s *Store, st runtime.StreamID, v *uint64) {
		t.Helper()
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: *v, Events: storetest.Events(1)}); err != nil {
			t.Fatal(err)
		}
		*v++
	}
	steps := []struct {
		s    *Store
		sync bool
		why  string
		st   runtime.StreamID
		v    *uint64
	}{
		{a, true, "a's first append", stA, &va},
		{b, true, "b's first append", stB, &vb},
		{a, true, "a's second append (decided before it saw b's)", stA, &va},
		{a, false, "a's append after seeing b's positions", stA, &va},
		{a, true, "a's append after an append that saw nobody else", stA, &va},
	}
	for _, step := range steps {
		appendTo(step.s, step.st, step.v)
		if got := lastAppendSync(t, a); got != step.sync {
			t.Errorf("%s: synchronous %v, want %v", step.why, got, step.sync)
		}
	}
}

// TestGroupKinds sends a group whose appends share, and do not share,
// their events' name, schema, time and metadata (append_group_packed
// passes each distinct tuple once, as a kind), with a refused append
// between accepted ones: every stored field reads back as appended, at
// consecutive positions and versions.
func TestGroupKinds(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	same := func(n int) []runtime.EventData {
		evs := make([]runtime.EventData, n)
		for i := range evs {
			evs[i] = runtime.EventData{Name: "Same", Schema: 2, Time: at, Data: fmt.Appendf(nil, "d%d", i)}
		}
		return evs
	}
	mixed := []runtime.EventData{
		{Name: "A", Schema: 1, Time: at, Data: []byte("a")},
		{Name: "A", Schema: 1, Time: at, Metadata: map[string]string{"k": "v"}, Data: []byte("b")},
		{Name: "A", Schema: 1, Time: at, Metadata: map[string]string{"k": "v"}},
		{Name: "A", Schema: 3, Time: at, Metadata: map[string]string{"k": "w"}, Data: []byte("d")},
		{Name: "B", Schema: 3, Time: at.Add(time.Nanosecond), Data: []byte("e")},
		{Name: "B", Schema: 3, Time: at.Add(time.Nanosecond), Data: []byte("f")},
		{Name: "A", Schema: 1, Time: at, Data: []byte("g")},
	}
	reqs := []runtime.AppendRequest{
		{Stream: runtime.StreamID{Type: "T", ID: "a"}, Expected: runtime.NoStream, Events: same(3)},
		{Stream: runtime.StreamID{Type: "T", ID: "b"}, Expected: 5, Events: same(2)}, // conflict: b is new
		{Stream: runtime.StreamID{Type: "T", ID: "c"}, Expected: runtime.AnyVersion, Events: mixed},
		{Stream: runtime.StreamID{Type: "T", ID: "d"}, Expected: runtime.NoStream, Events: same(1)},
	}
	var group []*groupReq
	for _, r := range reqs {
		group = append(group, s.newGroupReq(r))
	}
	outs, retry, err := s.appendGroupTx(t.Context(), group, func() {})
	if err != nil || retry {
		t.Fatalf("append_group_packed: %v (retry %v)", err, retry)
	}
	if outs[1].status != appendConflict || outs[0].base != 0 || outs[2].base != 3 || outs[3].base != 10 {
		t.Fatalf("outcomes %+v: want ok at 0, a conflict, ok at 3 and 10", outs)
	}
	var want []runtime.Record
	pos := uint64(0)
	for i, r := range reqs {
		if i == 1 {
			continue
		}
		for j, e := range r.Events {
			pos++
			want = append(want, runtime.Record{Stream: r.Stream, Version: uint64(j + 1), Position: pos,
				Name: e.Name, Schema: e.Schema, Time: e.Time, Metadata: e.Metadata, Data: e.Data})
		}
	}
	checkRecords(t, s, want)
}

// checkRecords checks that the log holds exactly want (event ids aside:
// each must have one; nil and empty data are alike).
func checkRecords(t *testing.T, s *Store, want []runtime.Record) {
	t.Helper()
	got, err := storetest.Collect(s.ReadAll(t.Context(), 0))
	if err != nil || len(got) != len(want) {
		t.Fatalf("ReadAll = %d records, %v; want %d", len(got), err, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.EventID.IsZero() {
			t.Errorf("record %d has no event id", i)
		}
		g.EventID = runtime.EventID{}
		if g.Data == nil {
			g.Data = []byte{}
		}
		if w.Data == nil {
			w.Data = []byte{}
		}
		if fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("record %d = %+v\nwant %+v", i, g, w)
		}
	}
}

// TestLoneKinds appends alone in the process (the one-statement lone
// append): events sharing kinds (sent packed), more kinds than
// loneMaxKinds (sent one array per column), and a conflict (the fallback
// to append_events): every stored field reads back as appended.
func TestLoneKinds(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	mixed := []runtime.EventData{
		{Name: "A", Schema: 1, Time: at, Data: []byte("a")},
		{Name: "A", Schema: 1, Time: at, Metadata: map[string]string{"k": "v"}, Data: []byte("b")},
		{Name: "A", Schema: 1, Time: at, Metadata: map[string]string{"k": "v"}},
		{Name: "B", Schema: 3, Time: at.Add(time.Nanosecond), Data: []byte("e")},
		{Name: "A", Schema: 1, Time: at, Data: []byte("g")},
	}
	many := storetest.Events(loneMaxKinds + 5)
	for i := range many {
		many[i].Time = at.Add(time.Duration(i))
	}
	a, b := runtime.StreamID{Type: "T", ID: "a"}, runtime.StreamID{Type: "T", ID: "b"}
	var want []runtime.Record
	pos := uint64(0)
	for _, r := range []runtime.AppendRequest{
		{Stream: a, Expected: runtime.NoStream, Events: mixed},
		{Stream: b, Expected: runtime.AnyVersion, Events: many},
		{Stream: a, Expected: uint64(len(mixed)), Events: mixed[:2]}, // appendMove
	} {
		res, err := s.Append(t.Context(), r)
		if err != nil || res.FirstPosition != pos+1 {
			t.Fatalf("append to %s: %+v, %v; want position %d", r.Stream, res, err, pos+1)
		}
		for j, e := range r.Events {
			pos++
			want = append(want, runtime.Record{Stream: r.Stream, Version: res.FirstVersion + uint64(j), Position: pos, Name: e.Name, Schema: e.Schema, Time: e.Time, Metadata: e.Metadata, Data: e.Data})
		}
	}
	var ce *runtime.ConflictError
	if _, err := s.Append(t.Context(), runtime.AppendRequest{Stream: a, Expected: 1, Events: mixed}); !errors.As(err, &ce) || ce.Actual != uint64(len(mixed)+2) {
		t.Fatalf("stale append: %v, want a conflict at %d", err, len(mixed)+2)
	}
	checkRecords(t, s, want)
}

// TestGroupStarts checks when an append starts a group: at once when no
// group is taking positions; beside one only when at least
// parallelMinEvents events are queued and fewer than the limit of groups
// are in flight; otherwise it queues for the next group's commit. A group
// takes the whole queue, and the queued count follows.
func TestGroupStarts(t *testing.T) {
	req := func(events int) *groupReq {
		return &groupReq{req: runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "a"}, Events: make([]runtime.EventData, events)}}
	}
	tests := []struct {
		name      string
		inFlight  int
		limit     int
		queued    []int // events of the appends already queued
		events    int   // the new append's
		wantGroup int   // appends in the group it leads (0: none)
	}{
		{"no group in flight", 0, 2, nil, 1, 1},
		{"no group in flight, a queue", 0, 2, []int{1, 1}, 1, 3},
		{"one in flight, few queued", 1, 2, []int{100}, 100, 0},
		{"one in flight, enough queued", 1, 2, []int{100, 100}, 100, 3},
		{"one in flight, one large append", 1, 2, nil, parallelMinEvents, 1},
		{"at the limit", 2, 2, []int{100, 100}, 100, 0},
		{"grouping of one group", 1, 1, []int{parallelMinEvents}, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var g grouper
			g.inFlight = tc.inFlight
			for _, n := range tc.queued {
				g.queue = append(g.queue, req(n))
				g.queued += n
			}
			batch := g.enqueue(req(tc.events), tc.limit)
			if len(batch) != tc.wantGroup {
				t.Fatalf("enqueue started a group of %d appends, want %d", len(batch), tc.wantGroup)
			}
			wantInFlight, wantQueued := tc.inFlight, tc.events
			for _, n := range tc.queued {
				wantQueued += n
			}
			if batch != nil {
				wantInFlight, wantQueued = tc.inFlight+1, 0
			}
			if g.inFlight != wantInFlight || g.queued != wantQueued || (batch != nil && len(g.queue) != 0) {
				t.Errorf("after enqueue: %d in flight, %d events in %d queued appends; want %d in flight, %d events",
					g.inFlight, g.queued, len(g.queue), wantInFlight, wantQueued)
			}
		})
	}
}

// TestAppendGroupDurableCommitsAsTheSession checks that a group's durable
// call leaves synchronous_commit as the session had it before the call
// (append_group_packed inside it sets it off), so that its commit waits
// for the WAL before the durable head it recorded becomes visible; and
// that the head it recorded is the group's last position.
func TestAppendGroupDurableCommitsAsTheSession(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	S := pgx.Identifier{s.opt.schema}.Sanitize()
	for i, session := range []string{"on", "local", "remote_apply"} {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		var head, durable int64
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = "+session); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `SELECT statuses FROM `+S+`.append_group_durable(ARRAY['\x54'::bytea], ARRAY['`+fmt.Sprintf(`\x%x`, fmt.Sprint("s", i))+`'::bytea],
	ARRAY[0::bigint], ARRAY[2::bigint], ARRAY['\x45'::bytea], ARRAY[1::bigint], ARRAY[1700000000::bigint], ARRAY[0], ARRAY[NULL::bytea],
	ARRAY[1, 1], ARRAY[1, 1], ARRAY['\x01'::bytea, '\x02'], ARRAY[gen_random_uuid(), gen_random_uuid()], 1000000)`); err != nil {
				return err
			}
			return tx.QueryRow(ctx, `SELECT current_setting('synchronous_commit'),
	(SELECT position FROM `+S+`.log_head WHERE id = 1), (SELECT position FROM `+S+`.log_durable WHERE pid = pg_backend_pid())`).Scan(&got, &head, &durable)
		})
		conn.Release()
		if err != nil {
			t.Fatal(err)
		}
		if got != session {
			t.Errorf("synchronous_commit after append_group_durable = %q, want the session's %q", got, session)
		}
		if head != int64(2*(i+1)) || durable != head {
			t.Errorf("after group %d: head %d, recorded durable %d; want both %d", i, head, durable, 2*(i+1))
		}
	}
}

// TestRideGroup checks a group that rides on the next one's commit: it
// commits asynchronously, and its appends are answered only once they are
// durable, by the next group's synchronous commit or, when the group in
// flight ends without making them durable, by a flusher round.
func TestRideGroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// cover ends the group in flight that the rider waits for, and
		// returns the durable head the rider's answer must be covered by.
		cover func(t *testing.T, s *Store) uint64
		// coveredBySync: the rider's and the cover's events and the
		// durable head are the cover's transaction's (the next group).
		coveredBySync bool
	}{
		{"next group commits synchronously", func(t *testing.T, s *Store) uint64 {
			// The slot taken for the fake group in flight is this group's.
			r := s.newGroupReq(runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "next"}, Expected: runtime.NoStream, Events: storetest.Events(2)})
			s.runGroup([]*groupReq{r})
			a := <-r.done
			if a.err != nil || a.out.status != appendOK {
				t.Fatalf("next group: %+v, %v", a.out, a.err)
			}
			return uint64(a.out.base) + 2
		}, true},
		{"group in flight ends without a flush", func(t *testing.T, s *Store) uint64 {
			s.grouper.mu.Lock()
			s.grouper.inFlight--
			s.grouper.mu.Unlock()
			s.grouper.durable.poke()
			return 0
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t, WithNotify(false))
			ctx := t.Context()
			// Two slots: the rider's, and a group in flight behind it.
			s.grouper.mu.Lock()
			s.grouper.inFlight += 2
			s.grouper.rideNext = true
			s.grouper.mu.Unlock()
			rider := []*groupReq{
				s.newGroupReq(runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "r1"}, Expected: runtime.NoStream, Events: storetest.Events(3)}),
				s.newGroupReq(runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "r2"}, Expected: runtime.NoStream, Events: storetest.Events(1)}),
			}
			go s.runGroup(rider)
			// The rider's events commit (the log's head moves) but stay
			// unanswered and not durable while the group in flight runs.
			var committed int64
			for committed < 4 {
				time.Sleep(time.Millisecond)
				if err := s.pool.QueryRow(ctx, fmt.Sprintf("SELECT position FROM %s.log_head", pgx.Identifier{s.opt.schema}.Sanitize())).Scan(&committed); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case a := <-rider[0].done:
				t.Fatalf("the rider was answered before anything made it durable: %+v, %v", a.out, a.err)
			case <-time.After(200 * time.Millisecond):
			}
			if h, err := s.Head(ctx); err != nil || h != 0 {
				t.Fatalf("durable head while the rider waits = %d, %v; want 0", h, err)
			}
			coverHead := tt.cover(t, s)
			for i, r := range rider {
				if a := <-r.done; a.err != nil || a.out.status != appendOK {
					t.Fatalf("rider append %d: %+v, %v", i, a.out, a.err)
				}
			}
			h, err := s.Head(ctx)
			if err != nil || h < 4 || h < coverHead {
				t.Fatalf("durable head after the rider's answer = %d, %v; want at least 4 and %d", h, err, coverHead)
			}
			if got := lastAppendSync(t, s); got != tt.coveredBySync {
				t.Errorf("the latest events and the durable head written by one transaction: %v, want %v", got, tt.coveredBySync)
			}
			recs, err := storetest.Collect(s.ReadAll(ctx, 0))
			if want := max(int(coverHead), 4); err != nil || len(recs) != want {
				t.Fatalf("ReadAll = %d records, %v; want %d", len(recs), err, want)
			}
		})
	}
}
