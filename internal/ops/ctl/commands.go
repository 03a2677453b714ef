package ctl

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// streamJSON is a stream id in JSON.
type streamJSON struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// eventJSON is one event as events, tail and export print it, and as
// import reads it.
type eventJSON struct {
	Stream   streamJSON `json:"stream"`
	Version  uint64     `json:"version"`
	Position uint64     `json:"position"`
	// EventID is the event's id, omitted for events stored before event
	// ids existed (import gives those a new one).
	EventID  string            `json:"event_id,omitempty"`
	Name     string            `json:"name"`
	Schema   uint32            `json:"schema"`
	Time     string            `json:"time"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// Data is the event body decoded from MessagePack, null when it does
	// not decode (DataError then says why).
	Data      json.RawMessage `json:"data"`
	DataError string          `json:"data_error,omitempty"`
	// Raw is the exact stored body (base64 in JSON): what import writes.
	Raw []byte `json:"raw,omitempty"`
}

func toJSON(r runtime.Record, raw bool) eventJSON {
	e := eventJSON{
		Stream:   streamJSON{Type: r.Stream.Type, ID: r.Stream.ID},
		Version:  r.Version,
		Position: r.Position,
		EventID:  r.EventID.String(),
		Name:     r.Name,
		Schema:   r.Schema,
		Time:     r.Time.UTC().Format(time.RFC3339Nano),
		Metadata: r.Metadata,
	}
	if len(r.Metadata) == 0 {
		e.Metadata = nil
	}
	data, err := msgpackToJSON(r.Data)
	if runtime.IsTombstone(r) {
		data, err = tombstoneData(r)
	}
	if err != nil {
		e.Data = json.RawMessage("null")
		e.DataError = err.Error()
	} else {
		e.Data = data
	}
	if raw {
		e.Raw = r.Data
		if e.Raw == nil {
			e.Raw = []byte{}
		}
	}
	return e
}

// lineWriter writes one JSON value a line.
type lineWriter struct {
	w   *bufio.Writer
	enc *json.Encoder
}

func newLineWriter(w io.Writer) *lineWriter {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &lineWriter{w: bw, enc: enc}
}

func (l *lineWriter) write(v any) error { return l.enc.Encode(v) }
func (l *lineWriter) flush() error      { return l.w.Flush() }

func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// statsJSON is what stats prints.
type statsJSON struct {
	Store           string           `json:"store"`
	Events          uint64           `json:"events"`
	Streams         uint64           `json:"streams"`
	Snapshots       uint64           `json:"snapshots"`
	Checkpoints     uint64           `json:"checkpoints"`
	IdempotencyKeys uint64           `json:"idempotency_keys"`
	Head            uint64           `json:"head"`
	Truncated       uint64           `json:"truncated,omitempty"` // the last truncated position (archive)
	DiskBytes       int64            `json:"disk_bytes"`
	Extra           map[string]int64 `json:"extra,omitempty"`
}

func (c *command) stats(ctx context.Context, fs *flag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	return c.withStore(ctx, false, false, func(t *target) error {
		st, err := t.Stats(ctx)
		if err != nil {
			return err
		}
		var tr storekit.VerifyReport // only its Extra, filled by addTruncated
		if err := addTruncated(ctx, t, &tr); err != nil {
			return err
		}
		return writeIndented(c.env.Stdout, statsJSON{
			Store: t.kind, Events: st.Events, Streams: st.Streams, Snapshots: st.Snapshots,
			Checkpoints: st.Checkpoints, IdempotencyKeys: st.IdempotencyKeys, Head: st.Head,
			Truncated: tr.Extra["truncated"], DiskBytes: st.DiskBytes, Extra: st.Extra,
		})
	})
}

// streamLine is what streams prints per stream.
type streamLine struct {
	Stream  streamJSON `json:"stream"`
	Version uint64     `json:"version"`
}

func (c *command) streams(ctx context.Context, fs *flag.FlagSet, args []string) error {
	typ := fs.String("type", "", "only streams of this stream `type`")
	afterFlag := fs.String("after", "", "start after this `stream` (TYPE/ID, or ID with -type)")
	limit := fs.Int("limit", 0, "print at most `n` streams (0: all)")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	var after runtime.StreamID
	if *afterFlag != "" {
		if *typ != "" {
			after = runtime.StreamID{Type: *typ, ID: *afterFlag}
		} else {
			t, id, ok := strings.Cut(*afterFlag, "/")
			if !ok || t == "" || id == "" {
				return usagef("-after %q: want TYPE/ID (or ID with -type)", *afterFlag)
			}
			after = runtime.StreamID{Type: t, ID: id}
		}
	}
	if *limit < 0 {
		return usagef("-limit %d: must be ≥ 0", *limit)
	}
	return c.withStore(ctx, false, false, func(t *target) error {
		lister, ok := t.Store.(storekit.StreamLister)
		if !ok {
			return fmt.Errorf("streams: the %s store cannot list its streams", t.kind)
		}
		out := newLineWriter(c.env.Stdout)
		n := 0
		for info, err := range lister.Streams(ctx, *typ, after) {
			if err != nil {
				_ = out.flush()
				return err
			}
			if err := out.write(streamLine{Stream: streamJSON{Type: info.Stream.Type, ID: info.Stream.ID}, Version: info.Version}); err != nil {
				return err
			}
			if n++; n == *limit {
				break
			}
		}
		if err := out.flush(); err != nil {
			return err
		}
		if n == 0 && *typ != "" && after == (runtime.StreamID{}) {
			types, err := streamTypes(ctx, t)
			if err == nil && !slices.Contains(types, *typ) {
				return fmt.Errorf("no stream of type %q%s", *typ, typesHint(types))
			}
		}
		return nil
	})
}

func (c *command) events(ctx context.Context, fs *flag.FlagSet, args []string) error {
	after := fs.Uint64("after", 0, "only events with version > `v`")
	limit := fs.Int("limit", 0, "print at most `n` events (0: all)")
	raw := fs.Bool("raw", false, "add each event's stored bytes (base64) as \"raw\"")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("events wants STREAM-TYPE STREAM-ID, got %d arguments", len(pos))
	}
	stream := runtime.StreamID{Type: pos[0], ID: pos[1]}
	if err := runtime.ValidateStream(stream); err != nil {
		return usagef("%v", err)
	}
	return c.withStore(ctx, false, false, func(t *target) error {
		out := newLineWriter(c.env.Stdout)
		n := 0
		for rec, err := range t.ReadStream(ctx, stream, *after) {
			if err != nil {
				_ = out.flush()
				return err
			}
			if err := out.write(toJSON(rec, *raw)); err != nil {
				return err
			}
			if n++; n == *limit {
				break
			}
		}
		if err := out.flush(); err != nil || n > 0 {
			return err
		}
		// Nothing printed: say so when the stream does not exist, rather
		// than succeed silently on a mistyped type or id.
		v, err := t.StreamVersion(ctx, stream)
		if err != nil || v > 0 {
			return err
		}
		return missingStream(ctx, t, stream)
	})
}

// missingStream explains that stream does not exist: which of its type or
// id is unknown, and the stream types the store holds.
func missingStream(ctx context.Context, t *target, stream runtime.StreamID) error {
	types, err := streamTypes(ctx, t)
	if err != nil {
		return fmt.Errorf("no stream %s", stream)
	}
	if slices.Contains(types, stream.Type) {
		return fmt.Errorf("no stream %s: the store has streams of type %q, but none with that id", stream, stream.Type)
	}
	return fmt.Errorf("no stream of type %q%s", stream.Type, typesHint(types))
}

// maxTypesListed bounds the stream types an error lists.
const maxTypesListed = 20

func typesHint(types []string) string {
	switch {
	case len(types) == 0:
		return " (the store holds no streams)"
	case len(types) > maxTypesListed:
		return fmt.Sprintf(" (the store holds %s, … %d types)", strings.Join(types[:maxTypesListed], ", "), len(types))
	}
	return fmt.Sprintf(" (the store holds %s)", strings.Join(types, ", "))
}

// streamTypes returns the distinct stream types of t, sorted; it reads
// every stream, so it is for error paths only.
func streamTypes(ctx context.Context, t *target) ([]string, error) {
	lister, ok := t.Store.(storekit.StreamLister)
	if !ok {
		return nil, fmt.Errorf("the %s store cannot list its streams", t.kind)
	}
	seen := map[string]bool{}
	for info, err := range lister.Streams(ctx, "", runtime.StreamID{}) {
		if err != nil {
			return nil, err
		}
		seen[info.Stream.Type] = true
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

func (c *command) tail(ctx context.Context, fs *flag.FlagSet, args []string) error {
	afterFlag := fs.Int64("after", -1, "start after position `p` (default: the current head)")
	fromStart := fs.Bool("from-start", false, "start at the first event (same as -after 0)")
	limit := fs.Int("limit", 0, "stop after `n` events (0: follow until interrupted)")
	raw := fs.Bool("raw", false, "add each event's stored bytes (base64) as \"raw\"")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *fromStart {
		if *afterFlag >= 0 {
			return usagef("give -after or -from-start, not both")
		}
		*afterFlag = 0
	}
	if c.sf.pebbleDir != "" && *afterFlag < 0 {
		return usagef("tail on a Pebble store needs -after P or -from-start: a Pebble directory admits one process at a time, so cqrsctl does not follow it live (the application could not open it meanwhile); it prints the stored events up to the head and exits (cqrsctl tail -h)")
	}
	return c.withStore(ctx, false, false, func(t *target) error {
		if t.kind == "pebble" {
			return c.upToHead(ctx, t, uint64(*afterFlag), *limit, *raw)
		}
		return c.follow(ctx, t, *afterFlag, *limit, *raw)
	})
}

// upToHead prints the events of t after position after up to the head
// read at the start (at most limit, 0: no limit), then returns: tail on a
// Pebble store, which must not be held open (see the tail command's help).
func (c *command) upToHead(ctx context.Context, t runtime.Store, after uint64, limit int, raw bool) error {
	head, err := t.Head(ctx)
	if err != nil || head <= after {
		return err
	}
	out := newLineWriter(c.env.Stdout)
	n := 0
	for rec, err := range t.ReadAll(ctx, after) {
		if err != nil {
			_ = out.flush()
			return err
		}
		if err := out.write(toJSON(rec, raw)); err != nil {
			return err
		}
		if n++; n == limit || rec.Position >= head {
			break
		}
	}
	return out.flush()
}

// follow prints the events of t after position after (the current head
// when after < 0), live, until ctx ends or limit events (0: no limit) have
// been printed. An interrupted follow is a success.
func (c *command) follow(ctx context.Context, t runtime.Store, after int64, limit int, raw bool) error {
	start := uint64(max(after, 0))
	if after < 0 {
		h, err := t.Head(ctx)
		if err != nil {
			return err
		}
		start = h
	}
	if c.following != nil {
		c.following(start)
	}
	out := newLineWriter(c.env.Stdout)
	n := 0
	for rec, err := range runtime.Subscribe(ctx, t, start) {
		if err != nil {
			_ = out.flush()
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return nil // interrupted: the normal end of tail
			}
			return err
		}
		if err := out.write(toJSON(rec, raw)); err != nil {
			return err
		}
		// Flush each event: tail is read live.
		if err := out.flush(); err != nil {
			return err
		}
		if n++; n == limit {
			break
		}
	}
	return out.flush()
}

// problemJSON is one problem in verify's report.
type problemJSON struct {
	Kind     string      `json:"kind"`
	Stream   *streamJSON `json:"stream,omitempty"`
	Version  uint64      `json:"version,omitempty"`
	Position uint64      `json:"position,omitempty"`
	Key      string      `json:"key,omitempty"`
	Table    string      `json:"table,omitempty"`
	Detail   string      `json:"detail"`
}

// verifyJSON is verify's report.
type verifyJSON struct {
	Store    string            `json:"store"`
	OK       bool              `json:"ok"`
	Counts   map[string]uint64 `json:"counts"`
	Problems []problemJSON     `json:"problems"`
	Omitted  int               `json:"omitted,omitempty"`
}

func streamPtr(s runtime.StreamID) *streamJSON {
	if s == (runtime.StreamID{}) {
		return nil
	}
	return &streamJSON{Type: s.Type, ID: s.ID}
}

func (c *command) verify(ctx context.Context, fs *flag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if err := c.checkStoreFlags(); err != nil {
		return err
	}
	var (
		r    storekit.VerifyReport
		kind string
		err  error
	)
	if dir := c.sf.pebbleDir; dir != "" {
		// VerifyDir reads the directory without pebble.Open, so it also
		// checks a store that Open refuses (damaged counters, no format key).
		kind = "pebble"
		r, err = pebble.VerifyDir(ctx, dir, pebble.WithLogger(c.logger()))
	} else {
		err = c.withStore(ctx, false, false, func(t *target) error {
			v, ok := t.Store.(storekit.Verifier)
			if !ok {
				return fmt.Errorf("verify: the %s store cannot verify itself", t.kind)
			}
			kind = t.kind
			var verr error
			if r, verr = v.Verify(ctx); verr != nil {
				return verr
			}
			return addTruncated(ctx, t, &r)
		})
	}
	if err != nil {
		return err
	}
	if r.OK() {
		// The keys and records are sound: now every event body must decode
		// as MessagePack. cqrsctl has no application types, so this is the
		// most it can check; a body failing it cannot be read by any codec.
		if err := c.withStore(ctx, false, false, func(t *target) error { return checkBodies(ctx, t, &r) }); err != nil {
			return err
		}
	}
	rep := verifyJSON{Store: kind, OK: r.OK(), Omitted: r.Omitted, Problems: []problemJSON{}}
	rep.Counts = map[string]uint64{"events": r.Events, "streams": r.Streams, "snapshots": r.Snapshots,
		"checkpoints": r.Checkpoints, "idempotency_keys": r.IdempotencyKeys, "head": r.Head}
	maps.Copy(rep.Counts, r.Extra)
	lines := make([]string, 0, len(r.Problems))
	for _, p := range r.Problems {
		pj := problemJSON{Kind: p.Kind, Stream: streamPtr(p.Stream), Version: p.Version, Position: p.Position, Table: p.Table, Detail: p.Detail}
		if p.Key != nil {
			pj.Key = hex.EncodeToString(p.Key)
		}
		rep.Problems = append(rep.Problems, pj)
		lines = append(lines, p.String())
	}
	if err := writeIndented(c.env.Stdout, rep); err != nil {
		return err
	}
	if rep.OK {
		fmt.Fprintf(c.env.Stderr, "verify: ok: %d events, %d streams, head %d%s\n", rep.Counts["events"], rep.Counts["streams"], rep.Counts["head"], startNote(rep.Counts))
		return nil
	}
	for _, l := range lines {
		fmt.Fprintf(c.env.Stderr, "verify: %s\n", l)
	}
	if rep.Omitted > 0 {
		fmt.Fprintf(c.env.Stderr, "verify: … and %d more problems\n", rep.Omitted)
	}
	fmt.Fprintf(c.env.Stderr, "verify: %d problems found\n", len(rep.Problems)+rep.Omitted)
	return errProblems
}

// checkBodies adds a "body" problem to r for each event of t whose body is
// not one well-formed MessagePack value (a tombstone's, not a tombstone
// runtime.TombstoneOf reads), and counts the
// bodies checked as r.Extra["bodies_decoded"].
func checkBodies(ctx context.Context, t runtime.Store, r *storekit.VerifyReport) error {
	var decoded uint64
	for rec, err := range t.ReadAll(ctx, 0) {
		if err != nil {
			return err
		}
		if runtime.IsTombstone(rec) {
			_, err = runtime.TombstoneOf(rec)
		} else {
			_, err = msgpackToJSON(rec.Data)
		}
		if err != nil {
			r.Add(storekit.VerifyProblem{Kind: "body", Stream: rec.Stream, Version: rec.Version, Position: rec.Position,
				Detail: fmt.Sprintf("event %s@%d: %v", rec.Name, rec.Schema, err)})
			continue
		}
		decoded++
	}
	if r.Extra == nil {
		r.Extra = map[string]uint64{}
	}
	r.Extra["bodies_decoded"] = decoded
	return nil
}

// tombstoneData is a tombstone record's data as JSON (see tombstoneJSON).
func tombstoneData(r runtime.Record) (json.RawMessage, error) {
	t, err := runtime.TombstoneOf(r)
	if err != nil {
		return nil, err
	}
	j := tombstoneToJSON(t)
	j.Position, j.Time, j.Version = 0, "", 0 // the record's own fields say them
	return json.Marshal(j)
}
