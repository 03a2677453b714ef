package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/backends/postgres"
	"github.com/cqrsgen/cqrsgen/backends/postgres/pgtest"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"
	"github.com/vmihailenco/msgpack/v5"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestMain(m *testing.M) { pgtest.Main(m) }

// at is the fixed clock of the fixture: every event's Time is set from it.
var at = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

type opened struct {
	Owner string
	At    time.Time
}

type deposited struct {
	Amount    int64
	Reference string
}

type odd struct {
	Blob   []byte
	Ratio  float64
	Small  float32
	NaN    float64
	Tags   []string
	Nested map[string][]int
	Big    uint64
	Neg    int8
	Nil    *int
}

func mp(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fill writes the fixture through the runtime.Store contract, so both
// backends hold the same log. Stream types and ids have equal lengths so
// that both backends list streams in the same order.
func fill(t testing.TB, s runtime.Store) {
	t.Helper()
	ctx := context.Background()
	a1 := runtime.StreamID{Type: "account", ID: "a1"}
	a2 := runtime.StreamID{Type: "account", ID: "a2"}
	i1 := runtime.StreamID{Type: "invoice", ID: "i1"}
	ev := func(name string, n int, data []byte, md map[string]string) runtime.EventData {
		// A fixed id (a UUIDv7 of the fixture's time), so outputs match the goldens.
		id := runtime.EventID{0x01, 0x8f, 0x4c, 0x6e, 0x3b, 0x1b, 0x70, 0x00, 0x80, 0, 0, 0, 0, 0, 0, byte(n)}
		return runtime.EventData{ID: id, Name: name, Schema: 1, Time: at.Add(time.Duration(n) * time.Second), Metadata: md, Data: data}
	}
	apps := []runtime.AppendRequest{
		{Stream: a1, Expected: runtime.NoStream, Events: []runtime.EventData{
			ev("account.opened", 1, mp(t, opened{Owner: "Alice", At: at}), map[string]string{"user": "ops", "correlation": "c-1"}),
			ev("account.deposited", 2, mp(t, deposited{Amount: 10000, Reference: "salary"}), nil),
		}},
		{Stream: i1, Expected: runtime.NoStream, IdempotencyKey: "req-1", Events: []runtime.EventData{
			ev("invoice.odd", 3, mp(t, odd{Blob: []byte{0, 1, 2, 255}, Ratio: 0.25, Small: 1.5, NaN: math.NaN(), Tags: []string{"x", "y"},
				Nested: map[string][]int{"k": {1, 2}}, Big: math.MaxUint64, Neg: -5}), nil),
		}},
		{Stream: a2, Expected: runtime.NoStream, Events: []runtime.EventData{
			ev("account.opened", 4, mp(t, opened{Owner: "Bob <&>", At: at}), nil),
		}},
		{Stream: a1, Expected: 2, Events: []runtime.EventData{
			ev("account.deposited", 5, mp(t, deposited{Amount: -1, Reference: "fee"}), nil),
			ev("account.garbled", 6, []byte{0x82, 0xa1, 'x'}, nil),
		}},
	}
	for _, r := range apps {
		if _, err := s.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveSnapshot(ctx, runtime.Snapshot{Stream: a1, Version: 2, Schema: "h", Data: []byte{0x80}, Time: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "balances", 3); err != nil {
		t.Fatal(err)
	}
}

// backend is a store under test: the flags that name it and a way to open
// it directly.
type backend struct {
	name  string
	flags []string
	open  func(t testing.TB) runtime.Store // caller closes
}

func pebbleBackend(t testing.TB) backend {
	dir := filepath.Join(t.TempDir(), "store")
	return backend{name: "pebble", flags: []string{"-pebble", dir}, open: func(t testing.TB) runtime.Store {
		s, err := pebble.Open(dir, pebble.WithLogger(discard))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}}
}

func postgresBackend(t testing.TB) backend {
	schema := pgtest.Schema(t)
	return backend{name: "postgres", flags: []string{"-postgres", pgtest.DSN(), "-schema", schema}, open: func(t testing.TB) runtime.Store {
		s, err := postgres.Open(context.Background(), pgtest.DSN(), postgres.WithSchema(schema))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}}
}

func filled(t testing.TB, b backend) backend {
	s := b.open(t)
	fill(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return b
}

// result is what one Run printed.
type result struct {
	code           int
	stdout, stderr string
}

func runCtl(ctx context.Context, args []string, stdin string, terminal bool) result {
	var out, errb bytes.Buffer
	code := Run(ctx, args, Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Terminal: terminal})
	return result{code, out.String(), errb.String()}
}

func (b backend) run(t testing.TB, args ...string) result {
	t.Helper()
	return runCtl(context.Background(), append(append([]string{}, b.flags...), args...), "", false)
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t testing.TB, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// normalizeStats drops what depends on the backend and the machine.
func normalizeStats(t testing.TB, s string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("stats output is not JSON: %v\n%s", err, s)
	}
	for _, k := range []string{"store", "disk_bytes", "extra"} {
		if _, ok := m[k]; !ok {
			t.Errorf("stats lacks %q", k)
		}
		delete(m, k)
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return string(b) + "\n"
}

// TestCommands runs every read command against both backends holding the
// same log; their outputs must match the same goldens.
func TestCommands(t *testing.T) {
	backends := []backend{filled(t, pebbleBackend(t)), filled(t, postgresBackend(t))}
	tests := []struct {
		golden string
		args   []string
		norm   func(testing.TB, string) string
	}{
		{"stats.golden", []string{"stats"}, normalizeStats},
		{"streams.golden", []string{"streams"}, nil},
		{"streams-type.golden", []string{"streams", "-type", "account"}, nil},
		{"streams-page1.golden", []string{"streams", "-limit", "2"}, nil},
		{"streams-page2.golden", []string{"streams", "-after", "account/a2", "-limit", "2"}, nil},
		{"streams-type-after.golden", []string{"streams", "-type", "account", "-after", "a1"}, nil},
		{"events-a1.golden", []string{"events", "account", "a1"}, nil},
		{"events-a1-after-raw.golden", []string{"events", "-after", "2", "-raw", "account", "a1"}, nil},
		{"events-i1.golden", []string{"events", "invoice", "i1", "-limit", "1"}, nil},
		{"export.golden", []string{"export"}, nil},
		{"export-range.golden", []string{"export", "-from", "2", "-to", "3"}, nil},
		{"export-empty-range.golden", []string{"export", "-from", "9"}, nil},
		{"tail-from-start.golden", []string{"tail", "-from-start", "-limit", "3"}, nil},
	}
	for _, b := range backends {
		for _, tt := range tests {
			t.Run(b.name+"/"+strings.TrimSuffix(tt.golden, ".golden"), func(t *testing.T) {
				r := b.run(t, tt.args...)
				if r.code != ExitOK {
					t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
				}
				out := r.stdout
				if tt.norm != nil {
					out = tt.norm(t, out)
				}
				golden(t, tt.golden, out)
			})
		}
		t.Run(b.name+"/verify", func(t *testing.T) {
			// The store is sound but for one body that is not MessagePack
			// (the fixture's account.garbled): verify finds exactly that.
			r := b.run(t, "verify")
			if r.code != ExitFailed {
				t.Fatalf("exit %d on a store with an undecodable body:\n%s%s", r.code, r.stdout, r.stderr)
			}
			golden(t, "verify-"+b.name+".golden", r.stdout)
			if r.stderr != garbledReport {
				t.Errorf("stderr %q, want %q", r.stderr, garbledReport)
			}
		})
	}
}

// garbledReport is verify's stderr on the fixture: its one problem is the
// body of account.garbled, which is not MessagePack.
const garbledReport = `verify: body stream account/"a1" version 4 position 6: event account.garbled@1: at byte 0: wire: unexpected end of data: map of 2 elements, 2 bytes left
verify: 1 problems found
`

func TestVerifyDamagedPebble(t *testing.T) {
	b := filled(t, pebbleBackend(t))
	dir := b.flags[1]
	db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: silentPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte in the body of the event at position 2 …
	key := []byte{'p', 0, 0, 0, 0, 0, 0, 0, 2}
	v, c, err := db.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(nil), v...)
	_ = c.Close()
	damaged[len(damaged)-6] ^= 0x01
	// … and delete the stream index entry of account/"a2" version 1.
	idx := append([]byte{'s', 7}, "account"...)
	idx = append(idx, 2, 'a', '2', 0, 0, 0, 0, 0, 0, 0, 1)
	if err := db.Set(key, damaged, pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	if _, c, err := db.Get(idx); err != nil {
		t.Fatalf("the index key the test deletes does not exist: %v", err)
	} else {
		_ = c.Close()
	}
	if err := db.Delete(idx, pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	r := b.run(t, "verify")
	if r.code != ExitFailed {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, ExitFailed, r.stdout, r.stderr)
	}
	golden(t, "verify-damaged-pebble.golden", r.stdout)
	for _, want := range []string{
		`verify: record stream account/"a1" version 2 position 2`, "checksum mismatch",
		`verify: index-missing stream account/"a2" version 1 position 4`,
		`verify: counters`,
		"problems found",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	// Reading the damaged event fails with a typed error, not garbage.
	r = b.run(t, "events", "account", "a1")
	if r.code != ExitFailed || !strings.Contains(r.stderr, "cannot decode envelope") {
		t.Errorf("events on a damaged record: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestVerifyDamagedPostgres(t *testing.T) {
	b := filled(t, postgresBackend(t))
	S := pgx.Identifier{b.flags[3]}.Sanitize()
	for _, q := range []string{
		`UPDATE ` + S + `.events SET metadata = '\x07'::bytea WHERE (commit_id, off) = (SELECT commit_id, off FROM ` + S + `.event_log WHERE position = 2)`,
		`DELETE FROM ` + S + `.events WHERE (commit_id, off) = (SELECT commit_id, off FROM ` + S + `.event_log WHERE position = 4)`,
		`UPDATE ` + S + `.checkpoints SET position = 60`,
	} {
		if err := pgtest.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	r := b.run(t, "verify")
	if r.code != ExitFailed {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, ExitFailed, r.stdout, r.stderr)
	}
	golden(t, "verify-damaged-postgres.golden", r.stdout)
	for _, want := range []string{
		`verify: record stream account/"a1" version 2 position 2`,
		`verify: position-gap position 5 table events: position 4 is missing`,
		`verify: index-ahead stream account/"a2"`,
		`verify: checkpoint`,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

// TestExportImport round-trips the log between backends: export, import
// into an empty store of the other kind, export again: same bytes.
func TestExportImport(t *testing.T) {
	pairs := []struct {
		name     string
		from, to func(testing.TB) backend
	}{
		{"pebble to postgres", pebbleBackend, postgresBackend},
		{"postgres to pebble", postgresBackend, pebbleBackend},
		{"pebble to pebble", pebbleBackend, pebbleBackend},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			src := filled(t, p.from(t))
			dst := p.to(t)
			file := filepath.Join(t.TempDir(), "log.jsonl")
			if r := src.run(t, "export", "-o", file); r.code != ExitOK || r.stdout != "" {
				t.Fatalf("export: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
			}
			exported, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "export.golden", string(exported))
			r := dst.run(t, "import", file)
			if r.code != ExitOK || !strings.Contains(r.stderr, "import: 6 events") {
				t.Fatalf("import: exit %d, stderr %s", r.code, r.stderr)
			}
			again := dst.run(t, "export")
			if again.stdout != string(exported) {
				t.Errorf("re-export differs:\n%s\nwant\n%s", again.stdout, exported)
			}
			if v := dst.run(t, "verify"); v.stderr != garbledReport {
				t.Errorf("verify after import: %s%s", v.stdout, v.stderr)
			}
			// A second import is refused: the store is no longer empty.
			r = dst.run(t, "import", file)
			if r.code != ExitFailed || !strings.Contains(r.stderr, "not empty") {
				t.Errorf("import into a non-empty store: exit %d, stderr %s", r.code, r.stderr)
			}
		})
	}
}

func TestImportRefusesBadInput(t *testing.T) {
	src := filled(t, pebbleBackend(t))
	full := src.run(t, "export").stdout
	lines := strings.SplitAfter(strings.TrimSpace(full), "\n")
	ranged := src.run(t, "export", "-from", "2").stdout
	tests := []struct {
		name, input, want string
	}{
		{"range export", ranged, "starts at position 2"},
		{"gap", lines[0] + lines[2], "position 3 follows position 1"},
		{"not json", "{nope\n", "line 1"},
		{"no raw bytes", strings.Replace(lines[0], `"raw":`, `"raw_":`, 1), `no "raw" bytes`},
		{"bad time", strings.Replace(lines[0], `"time":"2024`, `"time":"x2024`, 1), "time"},
		{"bad event id", strings.Replace(lines[0], `"event_id":"018f`, `"event_id":"x18f`, 1), "event id"},
		{"version jump", lines[0] + strings.Replace(lines[1], `"version":2`, `"version":3`, 1), "version 3 where version 2 was expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := pebbleBackend(t)
			r := runCtl(context.Background(), append(dst.flags, "import"), tt.input, false)
			if r.code != ExitFailed || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q, want it to mention %q", r.code, r.stderr, tt.want)
			}
		})
	}
}

func TestProgressOnTerminal(t *testing.T) {
	b := filled(t, pebbleBackend(t))
	r := runCtl(context.Background(), append(b.flags, "export", "-o", filepath.Join(t.TempDir(), "x.jsonl")), "", true)
	if r.code != ExitOK {
		t.Fatal(r.stderr)
	}
	if !strings.Contains(r.stderr, "\rexport [==============================] 100% 6/6 events\n") {
		t.Errorf("no progress bar on a terminal: %q", r.stderr)
	}
	r = runCtl(context.Background(), append(b.flags, "export", "-o", filepath.Join(t.TempDir(), "y.jsonl")), "", false)
	if r.stderr != "" {
		t.Errorf("progress drawn on a non-terminal: %q", r.stderr)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) lines() int { return strings.Count(s.String(), "\n") }

// waitLines waits (without a wall-clock limit of its own: the test's
// deadline bounds it) until buf holds n lines.
func waitLines(t *testing.T, buf *syncBuffer, n int) {
	t.Helper()
	for buf.lines() < n {
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTailLive follows a store while another writer appends, from the
// current head, until interrupted.
func TestTailLive(t *testing.T) {
	for _, mk := range []func(testing.TB) backend{pebbleBackend, postgresBackend} {
		b := filled(t, mk(t))
		t.Run(b.name, func(t *testing.T) {
			store := b.open(t)
			defer store.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out syncBuffer
			done := make(chan error, 1)
			started := make(chan uint64, 1)
			c := &command{env: Env{Stdout: &out, Stderr: &out}, following: func(p uint64) { started <- p }}
			go func() { done <- c.follow(ctx, store, -1, 0, false) }()
			// Append only once tail has read the head: appending earlier
			// would move the head past the new events.
			if p := <-started; p != 6 {
				t.Fatalf("tail starts after position %d, want the head 6", p)
			}
			// Events appended after tail started are printed, in order,
			// the existing six are not.
			st := runtime.StreamID{Type: "account", ID: "a3"}
			for i := range 3 {
				if _, err := store.Append(context.Background(), runtime.AppendRequest{Stream: st, Expected: uint64(i),
					Events: []runtime.EventData{{ID: runtime.EventID{0x01, 0x8f, 0x4c, 0x6e, 0x3b, 0x1b, 0x70, 0x00, 0x80, 0, 0, 0, 0, 0, 1, byte(i)},
						Name: "account.deposited", Schema: 1, Time: at, Data: mp(t, deposited{Amount: int64(i)})}}}); err != nil {
					t.Fatal(err)
				}
			}
			waitLines(t, &out, 3)
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("interrupted tail: %v", err)
			}
			golden(t, "tail-live.golden", out.String())
		})
	}
}

// TestTailRunInterrupted runs the whole tail command on PostgreSQL (which
// allows a second opener) and interrupts it.
func TestTailRunInterrupted(t *testing.T) {
	b := filled(t, postgresBackend(t))
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, append(append([]string{}, b.flags...), "tail", "-after", "5"), Env{Stdout: &out, Stderr: &errb})
	}()
	waitLines(t, &out, 1)
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d after an interrupt, stderr %s", code, errb.String())
	}
	var e eventJSON
	if err := json.Unmarshal([]byte(out.String()), &e); err != nil || e.Position != 6 {
		t.Errorf("tail -after 5 printed %q (%v)", out.String(), err)
	}
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		want string // in stdout+stderr
	}{
		{"no command", []string{"-pebble", dir}, ExitUsage, "no command"},
		{"unknown command", []string{"-pebble", dir, "frob"}, ExitUsage, `unknown command "frob"`},
		{"no store", []string{"stats"}, ExitUsage, "name the store"},
		{"two stores", []string{"-pebble", dir, "-postgres", "x", "stats"}, ExitUsage, "not both"},
		{"events arity", []string{"-pebble", dir, "events", "account"}, ExitUsage, "STREAM-TYPE STREAM-ID"},
		{"bad flag", []string{"-pebble", dir, "streams", "-nope"}, ExitUsage, "flag provided but not defined"},
		{"bad after", []string{"-pebble", dir, "streams", "-after", "noslash"}, ExitUsage, "want TYPE/ID"},
		{"stray argument", []string{"-pebble", dir, "stats", "extra"}, ExitUsage, "takes no arguments"},
		{"tail both starts", []string{"-pebble", dir, "tail", "-after", "1", "-from-start"}, ExitUsage, "not both"},
		{"export bad range", []string{"-pebble", dir, "export", "-from", "5", "-to", "2"}, ExitUsage, "before"},
		{"export bad format", []string{"-pebble", dir, "export", "-format", "csv"}, ExitUsage, "want jsonl or parquet"},
		{"parquet on a missing store", []string{"-pebble", filepath.Join(dir, "nope"), "export", "-format", "parquet"}, ExitFailed, "no such file"},
		{"missing store dir", []string{"-pebble", filepath.Join(dir, "nope"), "stats"}, ExitFailed, "no such file"},
		{"help", []string{"-h"}, ExitOK, "usage: cqrsctl"},
		{"help command", []string{"help"}, ExitOK, "Commands:"},
		{"command help", []string{"events", "-h"}, ExitOK, "events [-after V] [-limit N] [-raw] TYPE ID"},
		{"command help lists its flags", []string{"-pebble", dir, "events", "-h"}, ExitOK, "-raw"},
		{"help names a command", []string{"help", "tail"}, ExitOK, "-from-start"},
		{"help of verify", []string{"verify", "-help"}, ExitOK, "event body"},
		{"misspelt command", []string{"-pebble", dir, "evnts"}, ExitUsage, `did you mean "events"?`},
		{"tail does not follow pebble", []string{"-pebble", dir, "tail"}, ExitUsage, "needs -after P or -from-start"},
		{"version", []string{"-version"}, ExitOK, "cqrsctl "},
		{"store flags after the command", []string{"stats", "-pebble", filepath.Join(dir, "nope")}, ExitFailed, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCtl(context.Background(), tt.args, "", false)
			if r.code != tt.code || !strings.Contains(r.stdout+r.stderr, tt.want) {
				t.Errorf("exit %d, output %q; want exit %d mentioning %q", r.code, r.stdout+r.stderr, tt.code, tt.want)
			}
			// A mistake is one line on stderr, not the whole usage; help
			// goes to stdout.
			switch tt.code {
			case ExitUsage:
				if strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
					t.Errorf("usage error is not one line on stderr: stdout %q, stderr %q", r.stdout, r.stderr)
				}
			case ExitOK:
				if r.stderr != "" {
					t.Errorf("help or version wrote to stderr: %q", r.stderr)
				}
			}
		})
	}
}

// TestMissingStreams checks that a mistyped stream type or id is an error
// (exit 1) naming what the store holds, not an empty success.
func TestMissingStreams(t *testing.T) {
	for _, b := range []backend{filled(t, pebbleBackend(t)), filled(t, postgresBackend(t))} {
		tests := []struct {
			args []string
			want string
		}{
			{[]string{"events", "acount", "a1"}, `cqrsctl: no stream of type "acount" (the store holds account, invoice)` + "\n"},
			{[]string{"events", "account", "zz"}, `cqrsctl: no stream account/"zz": the store has streams of type "account", but none with that id` + "\n"},
			{[]string{"streams", "-type", "acount"}, `cqrsctl: no stream of type "acount" (the store holds account, invoice)` + "\n"},
		}
		for _, tt := range tests {
			t.Run(b.name+"/"+strings.Join(tt.args, " "), func(t *testing.T) {
				r := b.run(t, tt.args...)
				if r.code != ExitFailed || r.stdout != "" || r.stderr != tt.want {
					t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and %q", r.code, r.stdout, r.stderr, tt.want)
				}
			})
		}
		// Past the end of an existing stream is not an error.
		if r := b.run(t, "events", "-after", "9", "account", "a1"); r.code != ExitOK || r.stdout != "" {
			t.Errorf("%s: events after the last version: exit %d, %q %q", b.name, r.code, r.stdout, r.stderr)
		}
	}
}

// TestTailPebbleReleasesStore checks that tail on a Pebble directory
// prints up to the head and exits, so the application can open the store
// again (a following tail held its lock until interrupted).
func TestTailPebbleReleasesStore(t *testing.T) {
	b := filled(t, pebbleBackend(t))
	r := b.run(t, "tail", "-after", "4")
	if r.code != ExitOK || strings.Count(r.stdout, "\n") != 2 {
		t.Fatalf("tail -after 4: exit %d, stdout %q, stderr %q; want the 2 events up to the head", r.code, r.stdout, r.stderr)
	}
	s := b.open(t) // fails if tail still held the directory
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestImportParquet imports a Parquet export, from a file and from stdin:
// import detects the format, and the result re-exports to the same log.
func TestImportParquet(t *testing.T) {
	src := filled(t, pebbleBackend(t))
	file := filepath.Join(t.TempDir(), "log.parquet")
	if r := src.run(t, "export", "-format", "parquet", "-o", file); r.code != ExitOK {
		t.Fatalf("export: %s", r.stderr)
	}
	want := src.run(t, "export").stdout
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, viaStdin := range []bool{false, true} {
		dst := pebbleBackend(t)
		args, stdin := append(append([]string{}, dst.flags...), "import", file), ""
		if viaStdin {
			args, stdin = append(append([]string{}, dst.flags...), "import"), string(data)
		}
		r := runCtl(context.Background(), args, stdin, false)
		if r.code != ExitOK || r.stderr != "import: 6 events\n" {
			t.Fatalf("import (stdin %v): exit %d, stderr %q", viaStdin, r.code, r.stderr)
		}
		if got := dst.run(t, "export").stdout; got != want {
			t.Errorf("stdin %v: re-export differs:\n%s\nwant\n%s", viaStdin, got, want)
		}
	}
}

// TestImportWithoutEventIDs imports exports made before event ids
// existed, JSON Lines without "event_id" and Parquet without the event_id
// column: every event gets a new, distinct id, the rest is kept.
func TestImportWithoutEventIDs(t *testing.T) {
	src := filled(t, pebbleBackend(t))
	full := src.run(t, "export").stdout
	noIDs := regexp.MustCompile(`"event_id":"[^"]*",`).ReplaceAllString(full, "")
	// Parquet as written before: every column but event_id.
	type oldParquetEvent struct {
		Position   int64             `parquet:"position"`
		StreamType string            `parquet:"stream_type,dict"`
		StreamID   string            `parquet:"stream_id"`
		Version    int64             `parquet:"version"`
		Name       string            `parquet:"name,dict"`
		Schema     int64             `parquet:"schema"`
		Time       time.Time         `parquet:"time,timestamp(nanosecond:utc)"`
		Metadata   map[string]string `parquet:"metadata"`
		Data       *string           `parquet:"data,optional,json"`
		DataError  *string           `parquet:"data_error,optional"`
		Raw        []byte            `parquet:"raw"`
	}
	var rows []oldParquetEvent
	for _, line := range strings.Split(strings.TrimSpace(full), "\n") {
		var e eventJSON
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		tm, err := time.Parse(time.RFC3339Nano, e.Time)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, oldParquetEvent{Position: int64(e.Position), StreamType: e.Stream.Type, StreamID: e.Stream.ID,
			Version: int64(e.Version), Name: e.Name, Schema: int64(e.Schema), Time: tm, Metadata: e.Metadata, Raw: e.Raw})
	}
	var pq bytes.Buffer
	w := parquet.NewGenericWriter[oldParquetEvent](&pq)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, input string }{{"jsonl", noIDs}, {"parquet", pq.String()}} {
		t.Run(tc.name, func(t *testing.T) {
			dst := pebbleBackend(t)
			if r := runCtl(context.Background(), append(dst.flags, "import"), tc.input, false); r.code != ExitOK {
				t.Fatalf("import: exit %d, stderr %q", r.code, r.stderr)
			}
			got := dst.run(t, "export").stdout
			ids := regexp.MustCompile(`"event_id":"([^"]*)",`).FindAllStringSubmatch(got, -1)
			seen := map[string]bool{}
			for _, m := range ids {
				if _, err := runtime.ParseEventID(m[1]); err != nil || seen[m[1]] || strings.HasPrefix(m[1], "018f4c6e") {
					t.Errorf("imported id %q: parse error %v, seen before %v, or the exporter's", m[1], err, seen[m[1]])
				}
				seen[m[1]] = true
			}
			if len(ids) != 6 {
				t.Errorf("%d events with ids after import, want 6:\n%s", len(ids), got)
			}
			if rest := regexp.MustCompile(`"event_id":"[^"]*",`).ReplaceAllString(got, ""); rest != noIDs {
				t.Errorf("import changed more than the ids:\n%s\nwant\n%s", rest, noIDs)
			}
		})
	}
}

