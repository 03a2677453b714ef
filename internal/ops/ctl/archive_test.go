package ctl

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

// storeState is what a test reads back from a store after a command.
type storeState struct {
	truncated uint64
	positions []uint64
}

func readState(t *testing.T, b backend) storeState {
	t.Helper()
	s := b.open(t)
	defer s.Close()
	tr, err := s.(lifecycle.Retention).Truncated(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	st := storeState{truncated: tr}
	for rec, err := range s.ReadAll(t.Context(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		st.positions = append(st.positions, rec.Position)
	}
	return st
}

func archiveOut(t *testing.T, r result) archiveJSON {
	t.Helper()
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	var out archiveJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("archive output is not JSON: %v\n%s", err, r.stdout)
	}
	return out
}

// TestArchive archives the fixture's oldest events on both backends: dry
// run, refusal of uncovered streams, write and verify without -yes, then
// truncate with -yes, and what the other commands see afterwards.
func TestArchive(t *testing.T) {
	for _, mk := range []func(testing.TB) backend{pebbleBackend, postgresBackend} {
		b := filled(t, mk(t))
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "old.parquet")
			all := []uint64{1, 2, 3, 4, 5, 6}

			// Positions 1..3 hold a1 v1-v2 (snapshot at v2) and i1 v1 (none).
			dry := archiveOut(t, b.run(t, "archive", "-before", "4", "-dry-run"))
			want := archiveJSON{From: 1, Through: 3, Events: 3, Streams: 2, Uncovered: 1,
				UncoveredFirst: []streamJSON{{Type: "invoice", ID: "i1"}}, DryRun: true}
			if !jsonEqual(dry, want) {
				t.Errorf("dry run = %+v, want %+v", dry, want)
			}
			if r := b.run(t, "archive", "-before", "4", "-to", file, "-yes"); r.code != ExitFailed || !strings.Contains(r.stderr, "no snapshot") {
				t.Errorf("archive of an uncovered stream: exit %d, stderr %s; want a refusal", r.code, r.stderr)
			}
			if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused archive left %s: %v", file, err)
			}
			if st := readState(t, b); st.truncated != 0 || !slices.Equal(st.positions, all) {
				t.Fatalf("after refusals the store is %+v", st)
			}

			// Without -yes: written and verified, nothing truncated.
			first := archiveOut(t, b.run(t, "archive", "-before", "3", "-to", file))
			if !first.Verified || first.Truncated || first.Events != 2 || first.SHA256 == "" {
				t.Errorf("archive without -yes = %+v", first)
			}
			if st := readState(t, b); st.truncated != 0 || !slices.Equal(st.positions, all) {
				t.Fatalf("archive without -yes changed the store: %+v", st)
			}
			rows := readParquetPositions(t, file)
			if !slices.Equal(rows, []uint64{1, 2}) {
				t.Errorf("archive holds positions %v, want [1 2]", rows)
			}

			// With -yes: the existing file is verified again, then the
			// store truncated.
			second := archiveOut(t, b.run(t, "archive", "-before", "3", "-to", file, "-yes"))
			if !second.Verified || !second.Truncated || second.SHA256 != first.SHA256 {
				t.Errorf("archive -yes = %+v, want verified (sha256 %s) and truncated", second, first.SHA256)
			}
			if st := readState(t, b); st.truncated != 2 || !slices.Equal(st.positions, all[2:]) {
				t.Errorf("after archive -yes the store is %+v, want truncated through 2", st)
			}
			if r := b.run(t, "archive", "-before", "3", "-to", file, "-yes"); r.code != ExitFailed || !strings.Contains(r.stderr, "nothing to archive") {
				t.Errorf("archive of a truncated range again: exit %d, stderr %s", r.code, r.stderr)
			}

			// The other commands see a log that starts at 3.
			if r := b.run(t, "stats"); r.code != ExitOK || !strings.Contains(r.stdout, `"truncated": 2`) || !strings.Contains(r.stdout, `"events": 4`) {
				t.Errorf("stats after truncation: exit %d, stdout %s", r.code, r.stdout)
			}
			// (The fixture's garbled body at position 6 is verify's one
			// finding; the truncation is none.)
			if r := b.run(t, "verify"); !strings.Contains(r.stdout, `"truncated": 2`) || strings.Contains(r.stdout, "gap") || strings.Count(r.stdout, `"kind"`) != 1 {
				t.Errorf("verify after truncation: exit %d, stdout %s", r.code, r.stdout)
			}
			r := b.run(t, "export")
			if r.code != ExitOK || !strings.Contains(r.stderr, "starts at position 3") || strings.Count(r.stdout, "\n") != 4 {
				t.Errorf("export after truncation: exit %d, %d lines, stderr %s", r.code, strings.Count(r.stdout, "\n"), r.stderr)
			}
			if r := b.run(t, "events", "account", "a1"); r.code != ExitFailed || !strings.Contains(r.stderr, "truncated") {
				t.Errorf("events of a truncated stream from 0: exit %d, stderr %s; want a truncation error", r.code, r.stderr)
			}
			if r := b.run(t, "events", "-after", "2", "account", "a1"); r.code != ExitOK || strings.Count(r.stdout, "\n") != 2 {
				t.Errorf("events -after 2 of a truncated stream: exit %d, stdout %s, stderr %s", r.code, r.stdout, r.stderr)
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func readParquetPositions(t *testing.T, path string) []uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, err := importSource(f, path)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for e, err := range events {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e.Position)
	}
	return out
}

