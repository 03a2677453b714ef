package bench

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// sideLog records what runSides does with fake sides: "open x", "op x"
// (once per run of consecutive operations of side x), "close x".
type sideLog struct {
	events []string
	ops    map[string]int64
}

func (l *sideLog) add(e string) {
	if strings.HasPrefix(e, "op ") && len(l.events) > 0 && l.events[len(l.events)-1] == e {
		return
	}
	l.events = append(l.events, e)
}

// fakeSides returns the openers of sides a, b, c, ... whose operations
// only log; side failOn's operations fail.
func (l *sideLog) fakeSides(n int, failOn string) []func() (*appendSide, error) {
	var open []func() (*appendSide, error)
	for i := range n {
		label := string(rune('a' + i))
		open = append(open, func() (*appendSide, error) {
			l.add("open " + label)
			return &appendSide{
				label: label,
				op: func(context.Context, int) error {
					l.add("op " + label)
					l.ops[label]++
					if label == failOn {
						return errors.New("side " + label + " failed")
					}
					return nil
				},
				close: func() error {
					l.add("close " + label)
					return nil
				},
			}, nil
		})
	}
	return open
}

// TestRunSides checks the order in which an append case's sides are
// opened, run and closed, and that each gets its whole count. One writer,
// so a side's operations within a turn run one after the other.
func TestRunSides(t *testing.T) {
	r := &runner{cfg: Config{Progress: nopProgress{}}}
	for _, tc := range []struct {
		name   string
		rounds int
		failOn string
		want   string
	}{
		{"one round: each side alone", 1, "",
			"open a, op a, close a, open b, op b, close b, open c, op c, close c"},
		{"four rounds: all open, turns rotate", 4, "",
			"open a, open b, open c, op a, op b, op c, op b, op c, op a, op c, op a, op b, op a, op b, op c, close a, close b, close c"},
		{"a failing side closes every side", 4, "b",
			"open a, open b, open c, op a, op b, close a, close b, close c"},
		{"a failing side in one round", 1, "b",
			"open a, op a, close a, open b, op b, close b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &sideLog{ops: map[string]int64{}}
			sides, err := r.runSides(context.Background(), l.fakeSides(3, tc.failOn), tc.rounds, 1, 40, time.Hour)
			if got := strings.Join(l.events, ", "); got != tc.want {
				t.Errorf("events:\n got %s\nwant %s", got, tc.want)
			}
			if tc.failOn != "" {
				if err == nil || !strings.Contains(err.Error(), "side b failed") {
					t.Fatalf("runSides = %v, want side b's error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			labels := make([]string, len(sides))
			for i, sd := range sides {
				labels[i] = sd.label
				if l.ops[sd.label] != 40 || sd.res.ops != 40 || sd.close != nil {
					t.Errorf("side %s: %d operations run, %d counted, closed %v; want 40, 40, true", sd.label, l.ops[sd.label], sd.res.ops, sd.close == nil)
				}
			}
			if !slices.Equal(labels, []string{"a", "b", "c"}) {
				t.Errorf("sides %v, want a, b, c in the order opened", labels)
			}
		})
	}
}

// TestRunSidesNotesBeforeClosing checks that a side's note is taken once
// its turns are done and before it is closed (the Pebble store's note reads
// its Stats), in one round and in several.
func TestRunSidesNotesBeforeClosing(t *testing.T) {
	r := &runner{cfg: Config{Progress: nopProgress{}}}
	for _, rounds := range []int{1, 4} {
		var ops int
		closed := false
		side := &appendSide{
			label: "a",
			op:    func(context.Context, int) error { ops++; return nil },
			close: func() error { closed = true; return nil },
			note: func() string {
				if closed {
					return "closed"
				}
				return fmt.Sprintf("%d ops", ops)
			},
		}
		sides, err := r.runSides(context.Background(), []func() (*appendSide, error){func() (*appendSide, error) { return side, nil }}, rounds, 1, 8, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if got := sides[0].noted; got != "8 ops" || !closed {
			t.Errorf("%d rounds: noted %q, closed %v; want \"8 ops\", true", rounds, got, closed)
		}
	}
}

func TestAppendTurns(t *testing.T) {
	for _, tc := range []struct {
		ops     int64
		writers int
		want    int
	}{
		{2_000_000, 1, appendRounds}, // full run, single events
		{20_000, 256, 9},             // full run, 100-event appends
		{1_000, 64, 2},               // quick run, 100-event appends
		{1, 256, 2},                  // never fewer than two
		{100_000, 256, appendRounds}, // quick run, single events
	} {
		if got := appendTurns(tc.ops, tc.writers); got != tc.want {
			t.Errorf("appendTurns(%d, %d) = %d, want %d", tc.ops, tc.writers, got, tc.want)
		}
	}
}

// TestRunSidesTurnLog checks that Config.TurnLog gets one line per turn,
// in the order the turns ran, each with its side, round, operations and
// the side's state after the turn.
func TestRunSidesTurnLog(t *testing.T) {
	var buf strings.Builder
	r := &runner{cfg: Config{Progress: nopProgress{}, TurnLog: &buf}}
	l := &sideLog{ops: map[string]int64{}}
	open := l.fakeSides(2, "")
	for i, o := range open {
		open[i] = func() (*appendSide, error) {
			sd, err := o()
			sd.state = func() string { return fmt.Sprintf("done=%d", l.ops[sd.label]) }
			return sd, err
		}
	}
	if _, err := r.runSides(context.Background(), open, 3, 1, 30, time.Hour); err != nil {
		t.Fatal(err)
	}
	var got []string
	for line := range strings.Lines(buf.String()) {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != "turn" {
			t.Fatalf("turn log line %q: want \"turn side=... round=... ops=...\"", line)
		}
		got = append(got, strings.Join([]string{f[1], f[2], f[3], f[len(f)-1]}, " "))
	}
	want := []string{
		`side="a" round=0 ops=10 done=10`, `side="b" round=0 ops=10 done=10`,
		`side="b" round=1 ops=10 done=20`, `side="a" round=1 ops=10 done=20`,
		`side="a" round=2 ops=10 done=30`, `side="b" round=2 ops=10 done=30`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("turn log:\n got %q\nwant %q", got, want)
	}
}

// TestRunSidesQuiesces checks that the garbage earlier cases left is
// collected before a case's first turn, in one round and in several.
func TestRunSidesQuiesces(t *testing.T) {
	r := &runner{cfg: Config{Progress: nopProgress{}}}
	for _, rounds := range []int{1, 4} {
		var ms goruntime.MemStats
		goruntime.ReadMemStats(&ms)
		before := ms.NumGC
		first := uint32(0)
		side := &appendSide{
			label: "a",
			op: func(context.Context, int) error {
				if first == 0 {
					goruntime.ReadMemStats(&ms)
					first = ms.NumGC
				}
				return nil
			},
			close: func() error { return nil },
		}
		if _, err := r.runSides(context.Background(), []func() (*appendSide, error){func() (*appendSide, error) { return side, nil }}, rounds, 1, 8, time.Hour); err != nil {
			t.Fatal(err)
		}
		if first <= before {
			t.Errorf("%d rounds: %d garbage collections before the first turn, want at least 1", rounds, first-before)
		}
	}
}
