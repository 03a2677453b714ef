package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/parquet-go/parquet-go"
)

// readParquet opens a Parquet export and returns the file and its rows,
// read with parquet-go's reader.
func readParquet(t *testing.T, path string) (*parquet.File, []parquetEvent) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatalf("%s is not a Parquet file: %v", path, err)
	}
	rows, err := parquet.Read[parquetEvent](f, st.Size())
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return pf, rows
}

// jsonLines decodes a JSON Lines export.
func jsonLines(t *testing.T, s string) []eventJSON {
	t.Helper()
	var out []eventJSON
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if l == "" {
			continue
		}
		var e eventJSON
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		out = append(out, e)
	}
	return out
}

// sameEvent reports how a Parquet row differs from the JSON Lines export of
// the same event ("" when it does not).
func sameEvent(p parquetEvent, e eventJSON) string {
	var diffs []string
	check := func(field string, ok bool, got, want any) {
		if !ok {
			b1, _ := json.Marshal(got)
			b2, _ := json.Marshal(want)
			diffs = append(diffs, field+": parquet "+string(b1)+", jsonl "+string(b2))
		}
	}
	check("position", p.Position == int64(e.Position), p.Position, e.Position)
	check("stream_type", p.StreamType == e.Stream.Type, p.StreamType, e.Stream.Type)
	check("stream_id", p.StreamID == e.Stream.ID, p.StreamID, e.Stream.ID)
	check("version", p.Version == int64(e.Version), p.Version, e.Version)
	check("name", p.Name == e.Name, p.Name, e.Name)
	check("schema", p.Schema == int64(e.Schema), p.Schema, e.Schema)
	pt := p.Time.UTC().Format(time.RFC3339Nano)
	check("time", pt == e.Time, pt, e.Time)
	sameMeta := len(p.Metadata) == len(e.Metadata)
	for k, v := range e.Metadata {
		if w, ok := p.Metadata[k]; !ok || w != v {
			sameMeta = false
		}
	}
	check("metadata", sameMeta, p.Metadata, e.Metadata)
	if string(e.Data) == "null" && e.DataError != "" {
		check("data", p.Data == nil, p.Data, nil)
		check("data_error", p.DataError != nil && *p.DataError == e.DataError, p.DataError, e.DataError)
	} else {
		check("data", p.Data != nil && *p.Data == string(e.Data), p.Data, string(e.Data))
		check("data_error", p.DataError == nil, p.DataError, nil)
	}
	check("raw", bytes.Equal(p.Raw, e.Raw), p.Raw, e.Raw)
	return strings.Join(diffs, "; ")
}

// checkParquetMatchesJSONL compares every row of a Parquet export with the
// JSON Lines export of the same range.
func checkParquetMatchesJSONL(t *testing.T, rows []parquetEvent, jsonl string) {
	t.Helper()
	want := jsonLines(t, jsonl)
	if len(rows) != len(want) {
		t.Fatalf("%d Parquet rows, %d JSON lines", len(rows), len(want))
	}
	for i := range rows {
		if d := sameEvent(rows[i], want[i]); d != "" {
			t.Errorf("row %d (position %d): %s", i, want[i].Position, d)
		}
	}
}

// TestParquetExport exports ranges of the fixture log from Pebble and
// PostgreSQL as Parquet and reads the files back: every row must carry
// what the JSON Lines export of the same range says, the file's schema is
// the golden one, and both backends write the same bytes.
func TestParquetExport(t *testing.T) {
	backends := []backend{filled(t, pebbleBackend(t)), filled(t, postgresBackend(t))}
	ranges := []struct {
		name     string
		args     []string
		n        int
		from, to string
	}{
		{"whole", nil, 6, "1", "6"},
		{"range", []string{"-from", "2", "-to", "3"}, 2, "2", "3"},
		{"past the head", []string{"-to", "60"}, 6, "1", "6"},
		{"empty", []string{"-from", "9"}, 0, "9", "8"},
	}
	files := map[string][]byte{}
	for _, b := range backends {
		for _, rg := range ranges {
			t.Run(b.name+"/"+rg.name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "log.parquet")
				r := b.run(t, append([]string{"export", "-format", "parquet", "-o", path}, rg.args...)...)
				if r.code != ExitOK || r.stdout != "" || r.stderr != "" {
					t.Fatalf("export: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
				}
				pf, rows := readParquet(t, path)
				golden(t, "parquet-schema.golden", pf.Schema().String()+"\n")
				if len(rows) != rg.n || pf.NumRows() != int64(rg.n) {
					t.Fatalf("%d rows (footer: %d), want %d", len(rows), pf.NumRows(), rg.n)
				}
				for key, want := range map[string]string{"cqrsgen.from": rg.from, "cqrsgen.to": rg.to} {
					if got, ok := pf.Lookup(key); !ok || got != want {
						t.Errorf("key/value metadata %s = %q (%v), want %q", key, got, ok, want)
					}
				}
				jl := b.run(t, append([]string{"export"}, rg.args...)...)
				if jl.code != ExitOK {
					t.Fatalf("jsonl export: %s", jl.stderr)
				}
				checkParquetMatchesJSONL(t, rows, jl.stdout)
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if prev, ok := files[rg.name]; ok && !bytes.Equal(prev, data) {
					t.Errorf("the %s export differs between backends holding the same log", rg.name)
				}
				files[rg.name] = data
			})
		}
	}
}

