package bench

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	limit := Row{Case: "append/batch=1/writers=8", Group: "append", Subject: "raw pebble", Kind: KindLimit, Synced: ptr(true),
		Batch: 1, Writers: 8, Ops: 1000, Events: 1000, Seconds: 0.5, EventsPerSec: 2000, OpsPerSec: 2000,
		Latency: &Percentiles{Count: 1000, P50: 250_000, P99: 1_500_000, P999: 3_000_000, Max: 4_000_000}}
	row := limit
	row.Subject, row.Kind, row.EventsPerSec = "pebble store", KindCqrsgen, 1500
	ratioRate(&row, limit)
	codecLimit := Row{Case: "codec/decode", Group: "codec", Subject: "reflection | msgpack", Kind: KindLimit, NsPerOp: 900, AllocsPerOp: 3}
	codec := Row{Case: "codec/decode", Group: "codec", Subject: "generated decode (registry.Decoder of AccountEvents, codec alone)", Kind: KindCqrsgen, NsPerOp: 300, AllocsPerOp: 1}
	ratioNs(&codec, codecLimit)
	rows := []Row{limit, row, codecLimit, codec}
	return &Report{
		Machine: Machine{CPUModel: "Test CPU", Cores: 2, GOMAXPROCS: 2, MemoryBytes: 8 << 30, OS: "linux", GoVersion: "go1.test",
			Filesystem: Filesystem{Type: "ext4", Device: "/dev/vda", MountPoint: "/"}},
		Setup: Setup{Command: "go run ./cmd/cqrsbench", Scale: 1, Stores: []string{"pebble"}, DataDir: "/tmp/x", Fsync: "on",
			Batches: []int{1, 100}, Writers: []int{1, 8}, EventBytes: 44,
			Started: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Finished: time.Date(2025, 1, 2, 3, 9, 5, 0, time.UTC)},
		Rows:    rows,
		Targets: evaluateTargets(rows),
	}
}

