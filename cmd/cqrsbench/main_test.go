package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/internal/ops/bench"
)

// TestQuickMemoryRun runs the whole program in -quick mode against the
// memory store with tiny counts and checks what it writes.
func TestQuickMemoryRun(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"-quick", "-stores", "memory", "-scale", "0.002", "-out", out, "-dir", t.TempDir()}
	if err := bench.Main(t.Context(), args, &stdout, &stderr, false); err != nil {
		t.Fatalf("cqrsbench %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	f, err := os.Open(filepath.Join(out, bench.JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := bench.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, bench.MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}

	groups := map[string]int{}
	for _, r := range rep.Rows {
		groups[r.Group]++
		if r.Kind == bench.KindCqrsgen && r.Group != "fsync" && r.Limit == "" {
			t.Errorf("row %s %s has no limit", r.Case, r.Subject)
		}
		if r.Latency != nil && (r.Latency.P50 > r.Latency.P99 || r.Latency.P99 > r.Latency.P999 || r.Latency.P999 > r.Latency.Max) {
			t.Errorf("row %s %s: percentiles out of order: %+v", r.Case, r.Subject, r.Latency)
		}
		if !strings.Contains(string(md), r.Case) {
			t.Errorf("markdown lacks case %s", r.Case)
		}
	}
	// Memory only: no fsync row; 8 append cases × 3 rows; 6 load cases and
	// the spread load × 3 rows (raw memory limit, ReadStream, Load); mixed: 2 cases × 2 rows (raw memory limit, repository); read: limit +
	// ReadAll + Subscribe; codec: 3 encode rows (limit, Append path
	// limit and generated), 7 decode rows (limit, typed and boxed codec
	// alone, Load path limit and generated, Events path limit and
	// generated).
	want := map[string]int{"append": 24, "load": 21, "mixed": 4, "read": 3, "codec": 10}
	for g, n := range want {
		if groups[g] != n {
			t.Errorf("%d %s rows, want %d (all: %v)", groups[g], g, n, groups)
		}
	}
	if groups["fsync"] != 0 {
		t.Errorf("memory-only run measured fsync")
	}
	if rep.Machine.Cores < 1 || rep.Machine.GoVersion == "" || !rep.Setup.Quick || rep.Setup.Finished.Before(rep.Setup.Started) {
		t.Errorf("machine/setup incomplete: %+v %+v", rep.Machine, rep.Setup)
	}

	// Not a terminal: one key=value line per row, no carriage returns.
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != len(rep.Rows) {
		t.Errorf("%d output lines for %d rows:\n%s", len(lines), len(rep.Rows), stdout.String())
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "case=") || strings.Contains(l, "\r") {
			t.Errorf("unexpected output line %q", l)
		}
	}
}

func TestOnlyAndBadFlags(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := bench.Main(t.Context(), []string{"-quick", "-stores", "memory", "-scale", "0.002", "-only", "^codec/decode$", "-out", out, "-dir", t.TempDir()}, &stdout, &stderr, false); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if !strings.HasPrefix(l, "case=codec/decode ") {
			t.Errorf("-only ^codec/decode$ ran %q", l)
		}
	}
	for _, args := range [][]string{{"-only", "("}, {"-stores", "rocks"}, {"-stores", "postgres"}, {"extra"}} {
		if err := bench.Main(t.Context(), append(args, "-out", out), &stdout, &stderr, false); err == nil {
			t.Errorf("cqrsbench %v succeeded", args)
		}
	}
}

func TestTerminalProgressRewritesOneLine(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := bench.Main(t.Context(), []string{"-quick", "-stores", "memory", "-scale", "0.002", "-only", "^read/", "-out", t.TempDir(), "-dir", t.TempDir()}, &stdout, &stderr, true); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	s := stdout.String()
	if strings.Contains(s, "\n") || !strings.Contains(s, "\r\x1b[K") {
		t.Errorf("terminal output should rewrite one line, got %q", s)
	}
}
