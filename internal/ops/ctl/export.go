package ctl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
	"github.com/parquet-go/parquet-go"
)

// progress draws a one-line progress bar on a terminal, at most every
// 100 ms; on anything else it draws nothing.
type progress struct {
	w     io.Writer
	on    bool
	what  string
	total uint64
	done  uint64
	last  time.Time
}

func (c *command) newProgress(what string, total uint64) *progress {
	return &progress{w: c.env.Stderr, on: c.env.Terminal, what: what, total: total}
}

func (p *progress) add(n uint64) {
	p.done += n
	if !p.on {
		return
	}
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.draw()
	}
}

func (p *progress) draw() {
	const width = 30
	if p.total == 0 {
		fmt.Fprintf(p.w, "\r%s %d events", p.what, p.done)
	} else {
		frac := min(float64(p.done)/float64(p.total), 1)
		n := int(frac * width)
		fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%% %d/%d events", p.what, strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, p.done, p.total)
	}
}

// finish draws the final state and ends the line.
func (p *progress) finish() {
	if !p.on {
		return
	}
	p.draw()
	fmt.Fprintln(p.w)
}

func (c *command) export(ctx context.Context, fs *flag.FlagSet, args []string) error {
	from := fs.Uint64("from", 1, "first `position` to export")
	to := fs.Uint64("to", 0, "last `position` to export (0: the head when the export starts)")
	format := fs.String("format", "jsonl", "output `format`: jsonl or parquet")
	outPath := fs.String("o", "-", "output `file` (- for stdout)")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	switch *format {
	case "jsonl", "parquet":
	default:
		return usagef("-format %q: want jsonl or parquet", *format)
	}
	if *from == 0 {
		*from = 1
	}
	if *to != 0 && *to < *from {
		return usagef("-to %d is before -from %d", *to, *from)
	}
	return c.withStore(ctx, false, false, func(t *target) error {
		head, err := t.Head(ctx)
		if err != nil {
			return err
		}
		if *from, err = c.logStart(ctx, t, *from); err != nil {
			return err
		}
		last := head
		if *to != 0 && *to < head {
			last = *to
		}
		var total uint64
		if last >= *from {
			total = last - *from + 1
		}
		var w io.Writer = c.env.Stdout
		var f *os.File
		if *outPath != "-" {
			f, err = os.Create(*outPath)
			if err != nil {
				return err
			}
			w = f
		}
		if *format == "parquet" {
			lim := c.parquetLimits
			if lim == (parquetLimits{}) {
				lim = parquetLimits{rows: parquetRowGroupRows, bytes: parquetRowGroupBytes}
			}
			err = c.writeParquet(ctx, t, w, *from, last, total, lim)
		} else {
			err = c.writeJSONL(ctx, t, w, *from, last, total)
		}
		if f != nil {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil && *format == "parquet" {
				// A Parquet file without its footer is of no use to anyone.
				_ = os.Remove(*outPath)
			}
		}
		return err
	})
}

func (c *command) writeJSONL(ctx context.Context, t *target, w io.Writer, from, last, total uint64) error {
	out := newLineWriter(w)
	bar := c.newProgress("export", total)
	defer bar.finish()
	if total == 0 {
		return out.flush()
	}
	next := from
	for rec, err := range t.ReadAll(ctx, from-1) {
		if err != nil {
			_ = out.flush()
			return err
		}
		if rec.Position > last {
			break
		}
		// Positions increase; hard deletes leave holes (lifecycle.DeleteStream).
		if rec.Position < next {
			_ = out.flush()
			return fmt.Errorf("export: the store yielded position %d where %d was expected: run verify", rec.Position, next)
		}
		if err := out.write(toJSON(rec, true)); err != nil {
			return err
		}
		bar.add(rec.Position - next + 1)
		next = rec.Position + 1
		if rec.Position == last {
			break
		}
	}
	return out.flush()
}

// maxLine bounds one JSON line of an import: the largest event, base64
// encoded twice over (raw and decoded data), plus the envelope.
const maxLine = 4*runtime.MaxEventSize + 1<<20

