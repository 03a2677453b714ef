package torture

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestSoakShort runs the soak with small counts: 8 writers, 200 operations
// each, memory sampled every 100 operations. It checks counts and ratios
// only, never durations.
func TestSoakShort(t *testing.T) {
	cfg := SoakConfig{
		Dir:          filepath.Join(t.TempDir(), "store"),
		Writers:      8,
		Shared:       3,
		OpsPerWriter: 200,
		SampleOps:    100,
		MemFactor:    3, // small heaps under -race are noisy; the 10-minute run uses 1.5
		Seed:         11,
	}
	res, err := RunSoak(context.Background(), cfg)
	if err != nil {
		t.Fatalf("soak: %v\n%v", err, res)
	}
	if want := uint64(cfg.Writers * cfg.OpsPerWriter); res.Ops != want {
		t.Errorf("ops = %d, want %d", res.Ops, want)
	}
	if res.Executes == 0 || res.KeyRepeats == 0 || res.RawAppends == 0 {
		t.Errorf("an operation kind never ran: %+v", res)
	}
	if sum := res.Executes + res.KeyRepeats + res.RawAppends; sum != res.Ops {
		t.Errorf("executes+repeats+appends = %d, ops %d", sum, res.Ops)
	}
	if len(res.Samples) < 3 || len(res.Samples)-res.Warm < 2 {
		t.Errorf("%d samples, %d after warm-up; want at least 3 and 2", len(res.Samples), len(res.Samples)-res.Warm)
	}
	for _, name := range []string{soakBalances, soakNames, soakLedger, soakStreams} {
		if _, ok := res.Lag[name]; !ok {
			t.Errorf("no lag reported for %s", name)
		}
	}
	// Every record went through the two projections that take all names,
	// exactly once (no restart, so at-least-once delivered each once too).
	opened := uint64(cfg.Writers + cfg.Shared)
	if res.Handled[soakNames] != res.Head || res.Handled[soakStreams] != res.Head {
		t.Errorf("handled %v, head %d", res.Handled, res.Head)
	}
	if res.Handled[soakLedger] != res.Executes+opened || res.Handled[soakBalances] != res.Executes+opened {
		t.Errorf("account projections handled %v, want %d executes + %d opens", res.Handled, res.Executes, opened)
	}
}

// TestSoakRejectsNoLimit: a soak with neither duration nor count is refused.
func TestSoakRejectsNoLimit(t *testing.T) {
	if _, err := RunSoak(context.Background(), SoakConfig{Dir: t.TempDir()}); err == nil {
		t.Fatal("RunSoak without a duration or operation count succeeded")
	}
}

func TestCheckMemory(t *testing.T) {
	flat := func(heap []uint64, gs []int) SoakResult {
		r := SoakResult{}
		for i, h := range heap {
			r.Samples = append(r.Samples, MemSample{HeapInuse: h, Goroutines: gs[i]})
		}
		r.Warm = 1
		return r
	}
	cfg := SoakConfig{MemFactor: 1.5, GoroutineSlack: 4}
	tests := []struct {
		name string
		res  SoakResult
		want string // "" for no error
	}{
		{"stable", flat([]uint64{50, 100, 110, 90, 120}, []int{9, 20, 21, 20, 22}), ""},
		{"warm-up ignored", flat([]uint64{1, 100, 100, 100}, []int{1, 20, 20, 20}), ""},
		{"heap grows", flat([]uint64{100, 100, 150, 200, 300, 400}, []int{9, 9, 9, 9, 9, 9}), "memory grew"},
		{"goroutines leak", flat([]uint64{100, 100, 100, 100}, []int{9, 10, 14, 20}), "goroutines not flat"},
		{"no samples", SoakResult{}, "no memory sample"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkMemory(cfg, tt.res)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("checkMemory: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("checkMemory = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