// TestArchiveRefusesAMismatch: an existing file that does not hold the
// store's records is never trusted; nothing is truncated.
func TestArchiveRefusesAMismatch(t *testing.T) {
	b := filled(t, pebbleBackend(t))
	other := pebbleBackend(t)
	s := other.open(t)
	for i := range 3 {
		if _, err := s.Append(t.Context(), runtime.AppendRequest{Stream: runtime.StreamID{Type: "account", ID: "a1"}, Expected: uint64(i),
			Events: []runtime.EventData{{Name: "account.deposited", Schema: 1, Time: at, Data: mp(t, deposited{Amount: int64(i)})}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "other.parquet")
	// The other store's positions 1..2, with the metadata an archive of
	// them has.
	if r := other.run(t, "export", "-format", "parquet", "-from", "1", "-to", "2", "-o", file); r.code != ExitOK {
		t.Fatalf("export: %s", r.stderr)
	}
	tests := []struct {
		name, before, detail string
	}{
		{"OtherRecords", "3", "differs from the store's"},
		{"OtherRange", "4", "cqrsgen.to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.run(t, "archive", "-before", tt.before, "-to", file, "-yes", "-allow-uncovered")
			if r.code != ExitFailed || !strings.Contains(r.stderr, "nothing truncated") || !strings.Contains(r.stderr, tt.detail) {
				t.Errorf("archive against a foreign file: exit %d, stderr %s; want a refusal naming %q", r.code, r.stderr, tt.detail)
			}
			if st := readState(t, b); st.truncated != 0 || len(st.positions) != 6 {
				t.Errorf("a refused archive changed the store: %+v", st)
			}
		})
	}
}

func TestArchiveFlags(t *testing.T) {
	b := filled(t, pebbleBackend(t))
	file := filepath.Join(t.TempDir(), "a.parquet")
	for _, tt := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"NoCut", []string{"archive", "-to", file}, ExitUsage, "-before"},
		{"BothCuts", []string{"archive", "-before", "2", "-before-time", "2024-05-06T07:08:12Z", "-to", file}, ExitUsage, "-before"},
		{"NoFile", []string{"archive", "-before", "2"}, ExitUsage, "-to"},
		{"DryRunYes", []string{"archive", "-before", "2", "-dry-run", "-yes"}, ExitUsage, "exclude"},
		{"BadTime", []string{"archive", "-before-time", "yesterday", "-dry-run"}, ExitUsage, "-before-time"},
		{"Newest", []string{"archive", "-before", "7", "-to", file}, ExitFailed, "newest event"},
		{"NothingBefore1", []string{"archive", "-before", "1", "-to", file}, ExitFailed, "nothing to archive"},
		// The fixture's checkpoint "balances" is at 3.
		{"CheckpointBehind", []string{"archive", "-before", "5", "-to", file, "-allow-uncovered"}, ExitFailed, `"balances" at 3`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := b.run(t, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
				t.Errorf("exit %d, stderr %s; want exit %d mentioning %q", r.code, r.stderr, tt.code, tt.msg)
			}
		})
	}
	// The fixture's event n is at at + n s: the first at or after +3s is
	// position 3.
	got := archiveOut(t, b.run(t, "archive", "-before-time", at.Add(3e9).Format("2006-01-02T15:04:05.999999999Z07:00"), "-dry-run"))
	if got.From != 1 || got.Through != 2 {
		t.Errorf("-before-time +3s = %d..%d, want 1..2", got.From, got.Through)
	}
	got = archiveOut(t, b.run(t, "archive", "-before-time", "2100-01-01T00:00:00Z", "-dry-run"))
	if got.Through != 5 {
		t.Errorf("-before-time after every event: through %d, want 5 (the newest is kept)", got.Through)
	}
	if got.Behind != 1 || len(got.BehindFirst) != 1 || got.BehindFirst[0] != (checkpointJSON{Name: "balances", Position: 3}) {
		t.Errorf("dry run through 5: checkpoints behind %d %v, want balances at 3", got.Behind, got.BehindFirst)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused archives left %s: %v", file, err)
	}
}

func TestPurgeKeys(t *testing.T) {
	for _, mk := range []func(testing.TB) backend{pebbleBackend, postgresBackend} {
		b := filled(t, mk(t))
		t.Run(b.name, func(t *testing.T) {
			if r := b.run(t, "purge-keys"); r.code != ExitUsage {
				t.Errorf("purge-keys without -ttl: exit %d", r.code)
			}
			// The fixture's key was recorded just now.
			for _, tt := range []struct {
				ttl  string
				want string
			}{{"1000h", `"purged": 0`}, {"1ns", `"purged": 1`}, {"1ns", `"purged": 0`}} {
				r := b.run(t, "purge-keys", "-ttl", tt.ttl)
				if r.code != ExitOK || !strings.Contains(r.stdout, tt.want) {
					t.Errorf("purge-keys -ttl %s: exit %d, stdout %s, stderr %s; want %s", tt.ttl, r.code, r.stdout, r.stderr, tt.want)
				}
			}
			s := b.open(t)
			defer s.Close()
			if _, err := s.LoadIdempotency(t.Context(), "req-1"); !errors.Is(err, runtime.ErrNotFound) {
				t.Errorf("the purged key: %v, want ErrNotFound", err)
			}
		})
	}
}