func (c *command) importLog(ctx context.Context, fs *flag.FlagSet, args []string) error {
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("import takes at most one FILE, got %d", len(pos))
	}
	if err := c.checkStoreFlags(); err != nil {
		return err
	}
	var in io.Reader = c.env.Stdin
	name := "stdin"
	if len(pos) == 1 && pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, pos[0]
	}
	// Read the input's format before touching the store, so that a wrong
	// input leaves no store behind.
	events, err := importSource(in, name)
	if err != nil {
		return err
	}
	created := false
	if dir := c.sf.pebbleDir; dir != "" {
		_, statErr := os.Stat(dir)
		created = errors.Is(statErr, os.ErrNotExist)
	}
	err = c.withStore(ctx, true, true, func(t *target) error {
		head, err := t.Head(ctx)
		if err != nil {
			return err
		}
		st, err := t.Stats(ctx)
		if err != nil {
			return err
		}
		if head != 0 || st.Events != 0 || st.Streams != 0 {
			return fmt.Errorf("import: the target store is not empty (%d events, %d streams, head %d): import only into an empty store", st.Events, st.Streams, head)
		}
		n, err := c.importEvents(ctx, t, events)
		if err != nil {
			return err
		}
		if err := t.Flush(ctx); err != nil {
			return err
		}
		fmt.Fprintf(c.env.Stderr, "import: %d events\n", n)
		return nil
	})
	if err != nil && created {
		// The directory exists only because of this failed import: leave
		// nothing a later import would call "not empty".
		if rerr := os.RemoveAll(c.sf.pebbleDir); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// parquetMagic starts (and ends) every Parquet file.
const parquetMagic = "PAR1"

// importSource detects the format of in (a Parquet file starts with
// "PAR1", anything else is read as JSON Lines) and returns its events in
// order; an error of the sequence names the line or row it is about.
func importSource(in io.Reader, name string) (iter.Seq2[eventJSON, error], error) {
	br := bufio.NewReaderSize(in, 64<<10)
	magic, _ := br.Peek(len(parquetMagic))
	if string(magic) != parquetMagic {
		return jsonLinesSource(br), nil
	}
	// Parquet keeps its metadata at the end: it needs random access. A
	// regular file has it; a pipe is read into memory.
	var (
		ra   io.ReaderAt
		size int64
	)
	if f, ok := in.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			ra, size = f, st.Size()
		}
	}
	if ra == nil {
		data, err := io.ReadAll(br)
		if err != nil {
			return nil, fmt.Errorf("import: reading %s: %w", name, err)
		}
		ra, size = bytes.NewReader(data), int64(len(data))
	}
	pf, err := parquet.OpenFile(ra, size)
	if err != nil {
		return nil, fmt.Errorf("import: %s starts like a Parquet file but cannot be read as one: %w", name, err)
	}
	for _, path := range parquetSchema.Columns() {
		// Exports made before event ids existed lack event_id: the reader
		// leaves it zero, and the store makes new ids.
		if _, ok := pf.Schema().Lookup(path...); !ok && !slices.Equal(path, []string{"event_id"}) {
			return nil, fmt.Errorf("import: %s is a Parquet file without column %q: import reads the Parquet files cqrsctl export writes", name, strings.Join(path, "."))
		}
	}
	return parquetSource(pf), nil
}

func jsonLinesSource(r io.Reader) iter.Seq2[eventJSON, error] {
	return func(yield func(eventJSON, error) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), maxLine)
		line := 0
		for sc.Scan() {
			line++
			b := sc.Bytes()
			if len(strings.TrimSpace(string(b))) == 0 {
				continue
			}
			var e eventJSON
			if err := json.Unmarshal(b, &e); err != nil {
				yield(e, fmt.Errorf("line %d: %w", line, err))
				return
			}
			if !yield(e, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(eventJSON{}, fmt.Errorf("line %d: %w", line+1, err))
		}
	}
}

func parquetSource(pf *parquet.File) iter.Seq2[eventJSON, error] {
	return func(yield func(eventJSON, error) bool) {
		r := parquet.NewGenericReader[parquetEvent](pf)
		defer r.Close()
		buf := make([]parquetEvent, 256)
		row := 0
		for {
			n, err := r.Read(buf)
			for _, p := range buf[:n] {
				row++
				e := eventJSON{
					Stream:   streamJSON{Type: p.StreamType, ID: p.StreamID},
					Version:  uint64(p.Version),
					Position: uint64(p.Position),
					EventID:  runtime.EventID(p.EventID).String(),
					Name:     p.Name,
					Schema:   uint32(p.Schema),
					Time:     p.Time.UTC().Format(time.RFC3339Nano),
					Metadata: p.Metadata,
					Raw:      p.Raw,
				}
				if p.Version < 0 || p.Position < 0 || p.Schema < 0 || p.Schema > math.MaxUint32 {
					yield(e, fmt.Errorf("row %d: negative or out-of-range position, version or schema", row))
					return
				}
				if len(e.Metadata) == 0 {
					e.Metadata = nil
				}
				if e.Raw == nil {
					e.Raw = []byte{} // the column is required: nil is an empty body
				}
				if !yield(e, nil) {
					return
				}
			}
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(eventJSON{}, fmt.Errorf("row %d: %w", row+1, err))
				return
			}
		}
	}
}

