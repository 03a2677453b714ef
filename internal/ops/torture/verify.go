package torture

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// appendAck is an acknowledged Store.Append.
type appendAck struct {
	stream            runtime.StreamID
	version, position uint64 // of the first event
	n                 int
	key               string
}

// execAck is an acknowledged Repository.Execute.
type execAck struct {
	account string
	version uint64
}

// logEntry is what the verifier remembers of a verified record, to prove
// that it never changes or disappears later.
type logEntry struct {
	stream  runtime.StreamID
	version uint64
	data    string
}

// verifier accumulates the children's acknowledgements over a campaign and
// checks the store against them after every round.
type verifier struct {
	target Target
	rng    *rand.Rand

	mu         sync.Mutex
	appends    map[string]appendAck // batch id →
	execs      map[string]execAck   // idempotency key →
	keys       []string             // acknowledged execute keys, in order
	newKeys    []string             // acknowledged this round
	newKeyed   []string             // keyed append batches acknowledged this round
	events     int
	reexecutes int
	maxHandled uint64

	prev        []logEntry
	lastUnacked int
}

func newVerifier(t Target) *verifier {
	return &verifier{target: t, rng: rand.New(rand.NewPCG(1, 2)),
		appends: make(map[string]appendAck), execs: make(map[string]execAck)}
}

func (v *verifier) counts() (appends, events, executes, reexecutes int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.appends), v.events, len(v.execs), v.reexecutes
}

// line records one acknowledgement line of a child.
func (v *verifier) line(line string) error {
	f := strings.Fields(line)
	bad := fmt.Errorf("torture: bad child line %q", line)
	if len(f) == 0 {
		return bad
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	switch f[0] {
	case "a":
		if len(f) != 7 && len(f) != 8 {
			return bad
		}
		ver, err1 := strconv.ParseUint(f[3], 10, 64)
		pos, err2 := strconv.ParseUint(f[4], 10, 64)
		n, err3 := strconv.Atoi(f[5])
		if errors.Join(err1, err2, err3) != nil || n <= 0 {
			return bad
		}
		a := appendAck{stream: runtime.StreamID{Type: f[1], ID: f[2]}, version: ver, position: pos, n: n}
		if len(f) == 8 {
			a.key = f[7]
		}
		if _, dup := v.appends[f[6]]; dup {
			return fmt.Errorf("torture: batch %s acknowledged twice", f[6])
		}
		v.appends[f[6]] = a
		v.events += n
		if a.key != "" {
			v.newKeyed = append(v.newKeyed, f[6])
		}
	case "x":
		if len(f) != 4 {
			return bad
		}
		ver, err := strconv.ParseUint(f[3], 10, 64)
		if err != nil {
			return bad
		}
		if old, ok := v.execs[f[2]]; ok {
			v.reexecutes++
			if old.account != f[1] || old.version != ver {
				return fmt.Errorf("torture: key %s acknowledged as %s v%d, re-executed as %s v%d: idempotency broken", f[2], old.account, old.version, f[1], ver)
			}
			return nil
		}
		v.execs[f[2]] = execAck{account: f[1], version: ver}
		v.keys = append(v.keys, f[2])
		v.newKeys = append(v.newKeys, f[2])
	case "h":
		if len(f) != 2 {
			return bad
		}
		pos, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return bad
		}
		v.maxHandled = max(v.maxHandled, pos)
	default:
		return bad
	}
	return nil
}

type verifyStats struct {
	records    uint64
	unacked    int
	rechecked  int
	checkpoint uint64
}

// found is a batch (or an executed event) as found in the log.
type found struct {
	stream      runtime.StreamID
	first, last runtime.Record
	seen        []bool
	count       int
}

