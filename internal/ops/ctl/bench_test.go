package ctl

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// benchStore writes n events (100 streams, batches of 100) into a fresh
// Pebble store and returns its flags.
func benchStore(b *testing.B, n int) []string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "store")
	s, err := pebble.Open(dir, pebble.WithLogger(discard))
	if err != nil {
		b.Fatal(err)
	}
	body := mp(b, deposited{Amount: 12345, Reference: "benchmark deposit"})
	for i := 0; i < n; i += 100 {
		evs := make([]runtime.EventData, 100)
		for j := range evs {
			evs[j] = runtime.EventData{Name: "account.deposited", Schema: 1, Time: at, Data: body}
		}
		st := runtime.StreamID{Type: "account", ID: fmt.Sprintf("a%03d", (i/100)%100)}
		if _, err := s.Append(context.Background(), runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: evs}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return []string{"-pebble", dir}
}

// BenchmarkPebble measures cqrsctl's whole-store commands on 100,000
// events; events/s is reported per command.
func BenchmarkPebble(b *testing.B) {
	const n = 100_000
	flags := benchStore(b, n)
	for _, cmd := range [][]string{{"verify"}, {"export"}, {"export", "-format", "parquet"}} {
		b.Run(strings.Join(cmd, " "), func(b *testing.B) {
			for b.Loop() {
				code := Run(context.Background(), append(append([]string{}, flags...), cmd...), Env{Stdout: io.Discard, Stderr: io.Discard})
				if code != ExitOK {
					b.Fatalf("exit %d", code)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
