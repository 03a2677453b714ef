package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kinds of rows.
const (
	// KindCqrsgen is a row measuring cqrsgen code (a store, the runtime or
	// generated code).
	KindCqrsgen = "cqrsgen"
	// KindLimit is a row measuring the layer beneath (raw Pebble, the
	// disk's fsync rate, reflection msgpack) in the same run.
	KindLimit = "limit"
)

// Row is one measured line of the report.
type Row struct {
	// Case is the workload case, e.g. "append/batch=1/writers=8"; -only
	// selects cases by it.
	Case string `json:"case"`
	// Group is the workload: append, load, read, codec or fsync.
	Group string `json:"group"`
	// Subject names what was measured: "memory", "pebble", "raw pebble",
	// "fsync", "generated", "reflection msgpack", …
	Subject string `json:"subject"`
	// Kind is KindCqrsgen or KindLimit.
	Kind string `json:"kind"`
	// Synced tells whether each operation waited for fsync; nil when
	// durability does not apply (memory, codecs).
	Synced *bool `json:"synced,omitempty"`
	// Batch is the number of events per operation, Writers the number of
	// concurrent goroutines.
	Batch   int `json:"batch,omitempty"`
	Writers int `json:"writers,omitempty"`
	// Ops and Events count what was done; Seconds is wall time.
	Ops     int64   `json:"ops"`
	Events  int64   `json:"events"`
	Seconds float64 `json:"seconds"`
	// EventsPerSec and OpsPerSec are throughputs over Seconds; a row of
	// repeated whole-log turns (read/…) gives its median turn's instead.
	EventsPerSec float64 `json:"events_per_sec,omitempty"`
	OpsPerSec    float64 `json:"ops_per_sec,omitempty"`
	// Latency summarises per-operation latencies, nil when not measured.
	Latency *Percentiles `json:"latency,omitempty"`
	// NsPerOp and AllocsPerOp are per-operation costs (codec rows).
	NsPerOp     float64 `json:"ns_per_op,omitempty"`
	AllocsPerOp float64 `json:"allocs_per_op,omitempty"`
	// Limit is the Subject of the limit row this row is compared to, and
	// Ratio = this row's speed / the limit's speed (1.0 = as fast as the
	// limit) on the basis named by RatioBasis.
	Limit      string  `json:"limit,omitempty"`
	Ratio      float64 `json:"ratio,omitempty"`
	RatioBasis string  `json:"ratio_basis,omitempty"`
	// Note explains anything unusual (a time cap reached, a skipped part).
	Note string `json:"note,omitempty"`
}

// Report is everything one run produced.
type Report struct {
	Machine Machine  `json:"machine"`
	Setup   Setup    `json:"setup"`
	Rows    []Row    `json:"rows"`
	Targets []Target `json:"targets,omitempty"`
}