func TestJSONRoundTrip(t *testing.T) {
	rep := sampleReport()
	var buf bytes.Buffer
	if err := WriteJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rep) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, rep)
	}
	for _, key := range []string{`"p99_ns": 1500000`, `"ratio_basis": "events/s"`, `"cores": 2`, `"type": "ext4"`} {
		buf.Reset()
		_ = WriteJSON(&buf, rep)
		if !strings.Contains(buf.String(), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

func TestMarkdown(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMarkdown(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	lines := strings.Split(md, "\n")
	find := func(sub string) int {
		for i, l := range lines {
			if strings.Contains(l, sub) {
				return i
			}
		}
		t.Fatalf("markdown lacks %q:\n%s", sub, md)
		return -1
	}
	limitLine, rowLine := find("*limit: raw pebble*"), find("**pebble store**")
	if rowLine != limitLine+1 {
		t.Errorf("cqrsgen row on line %d, its limit on %d: want them adjacent", rowLine, limitLine)
	}
	if !strings.Contains(lines[rowLine], "0.75x raw pebble (events/s)") {
		t.Errorf("row lacks its ratio: %s", lines[rowLine])
	}
	if !strings.Contains(lines[rowLine], "| 250 µs | 1.5 ms | 3 ms | 4 ms |") {
		t.Errorf("row lacks its percentiles: %s", lines[rowLine])
	}
	if !strings.Contains(lines[find("**generated decode (registry.Decoder of AccountEvents, codec alone)**")], "3.00x reflection \\| msgpack (ns/op)") {
		t.Errorf("codec row lacks its escaped ratio: %s", lines[find("**generated decode (registry.Decoder of AccountEvents, codec alone)**")])
	}
	for _, want := range []string{"| CPU | Test CPU |", "| memory | 8.0 GiB |", "on ext4", "go1.test", "2025-01-02T03:04:05Z (full run, 300 s)",
		"| Pebble store, synced 1-event appends, 8 writers | ≥ 0.9x raw pebble | 0.75x", "| generated decode vs reflection msgpack, codec alone | ≥ 3.0x | 3.00x"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	// Every table row has as many cells as its header.
	cols := 0
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "| case"):
			cols = strings.Count(strings.ReplaceAll(l, `\|`, ""), "|")
		case strings.HasPrefix(l, "| append") || strings.HasPrefix(l, "| codec"):
			if n := strings.Count(strings.ReplaceAll(l, `\|`, ""), "|"); n != cols {
				t.Errorf("row has %d separators, header %d: %s", n, cols, l)
			}
		}
	}
}

func TestRowLine(t *testing.T) {
	rep := sampleReport()
	line := RowLine(rep.Rows[1])
	for _, want := range []string{"case=append/batch=1/writers=8", `subject="pebble store"`, "kind=cqrsgen", "synced=true",
		"events_per_sec=1500", "p50_ns=250000", "p999_ns=3000000", "ratio=0.750", `limit="raw pebble"`} {
		if !strings.Contains(line, want) {
			t.Errorf("RowLine = %s, lacks %s", line, want)
		}
	}
	if strings.Contains(line, "\n") {
		t.Errorf("RowLine holds a newline: %q", line)
	}
}

func TestFilesystemOf(t *testing.T) {
	dir := t.TempDir()
	mounts := filepath.Join(dir, "mounts")
	sub := filepath.Join(dir, "a b")
	if err := os.MkdirAll(filepath.Join(sub, "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(sub)
	if err != nil {
		t.Fatal(err)
	}
	escaped := strings.ReplaceAll(real, " ", `\040`)
	content := "/dev/vda / ext4 rw 0 0\n" +
		"tmpfs " + escaped + " tmpfs rw 0 0\n" +
		"/dev/vdb " + escaped + "x ext4 rw 0 0\n"
	if err := os.WriteFile(mounts, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path, typ string
		inMemory  bool
	}{
		{filepath.Join(sub, "c"), "tmpfs", true},
		{sub, "tmpfs", true},
		{dir, "ext4", false},
	}
	for _, c := range cases {
		fs, err := FilesystemOf(mounts, c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fs.Type != c.typ || fs.InMemory() != c.inMemory {
			t.Errorf("FilesystemOf(%s) = %+v, want type %s (in memory %t)", c.path, fs, c.typ, c.inMemory)
		}
	}
}

func TestRunRefusesTmpfsAndBadInput(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown store", Config{Stores: []string{"rocks"}, Dir: t.TempDir()}, "unknown store"},
		{"postgres without dsn", Config{Stores: []string{"postgres"}, Dir: t.TempDir()}, "-postgres-dsn"},
	}
	if fs, err := FilesystemOf("/proc/mounts", "/dev/shm"); err == nil && fs.InMemory() {
		shm, err := os.MkdirTemp("/dev/shm", "cqrsbench-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(shm) })
		cases = append(cases, struct {
			name string
			cfg  Config
			want string
		}{"pebble on tmpfs", Config{Stores: []string{"pebble"}, Dir: shm}, "in memory"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Run(t.Context(), c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Run error = %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func TestChartsAreWellFormedSVG(t *testing.T) {
	var rows []Row
	for _, w := range appendWriters {
		for _, subj := range []struct {
			name, kind string
			rate       float64
		}{{"raw pebble", KindLimit, 1000 * float64(w)}, {"pebble store", KindCqrsgen, 800 * float64(w)}} {
			rows = append(rows, Row{Case: "append", Group: "append", Subject: subj.name, Kind: subj.kind, Batch: 1, Writers: w, EventsPerSec: subj.rate})
		}
	}
	rows = append(rows, Row{Case: "load/events=100/no-snapshot", Group: "load", Subject: "memory <store>", Kind: KindCqrsgen, Batch: 100,
		Latency: &Percentiles{P50: 5_000, P99: 40_000, P999: 90_000, Max: 100_000}})
	charts := Charts(rows)
	for _, name := range []string{"append-batch1.svg", "load-p50.svg", "load-p99.svg", "load-p999.svg"} {
		c, ok := charts[name]
		if !ok {
			t.Fatalf("no chart %s among %v", name, charts)
		}
		var buf bytes.Buffer
		if err := c.WriteSVG(&buf); err != nil {
			t.Fatal(err)
		}
		dec := xml.NewDecoder(&buf)
		polylines, texts := 0, ""
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s is not well-formed XML: %v", name, err)
			}
			switch tok := tok.(type) {
			case xml.StartElement:
				if tok.Name.Local == "polyline" {
					polylines++
				}
			case xml.CharData:
				texts += string(tok) + "\n"
			}
		}
		want := len(c.Series)
		if name != "append-batch1.svg" {
			want = 0 // one point per series: no line
		}
		if polylines != want {
			t.Errorf("%s: %d polylines, want %d", name, polylines, want)
		}
		for _, s := range c.Series {
			if !strings.Contains(texts, s.Name) {
				t.Errorf("%s: legend lacks %q", name, s.Name)
			}
		}
	}
	if _, ok := charts["append-batch100.svg"]; ok {
		t.Errorf("chart for batch 100 without rows")
	}
}

// TestReadTargets checks issue 18's targets: the repository Load's ratio
// to raw is its own when its row is set beside the raw limit, and its
// ratio to ReadStream times ReadStream's to raw when beside ReadStream
// (reports written before the Load rows were set beside the limit).
func TestReadTargets(t *testing.T) {
	lat := &Percentiles{P50: 1000, P99: 2000, P999: 3000, Max: 4000}
	rows := []Row{
		{Case: "load/events=100/no-snapshot", Subject: "pebble store (ReadStream, no decoding)", Limit: "raw", Ratio: 0.5, Latency: lat},
		{Case: "load/events=100/no-snapshot", Subject: "pebble repository Load (generated decode + apply)", Limit: "pebble store", Ratio: 0.8, Latency: lat},
		{Case: "load/events=1000/no-snapshot", Subject: "pebble store (ReadStream, no decoding)", Limit: "raw pebble (iterate index + next-or-seek records)", Ratio: 0.5, Latency: lat},
		{Case: "load/events=1000/no-snapshot", Subject: "pebble repository Load (generated decode + apply)", Limit: "raw pebble (iterate index + next-or-seek records)", Ratio: 0.85, Latency: lat},
		{Case: "read/all", Subject: "pebble store (ReadAll)", Limit: "raw pebble (scan)", Ratio: 0.75, EventsPerSec: 3e6},
		{Case: "read/subscribe", Subject: "pebble store (runtime.Subscribe catch-up)", Limit: "pebble store (ReadAll)", Ratio: 0.85, EventsPerSec: 2.5e6},
	}
	got := map[string]Target{}
	for _, tg := range readTargets(rows) {
		got[tg.Name] = tg
	}
	for _, want := range []struct {
		name  string
		value float64
		met   bool
	}{
		{"Pebble ReadStream, 100 events", 0.5, false},
		{"Pebble repository Load, 100 events", 0.4, false},
		{"Pebble repository Load, 1000 events", 0.85, true},
		{"Pebble ReadAll", 0.75, true},
		{"pebble Subscribe catch-up", 0.85, false},
	} {
		tg, ok := got[want.name]
		if !ok {
			t.Errorf("no target %q in %v", want.name, got)
			continue
		}
		if math.Abs(tg.Value-want.value) > 1e-9 || tg.Met != want.met {
			t.Errorf("%s: value %v met %v, want %v %v", want.name, tg.Value, tg.Met, want.value, want.met)
		}
	}
	if len(got) != 6 {
		t.Errorf("%d targets, want 6: %v", len(got), got)
	}
}
