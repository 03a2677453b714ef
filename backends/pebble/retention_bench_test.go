package pebble

import (
	"context"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// BenchmarkReadStreamTruncated times ReadStream of a 10-event stream on
// two stores holding the same log, one of them truncated below the stream
// (so that its reads pay the seek that looks for truncated versions),
// alternating between them in one run.
func BenchmarkReadStreamTruncated(b *testing.B) {
	ctx := context.Background()
	st := runtime.StreamID{Type: "Account", ID: "hot"}
	open := func(truncate bool) *Store {
		s := openT(b, b.TempDir())
		b.Cleanup(func() { _ = s.Close() })
		fill(b, s, runtime.StreamID{Type: "Old", ID: "x"}, 1000)
		fill(b, s, st, 10)
		if truncate {
			if _, err := s.TruncateLog(ctx, 1000); err != nil {
				b.Fatal(err)
			}
		}
		return s
	}
	stores := map[string]*Store{"plain": open(false), "truncated": open(true)}
	durs := map[string][]time.Duration{}
	b.ResetTimer()
	for i := range b.N {
		for _, name := range [2]string{"plain", "truncated"} {
			if i%2 == 1 {
				name = map[string]string{"plain": "truncated", "truncated": "plain"}[name]
			}
			t0 := time.Now()
			n := 0
			for _, err := range stores[name].ReadStream(ctx, st, 0) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			durs[name] = append(durs[name], time.Since(t0))
			if n != 10 {
				b.Fatalf("%s: read %d events, want 10", name, n)
			}
		}
	}
	b.StopTimer()
	for _, name := range []string{"plain", "truncated"} {
		d := durs[name]
		storetest.ReportPercentiles(b, name, d)
	}
}