// TestParquetStdout writes the file to stdout, as in cqrsctl export -format
// parquet > log.parquet.
func TestParquetStdout(t *testing.T) {
	b := filled(t, pebbleBackend(t))
	r := b.run(t, "export", "-format", "parquet")
	if r.code != ExitOK {
		t.Fatal(r.stderr)
	}
	path := filepath.Join(t.TempDir(), "out.parquet")
	if err := os.WriteFile(path, []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	_, rows := readParquet(t, path)
	checkParquetMatchesJSONL(t, rows, b.run(t, "export").stdout)
}

// TestParquetRowGroups checks that row groups end at the row and byte
// limits, and that the rows read back are the same however they are cut.
func TestParquetRowGroups(t *testing.T) {
	b := filled(t, pebbleBackend(t))
	jsonl := b.run(t, "export").stdout
	tests := []struct {
		name   string
		lim    parquetLimits
		groups []int64
	}{
		{"two rows", parquetLimits{rows: 2, bytes: 1 << 30}, []int64{2, 2, 2}},
		{"four rows", parquetLimits{rows: 4, bytes: 1 << 30}, []int64{4, 2}},
		{"one byte", parquetLimits{rows: 1 << 20, bytes: 1}, []int64{1, 1, 1, 1, 1, 1}},
		{"defaults", parquetLimits{rows: parquetRowGroupRows, bytes: parquetRowGroupBytes}, []int64{6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log.parquet")
			store := b.open(t)
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			c := &command{env: Env{Stderr: &stderr, Terminal: true}}
			err = c.writeParquet(context.Background(), store, f, 1, 6, 6, tt.lim)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if cerr := store.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(stderr.String(), "\rexport [==============================] 100% 6/6 events\n") {
				t.Errorf("progress bar: %q", stderr.String())
			}
			pf, rows := readParquet(t, path)
			var groups []int64
			for _, g := range pf.RowGroups() {
				groups = append(groups, g.NumRows())
			}
			if !equalInts(groups, tt.groups) {
				t.Errorf("row groups of %v rows, want %v", groups, tt.groups)
			}
			checkParquetMatchesJSONL(t, rows, jsonl)
			checkPageBounds(t, pf)
		})
	}
}

// checkPageBounds checks the column indexes: positions keep their page
// bounds (readers skip pages with them), the body and metadata value
// columns have none (the writer would otherwise hold every page's largest
// and smallest body until the footer).
func checkPageBounds(t *testing.T, pf *parquet.File) {
	t.Helper()
	first := int64(1)
	for g, rg := range pf.RowGroups() {
		chunks := rg.ColumnChunks()
		ci, err := chunks[colPosition].ColumnIndex()
		if err != nil {
			t.Fatal(err)
		}
		if got := ci.MinValue(0).Int64(); got != first {
			t.Errorf("row group %d: position page minimum %d, want %d", g, got, first)
		}
		first += rg.NumRows()
		for _, col := range []int{colMetadataValue, colData, colDataError, colRaw} {
			ci, err := chunks[col].ColumnIndex()
			if err != nil {
				t.Fatal(err)
			}
			for p := range ci.NumPages() {
				if len(ci.MinValue(p).ByteArray()) != 0 || len(ci.MaxValue(p).ByteArray()) != 0 {
					t.Errorf("row group %d column %v page %d has bounds %q..%q", g, parquetSchema.Columns()[col], p, ci.MinValue(p), ci.MaxValue(p))
				}
			}
		}
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestParquetSchema pins the schema: analytics queries depend on it.
func TestParquetSchema(t *testing.T) {
	golden(t, "parquet-schema.golden", parquetSchema.String()+"\n")
	if n := len(parquetSchema.Columns()); n != numParquetColumns {
		t.Errorf("%d leaf columns, the row builder writes %d", n, numParquetColumns)
	}
	for i, want := range [][]string{
		colPosition: {"position"}, colStreamType: {"stream_type"}, colStreamID: {"stream_id"},
		colVersion: {"version"}, colName: {"name"}, colSchema: {"schema"}, colTime: {"time"},
		colMetadataKey: {"metadata", "key_value", "key"}, colMetadataValue: {"metadata", "key_value", "value"},
		colData: {"data"}, colDataError: {"data_error"}, colRaw: {"raw"},
	} {
		if got := parquetSchema.Columns()[i]; strings.Join(got, ".") != strings.Join(want, ".") {
			t.Errorf("column %d is %v, the row builder writes %v there", i, got, want)
		}
	}
}

// TestParquetRowEdges covers what the fixture does not: metadata order,
// bytes that are not UTF-8, a nil body and times and positions a Parquet
// file cannot hold.
func TestParquetRowEdges(t *testing.T) {
	base := runtime.Record{Stream: runtime.StreamID{Type: "account", ID: "a1"}, Version: 1, Position: 1, Name: "x", Schema: 2, Time: at, Data: []byte{0x01}}
	tests := []struct {
		name string
		edit func(*runtime.Record)
		err  string
	}{
		{"many metadata keys", func(r *runtime.Record) {
			r.Metadata = map[string]string{"z": "1", "a": "2", "m": "3", "b": ""}
		}, ""},
		{"not utf-8", func(r *runtime.Record) {
			r.Stream.ID = "a\xff\xfeb"
			r.Name = "n\xc3"
			r.Metadata = map[string]string{"k\x80": "v\xff"}
			r.Data = []byte{0xa2, 'x', 0xff}
		}, ""},
		{"nil body", func(r *runtime.Record) { r.Data = nil }, ""},
		{"earliest time", func(r *runtime.Record) { r.Time = time.Unix(0, math.MinInt64) }, ""},
		{"year 2300", func(r *runtime.Record) { r.Time = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }, "outside what a Parquet TIMESTAMP(NANOS) holds"},
		{"year 1600", func(r *runtime.Record) { r.Time = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC) }, "outside what a Parquet TIMESTAMP(NANOS) holds"},
		{"huge position", func(r *runtime.Record) { r.Position = math.MaxInt64 + 1 }, "beyond the int64 columns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := base
			tt.edit(&rec)
			row, _, err := parquetRow(nil, rec)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "account/") {
					t.Fatalf("err %v, want one naming the stream and mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			w := parquet.NewGenericWriter[parquetEvent](&buf, parquetSchema)
			if _, err := w.WriteRows([]parquet.Row{row}); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := parquet.Read[parquetEvent](bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil || len(got) != 1 {
				t.Fatalf("read back: %d rows, %v", len(got), err)
			}
			// What the JSON Lines export prints for the same record.
			var e eventJSON
			line, err := json.Marshal(toJSON(rec, true))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(line, &e); err != nil {
				t.Fatal(err)
			}
			if d := sameEvent(got[0], e); d != "" {
				t.Error(d)
			}
		})
	}
}

// TestValidUTF8 checks that Parquet strings get the text encoding/json
// prints: one U+FFFD per byte that is not valid UTF-8.
func TestValidUTF8(t *testing.T) {
	for _, s := range []string{"", "plain", "héllo ✓", "\xff", "a\xff\xfeb", "\xe2\x82", "\xc3(", "ok\xf0\x9f\x98", "\xed\xa0\x80"} {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var want string
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if got := validUTF8(s); got != want {
			t.Errorf("validUTF8(%q) = %q, encoding/json prints %q", s, got, want)
		}
	}
}

// TestParquetExportFailure: an export that fails part-way (a damaged
// record) exits 1 and leaves no file behind.
func TestParquetExportFailure(t *testing.T) {
	b := filled(t, pebbleBackend(t))
	db, err := pebbledb.Open(b.flags[1], &pebbledb.Options{Logger: silentPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte{'p', 0, 0, 0, 0, 0, 0, 0, 3}
	v, c, err := db.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(nil), v...)
	_ = c.Close()
	damaged[len(damaged)-6] ^= 0x01
	if err := db.Set(key, damaged, pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "log.parquet")
	r := b.run(t, "export", "-format", "parquet", "-o", path)
	if r.code != ExitFailed || !strings.Contains(r.stderr, "position 3") {
		t.Errorf("exit %d, stderr %q; want exit 1 naming position 3", r.code, r.stderr)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a failed export left %s behind (%v)", path, err)
	}
}