// TestImportFailureLeavesNoStore checks that a failed import into a
// directory it created removes the directory again, and that an input
// that is not an export is refused before any store is created.
func TestImportFailureLeavesNoStore(t *testing.T) {
	src := filled(t, pebbleBackend(t))
	lines := strings.SplitAfter(src.run(t, "export").stdout, "\n")
	tests := []struct{ name, input, want string }{
		{"gap", lines[0] + lines[2], "position 3 follows position 1"},
		{"truncated parquet", "PAR1 and then nothing", "cannot be read as one"},
		{"not json", "{nope\n", "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "new-store")
			r := runCtl(context.Background(), []string{"-pebble", dir, "import"}, tt.input, false)
			if r.code != ExitFailed || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 mentioning %q", r.code, r.stderr, tt.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the failed import left %s behind (%v)", dir, err)
			}
		})
	}
	// A directory that existed before is the user's: it stays.
	dir := t.TempDir()
	if r := runCtl(context.Background(), []string{"-pebble", dir, "import"}, "{nope\n", false); r.code != ExitFailed {
		t.Fatalf("exit %d", r.code)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("import removed a directory it did not create: %v", err)
	}
}

func TestLockedPebble(t *testing.T) {
	b := filled(t, pebbleBackend(t))
	s := b.open(t)
	defer s.Close()
	for _, cmd := range []string{"stats", "verify"} {
		r := b.run(t, cmd)
		if r.code != ExitFailed || !strings.Contains(r.stderr, "already open") {
			t.Errorf("%s on an open store: exit %d, stderr %q", cmd, r.code, r.stderr)
		}
	}
}