// verify opens the store after a kill and checks every guarantee.
func (v *verifier) verify(ctx context.Context) (verifyStats, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var vs verifyStats
	s, err := open(ctx, v.target)
	if err != nil {
		return vs, fmt.Errorf("reopen after kill: %w", err)
	}
	defer s.Close()
	// On PostgreSQL an appender killed between its asynchronous commit
	// and its flush leaves committed positions above the durable head,
	// which the next flush of any process (at the latest the poller's,
	// WithPollInterval later) exposes. Flush first, so that the log read
	// below is the whole log and the re-executions of step 5 cannot be
	// blamed for events that surface while they run.
	if err := s.Flush(ctx); err != nil {
		return vs, fmt.Errorf("flush after kill: %w", err)
	}

	// 1. The whole log: positions 1..n without gaps, versions 1..k per
	// stream, earlier records unchanged.
	var log []logEntry
	versions := map[runtime.StreamID]uint64{}
	batches := map[string]*found{}
	execs := map[string]runtime.Record{}
	lastTag := map[string]string{}
	for rec, err := range s.ReadAll(ctx, 0) {
		if err != nil {
			return vs, fmt.Errorf("read all after position %d: %w", len(log), err)
		}
		if rec.Position != uint64(len(log))+1 {
			return vs, fmt.Errorf("record %s v%d has position %d after position %d: gap or reorder", rec.Stream, rec.Version, rec.Position, len(log))
		}
		if rec.Version != versions[rec.Stream]+1 {
			return vs, fmt.Errorf("%s: version %d at position %d follows version %d", rec.Stream, rec.Version, rec.Position, versions[rec.Stream])
		}
		versions[rec.Stream] = rec.Version
		e := logEntry{stream: rec.Stream, version: rec.Version, data: string(rec.Data)}
		if i := len(log); i < len(v.prev) && v.prev[i] != e {
			return vs, fmt.Errorf("position %d held %s v%d %q, now holds %s v%d %q", i+1, v.prev[i].stream, v.prev[i].version, v.prev[i].data, e.stream, e.version, e.data)
		}
		log = append(log, e)
		switch {
		case strings.HasPrefix(e.data, rawPrefix):
			id, idx, n, ok := parseRaw(e.data)
			if !ok || rec.Stream.Type != RawType {
				return vs, fmt.Errorf("unexpected record %s v%d p%d %q", rec.Stream, rec.Version, rec.Position, e.data)
			}
			b := batches[id]
			if b == nil {
				b = &found{stream: rec.Stream, first: rec, seen: make([]bool, n)}
				batches[id] = b
			}
			if len(b.seen) != n || idx != b.count || b.seen[idx] || rec.Stream != b.stream ||
				rec.Version != b.first.Version+uint64(idx) || rec.Position != b.first.Position+uint64(idx) {
				return vs, fmt.Errorf("batch %s: event %d/%d at %s v%d p%d does not follow its batch (first at %s v%d p%d, %d seen): duplicated, reordered or interleaved",
					id, idx, n, rec.Stream, rec.Version, rec.Position, b.stream, b.first.Version, b.first.Position, b.count)
			}
			b.seen[idx] = true
			b.count++
			b.last = rec
		case strings.HasPrefix(e.data, execPrefix):
			key := e.data[len(execPrefix):]
			if old, dup := execs[key]; dup {
				return vs, fmt.Errorf("command with key %s appended twice: %s v%d and %s v%d", key, old.Stream, old.Version, rec.Stream, rec.Version)
			}
			if rec.Stream.Type != AccountType {
				return vs, fmt.Errorf("command event %q in stream %s", key, rec.Stream)
			}
			execs[key] = rec
			lastTag[rec.Stream.ID] = key
		default:
			return vs, fmt.Errorf("unexpected record %s v%d p%d %q", rec.Stream, rec.Version, rec.Position, e.data)
		}
	}
	if len(log) < len(v.prev) {
		return vs, fmt.Errorf("the log shrank from %d to %d events", len(v.prev), len(log))
	}
	head := uint64(len(log))
	vs.records = head

	// 2. Every batch whole (all or nothing), keyed batches with their key.
	for id, b := range batches {
		if b.count != len(b.seen) {
			return vs, fmt.Errorf("batch %s in %s is partial: %d of %d events", id, b.stream, b.count, len(b.seen))
		}
		if strings.HasPrefix(id, "k") {
			if err := checkKey(ctx, s, id, b.stream, b.last); err != nil {
				return vs, err
			}
		}
	}
	// 3. Every acknowledged append present exactly once where it was
	// acknowledged.
	acked := 0
	for id, a := range v.appends {
		b := batches[id]
		if b == nil {
			return vs, fmt.Errorf("acknowledged append %s (%d events at %s v%d p%d) lost", id, a.n, a.stream, a.version, a.position)
		}
		if b.stream != a.stream || b.first.Version != a.version || b.first.Position != a.position || len(b.seen) != a.n {
			return vs, fmt.Errorf("append %s acknowledged as %d events at %s v%d p%d, stored as %d at %s v%d p%d",
				id, a.n, a.stream, a.version, a.position, len(b.seen), b.stream, b.first.Version, b.first.Position)
		}
		if (a.key != "") != strings.HasPrefix(id, "k") || (a.key != "" && a.key != id) {
			return vs, fmt.Errorf("append %s acknowledged with key %q", id, a.key)
		}
		acked += a.n
	}
	// 4. Every command event recorded with its key atomically; every
	// acknowledged command present at its version.
	for key, rec := range execs {
		if err := checkKey(ctx, s, key, rec.Stream, rec); err != nil {
			return vs, err
		}
	}
	for key, a := range v.execs {
		rec, ok := execs[key]
		if !ok {
			return vs, fmt.Errorf("acknowledged command %s on %s (version %d) lost", key, a.account, a.version)
		}
		if rec.Stream.ID != a.account || rec.Version != a.version {
			return vs, fmt.Errorf("command %s acknowledged at %s v%d, stored at %s v%d", key, a.account, a.version, rec.Stream, rec.Version)
		}
		acked++
	}
	vs.unacked = int(head) - acked
	v.lastUnacked = vs.unacked

	// 5. Idempotency keys honoured after the restart: re-executing an
	// acknowledged key returns its version and appends nothing.
	repo := runtime.NewRepository(s, counterAggregate())
	recheck := append([]string(nil), v.newKeys...)
	for range min(50, len(v.keys)) {
		recheck = append(recheck, v.keys[v.rng.IntN(len(v.keys))])
	}
	for _, key := range recheck {
		a := v.execs[key]
		got, err := repo.Execute(ctx, a.account, add{Tag: key + "-verify"}, runtime.IdempotencyKey(key))
		if err != nil {
			return vs, fmt.Errorf("re-executing key %s on %s: %w", key, a.account, err)
		}
		if got != a.version {
			return vs, fmt.Errorf("re-executing key %s on %s returned version %d, acknowledged %d", key, a.account, got, a.version)
		}
	}
	vs.rechecked = len(recheck)
	v.newKeys = v.newKeys[:0]
	// Keyed appends too: appending again under an acknowledged key writes
	// nothing and returns the first result as a *DuplicateError.
	for _, id := range v.newKeyed {
		a := v.appends[id]
		_, err := s.Append(ctx, runtime.AppendRequest{Stream: a.stream, Expected: runtime.AnyVersion,
			Events: batch(id+"-again", 1), IdempotencyKey: a.key})
		var dup *runtime.DuplicateError
		if !errors.As(err, &dup) || dup.Existing.Stream != a.stream ||
			dup.Existing.Version != a.version+uint64(a.n)-1 || dup.Existing.Position != a.position+uint64(a.n)-1 {
			return vs, fmt.Errorf("appending again under acknowledged key %s (%s v%d p%d): %v", a.key, a.stream, a.version, a.position, err)
		}
		vs.rechecked++
	}
	v.newKeyed = v.newKeyed[:0]

	// 6. Aggregates load to their stream version through snapshots.
	for acct, last := range lastTag {
		st, ver, err := repo.Load(ctx, acct)
		if err != nil {
			return vs, fmt.Errorf("load %s: %w", acct, err)
		}
		want := versions[runtime.StreamID{Type: AccountType, ID: acct}]
		if ver != want || st.Count != want || st.Last != last {
			return vs, fmt.Errorf("load %s: state %+v at version %d, the log has version %d ending with %s", acct, *st, ver, want, last)
		}
	}

	// 7. Counters and projection: head and stats match the log, nothing
	// was appended by the re-executions, the checkpoint and every handled
	// position are at or below the durable head.
	st, err := s.Stats(ctx)
	if err != nil {
		return vs, err
	}
	if st.Head != head || st.Events != head {
		return vs, fmt.Errorf("stats say head %d, %d events; the log holds %d (re-executions appended?)", st.Head, st.Events, head)
	}
	cp, err := s.LoadCheckpoint(ctx, ProjectionName)
	switch {
	case errors.Is(err, runtime.ErrNotFound):
	case err != nil:
		return vs, err
	case cp > head:
		return vs, fmt.Errorf("projection checkpoint %d is ahead of the durable head %d", cp, head)
	}
	vs.checkpoint = cp
	if v.maxHandled > head {
		return vs, fmt.Errorf("the projection handled position %d, but the durable head after the kill is %d", v.maxHandled, head)
	}
	v.prev = log
	return vs, nil
}

// checkKey checks that key's idempotency record names the last event of
// the operation that wrote it.
func checkKey(ctx context.Context, s runtime.Store, key string, stream runtime.StreamID, last runtime.Record) error {
	rec, err := s.LoadIdempotency(ctx, key)
	if err != nil {
		return fmt.Errorf("key %s of the events ending at %s v%d: %w", key, stream, last.Version, err)
	}
	if rec.Stream != stream || rec.Version != last.Version || rec.Position != last.Position {
		return fmt.Errorf("key %s records %s v%d p%d; its events end at %s v%d p%d", key, rec.Stream, rec.Version, rec.Position, stream, last.Version, last.Position)
	}
	return nil
}

// parseRaw splits "a:<id>/<index>/<size>".
func parseRaw(data string) (id string, idx, n int, ok bool) {
	parts := strings.Split(strings.TrimPrefix(data, rawPrefix), "/")
	if len(parts) != 3 {
		return "", 0, 0, false
	}
	i, err1 := strconv.Atoi(parts[1])
	m, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || m <= 0 || i < 0 || i >= m {
		return "", 0, 0, false
	}
	return parts[0], i, m, true
}