// Setup records how the run was configured.
type Setup struct {
	Command    string    `json:"command"`
	Quick      bool      `json:"quick"`
	Scale      float64   `json:"scale"`
	Stores     []string  `json:"stores"`
	DataDir    string    `json:"data_dir,omitempty"`
	Fsync      string    `json:"fsync"`
	Batches    []int     `json:"batch_sizes"`
	Writers    []int     `json:"writers"`
	EventBytes int       `json:"event_bytes"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
}

// Target is one of the ratio targets, evaluated on this run.
type Target struct {
	Name     string  `json:"name"`
	Want     string  `json:"want"`
	Measured string  `json:"measured"`
	Met      bool    `json:"met"`
	Value    float64 `json:"value"`
}

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("bench: writing JSON report: %w", err)
	}
	return nil
}

// ReadJSON reads a report written by WriteJSON.
func ReadJSON(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("bench: reading JSON report: %w", err)
	}
	return &r, nil
}

// groups lists the report's sections in order, with their headings and
// what their tables show.
var groups = []struct{ name, title, intro string }{
	{"fsync", "Disk", "Raw fsync rate of the data directory's disk: one goroutine writing 100 bytes and calling fdatasync in a loop, at the end of the file (each fdatasync also records the new size) and into a file written in advance. Every synced append pays at least one of these: the first while Pebble's WAL file is new (the append rows below), the second once Pebble reuses a WAL file it recycled."},
	{"append", "Append", "Events appended per second, each writer appending to its own stream with the expected version it last saw. Latency is per append call. Limit rows: raw Pebble writing the same keys and bytes in the same batch sizes, concurrent writers' batches grouped into one synced commit as the store groups concurrent appends (a lone writer commits its own `pebble.Sync` batch; while a group waits for its fsync the next is gathered and applied; the row notes the writes per commit, and the Pebble store's rows their appends per commit); for the memory store, the same bytes copied into arenas and published under one mutex into a chunked log and a per-stream position index. The three rows of a case take up to 16 turns each (at least 8 appends per writer a turn), in rotated order (memory and the 100-event rows with twice the events)."},
	{"load", "Load", "Latency of loading one aggregate (read, decode, apply) from a single goroutine. With snapshots, a snapshot exists at the aggregate's latest version, so a load reads the snapshot and an empty tail. The store's ReadStream alone (no decoding) and the generated repository's Load (decoding and applying) are each set beside the limit row. Limit rows: for memory a raw walk over a copy of the store's bodies (the stream's positions and the chunk list taken under a mutex, each body after the snapshot copied into one reused buffer; with snapshots, the snapshot's body copied); and for Pebble raw Pebble reading the same keys the least costly way, in a checkpoint of the store's own database after it was filled, flushed and compacted, so that both sides read the same tables in the same layout (bounded iteration over the stream's index keys; per entry the record reached by a Next when it follows the previous one, else by a seek, as the store does; each value copied into one reused buffer); beside it, for comparison only, issue 18's weaker limit that seeks every record; and for PostgreSQL one query of the stream's rows in the filled store's own schema, on a connection of the limit's own: the store's stream query and columns from its `event_log` view with its `LIMIT` past the stream's length (the store reads a 1,000-event stream in two pages), the plan pinned to the store's nested loop, each row's data value copied raw (pgx `RawValues`, nothing checked or decoded); with snapshots, the snapshot's row (its body copied, its version read) and the events after its version in one batch: one round trip where the store takes two. The rows of a case take 4 turns each, alternating in rotated order. The repository's Load reads through the store's `runtime.StreamVisitor` (no Record; views marked `Stable`, so the generated decoders copy no body: memory lends its own bytes, Pebble copies bodies into shared chunks). `load/spread` streams were written one event per append, 100 aggregates taking turns."},
	{"mixed", "Mixed load → decide → append", "16 goroutines each load a random one of 200 aggregates (10 to 100 events), decide, and append one event at the loaded version (a conflict is retried from the load); with snapshots on, the repository snapshots every 25 events. Limit rows: raw Pebble on a checkpoint of the store's own database after it was filled, flushed and compacted (the same keys, bytes and layout at the start), reading the aggregate's keys (its snapshot key and the tail, with snapshots; the records next-or-seek) and writing one event's keys, concurrent writers grouped into one synced commit as in the append limit, without checks or decoding. For memory, a raw walk over a copy of the store's bodies (those after the snapshot's version, with snapshots, and the snapshot's body) and one body appended as in the memory append limit. The two rows take 4 turns each, in rotated order. Deposits carry varied amounts and references."},
	{"read", "Whole-log read and catch-up", "Reading the whole log from position 0: `Store.ReadAll` and a `runtime.Subscribe` catch-up to the head (set beside `ReadAll`), nine turns each alternating with the limit in rotated order. Limit rows: raw Pebble scanning the same event keys in a checkpoint of the store's own database after it was filled, flushed and compacted (the same tables in the same layout; the row notes the block cache misses of its timed turns, which appear once the tables outgrow the cache), for memory a slice walk, each copying every body into one reused buffer; and for PostgreSQL one query of the filled store's own `event_log` view (the columns the store's reads fetch), streamed on a connection of the limit's own with no pages, ordered by commit: its session pins the plan (no hash or merge join, no sort, no parallel workers, no JIT) to the nested loop over the commits' index on their last position and the events' primary key (commit, offset), which yields the rows in position order without a sort; the limit checks that each position follows the previous one and copies each row's raw data value into one reused buffer (pgx `RawValues`, nothing decoded). The store reads pages of 1,000 positions, one query each, and checks and decodes every row into a `Record`."},
	{"codec", "Codec", "Encoding and decoding one event (`Deposited{Amount int64; Reference string}`). Limit rows: reflection msgpack (`msgpack.Marshal`/`Unmarshal`) of the same bytes for the codec alone (against the generated decoder through `registry.Decoder`, and through `Events.Decode`, which boxes the event in its interface), and for the path rows the same repository path with reflection msgpack as its codec: `Load` of a 100-event stream (figures per event) and `Append`/`Events` of one event per call, on a stub store that keeps nothing."},
}

// WriteMarkdown writes r as Markdown: the machine, the setup, the targets
// and one table per workload, each cqrsgen row next to its limit row.
func WriteMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "### Machine\n\n")
	fmt.Fprintf(&b, "| | |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| CPU | %s |\n", mdEscape(m.CPUModel))
	fmt.Fprintf(&b, "| cores (runtime.NumCPU) | %d (GOMAXPROCS %d) |\n", m.Cores, m.GOMAXPROCS)
	fmt.Fprintf(&b, "| memory | %s |\n", formatBytes(m.MemoryBytes))
	fmt.Fprintf(&b, "| data directory | `%s` on %s (%s, mounted at `%s`) |\n", mdEscape(r.Setup.DataDir), mdEscape(m.Filesystem.Type), mdEscape(m.Filesystem.Device), mdEscape(m.Filesystem.MountPoint))
	fmt.Fprintf(&b, "| OS | %s %s |\n", m.OS, mdEscape(m.Kernel))
	fmt.Fprintf(&b, "| Go | %s |\n", m.GoVersion)
	s := r.Setup
	fmt.Fprintf(&b, "| date | %s (%s run, %.0f s) |\n", s.Started.UTC().Format(time.RFC3339), runKind(s), s.Finished.Sub(s.Started).Seconds())
	fmt.Fprintf(&b, "| command | `%s` |\n", mdEscape(s.Command))
	fmt.Fprintf(&b, "| fsync | %s |\n", mdEscape(s.Fsync))
	fmt.Fprintf(&b, "| batch sizes / writers | %s events per append / %s writers |\n", joinInts(s.Batches), joinInts(s.Writers))
	fmt.Fprintf(&b, "| event body | %d bytes |\n\n", s.EventBytes)

	if len(r.Targets) > 0 {
		fmt.Fprintf(&b, "### Targets\n\n| target | wanted | measured | met |\n| --- | --- | --- | --- |\n")
		for _, t := range r.Targets {
			met := "no"
			if t.Met {
				met = "yes"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", mdEscape(t.Name), mdEscape(t.Want), mdEscape(t.Measured), met)
		}
		b.WriteString("\n")
	}

	if links := chartLinks(r.Rows); links != "" {
		fmt.Fprintf(&b, "### Charts\n\nDashed lines are limit rows.\n\n%s\n", links)
	}

	for _, g := range groups {
		var rows []Row
		for _, row := range r.Rows {
			if row.Group == g.name {
				rows = append(rows, row)
			}
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(&b, "### %s\n\n%s\n\n", g.title, g.intro)
		switch g.name {
		case "codec":
			b.WriteString("| case | subject | ns/op | allocs/op | ratio | note |\n| --- | --- | ---: | ---: | ---: | --- |\n")
			for _, row := range rows {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", row.Case, subjectCell(row), formatFloat(row.NsPerOp), formatFloat(row.AllocsPerOp), ratioCell(row), mdEscape(row.Note))
			}
		default:
			b.WriteString("| case | subject | synced | events/s | ops/s | p50 | p99 | p99.9 | max | ratio | note |\n| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
			for _, row := range rows {
				p50, p99, p999, mx := "–", "–", "–", "–"
				if l := row.Latency; l != nil {
					p50, p99, p999, mx = formatNs(l.P50), formatNs(l.P99), formatNs(l.P999), formatNs(l.Max)
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
					row.Case, subjectCell(row), syncedCell(row.Synced), formatRate(row.EventsPerSec), formatRate(row.OpsPerSec),
					p50, p99, p999, mx, ratioCell(row), mdEscape(row.Note))
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("Ratios are speed relative to the limit row of the same case in the same run (events/s, or the inverse of p50 latency or ns/op, as the row says): 1.00x means as fast as the limit.\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("bench: writing Markdown report: %w", err)
	}
	return nil
}

func runKind(s Setup) string {
	k := "full"
	if s.Quick {
		k = "quick"
	}
	if s.Scale != 1 {
		k += fmt.Sprintf(", scale %g", s.Scale)
	}
	return k
}

func subjectCell(r Row) string {
	if r.Kind == KindLimit {
		return "*limit: " + mdEscape(r.Subject) + "*"
	}
	return "**" + mdEscape(r.Subject) + "**"
}

func syncedCell(s *bool) string {
	switch {
	case s == nil:
		return "n/a"
	case *s:
		return "yes"
	default:
		return "no"
	}
}

func ratioCell(r Row) string {
	if r.Limit == "" || r.Ratio == 0 || math.IsInf(r.Ratio, 0) || math.IsNaN(r.Ratio) {
		return ""
	}
	return fmt.Sprintf("%.2fx %s (%s)", r.Ratio, mdEscape(r.Limit), r.RatioBasis)
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// formatRate prints a rate with three significant digits and a K/M suffix.
func formatRate(v float64) string {
	switch {
	case v <= 0:
		return "–"
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.3gK", v/1e3)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func formatFloat(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// formatNs prints nanoseconds in the unit that keeps three significant
// digits readable.
func formatNs(ns int64) string {
	d := float64(ns)
	switch {
	case d >= 1e9:
		return fmt.Sprintf("%.3g s", d/1e9)
	case d >= 1e6:
		return fmt.Sprintf("%.3g ms", d/1e6)
	case d >= 1e3:
		return fmt.Sprintf("%.3g µs", d/1e3)
	default:
		return fmt.Sprintf("%d ns", ns)
	}
}

func formatBytes(n int64) string {
	if n <= 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