func TestMsgpackToJSON(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string // "" with wantErr
		err  string
	}{
		{"struct order kept", mp(t, deposited{Amount: 3, Reference: "r"}), `{"Amount":3,"Reference":"r"}`, ""},
		{"int keys", mp(t, map[int]string{7: "x"}), `{"7":"x"}`, ""},
		{"nil", []byte{0xc0}, `null`, ""},
		{"bools", mp(t, []bool{true, false}), `[true,false]`, ""},
		{"uint64 max", mp(t, uint64(math.MaxUint64)), `18446744073709551615`, ""},
		{"int64 min", mp(t, int64(math.MinInt64)), `-9223372036854775808`, ""},
		{"float32", mp(t, float32(0.1)), `0.1`, ""},
		{"infinities", mp(t, []float64{math.Inf(1), math.Inf(-1)}), `["+Inf","-Inf"]`, ""},
		{"bin", mp(t, []byte("hi")), `"aGk="`, ""},
		{"html kept", mp(t, "<a&b>"), `"<a&b>"`, ""},
		{"time", mp(t, at), `"2024-05-06T07:08:09.123456789Z"`, ""},
		{"time seconds only", mp(t, time.Unix(1, 0)), `"1970-01-01T00:00:01Z"`, ""},
		{"other ext", []byte{0xd4, 5, 0xab}, `{"ext":5,"data":"qw=="}`, ""},
		{"reserved code", []byte{0xc1}, "", "reserved code"},
		{"short string", []byte{0xa5, 'a'}, "", "unexpected end"},
		{"trailing", []byte{0x01, 0x02}, "", "trailing"},
		{"huge map header", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, "", "unexpected end"},
		{"empty", nil, "", "unexpected end"},
		{"too deep", bytes.Repeat([]byte{0x91}, maxDepth+5), "", "too deep"},
		{"bad timestamp", []byte{0xd6, 0xff, 0, 0}, "", "unexpected end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := msgpackToJSON(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %s, %v; want an error mentioning %q", got, err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %s, %v; want %s", got, err, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("invalid JSON %s", got)
			}
		})
	}
}

func FuzzMsgpackToJSON(f *testing.F) {
	f.Add(mp(f, odd{Blob: []byte{1}, Tags: []string{"a"}, Nested: map[string][]int{"k": {1}}}))
	f.Add(mp(f, opened{Owner: "x", At: at}))
	f.Add([]byte{0xc7, 3, 9, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := msgpackToJSON(b)
		if err == nil && !json.Valid(out) {
			t.Fatalf("invalid JSON %q from % x", out, b)
		}
	})
}

var discard = slogDiscard()

type silentPebble struct{}

func (silentPebble) Infof(string, ...any)  {}
func (silentPebble) Errorf(string, ...any) {}
func (silentPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

func slogDiscard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