// importer batches consecutive events of one stream into one append.
type importer struct {
	t        *target
	versions map[runtime.StreamID]uint64
	pending  runtime.AppendRequest
	first    uint64 // position of pending's first event
	size     int
	next     uint64 // the position the next line must have
	count    uint64
}

func (c *command) importEvents(ctx context.Context, t *target, events iter.Seq2[eventJSON, error]) (uint64, error) {
	im := &importer{t: t, versions: make(map[runtime.StreamID]uint64), next: 1}
	bar := c.newProgress("import", 0) // the total is unknown without a second pass
	defer bar.finish()
	n := 0
	for e, err := range events {
		if err != nil {
			return im.count, fmt.Errorf("import: %w", err)
		}
		n++
		if err := im.add(ctx, e); err != nil {
			return im.count, fmt.Errorf("import: event %d of the input: %w", n, err)
		}
		bar.add(1)
	}
	if err := im.flush(ctx); err != nil {
		return im.count, err
	}
	return im.count, nil
}

func (im *importer) add(ctx context.Context, e eventJSON) error {
	stream := runtime.StreamID{Type: e.Stream.Type, ID: e.Stream.ID}
	if err := runtime.ValidateStream(stream); err != nil {
		return err
	}
	if e.Position != im.next {
		if im.next == 1 {
			return fmt.Errorf("the export starts at position %d: only a whole-log export (from position 1) can be imported, keeping positions and versions", e.Position)
		}
		return fmt.Errorf("position %d follows position %d: the export has a gap or is out of order", e.Position, im.next-1)
	}
	t, err := time.Parse(time.RFC3339Nano, e.Time)
	if err != nil {
		return fmt.Errorf("event at position %d: time: %w", e.Position, err)
	}
	if e.Raw == nil {
		return fmt.Errorf("event at position %d has no \"raw\" bytes (export with cqrsctl export, which writes them)", e.Position)
	}
	id, err := runtime.ParseEventID(e.EventID)
	if err != nil {
		return fmt.Errorf("event at position %d: %w", e.Position, err)
	}
	// A zero id (an event stored before event ids existed) gets a new one
	// from the store.
	ev := runtime.EventData{ID: id, Name: e.Name, Schema: e.Schema, Time: t, Metadata: e.Metadata, Data: e.Raw}
	if stream != im.pending.Stream || len(im.pending.Events) >= runtime.MaxBatchEvents ||
		im.size+storekit.EventSize(ev) > runtime.MaxBatchSize {
		if err := im.flush(ctx); err != nil {
			return err
		}
	}
	want := im.versions[stream] + uint64(len(im.pending.Events)) + 1
	if im.pending.Stream != stream {
		want = im.versions[stream] + 1
	}
	if e.Version != want {
		return fmt.Errorf("stream %s: version %d where version %d was expected: the export is not a whole log", stream, e.Version, want)
	}
	if len(im.pending.Events) == 0 {
		im.pending = runtime.AppendRequest{Stream: stream, Expected: im.versions[stream]}
		im.first = e.Position
		im.size = 0
	}
	im.pending.Events = append(im.pending.Events, ev)
	im.size += storekit.EventSize(ev)
	im.next++
	return nil
}

func (im *importer) flush(ctx context.Context) error {
	if len(im.pending.Events) == 0 {
		return nil
	}
	res, err := im.t.Append(ctx, im.pending)
	if err != nil {
		return fmt.Errorf("import: append to %s at position %d: %w", im.pending.Stream, im.first, err)
	}
	if res.FirstPosition != im.first {
		return fmt.Errorf("import: %s was written at position %d instead of %d (is another writer using the store?)", im.pending.Stream, res.FirstPosition, im.first)
	}
	im.versions[im.pending.Stream] = res.LastVersion
	im.count += uint64(len(im.pending.Events))
	im.pending.Events = nil
	im.size = 0
	return nil
}
