package pebble

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/cqrsgen/cqrsgen/runtime"
)

func isWAL(op errorfs.Op) bool { return strings.HasSuffix(op.Path, ".log") }

func isSync(op errorfs.Op) bool {
	return op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo
}

// faultRun appends from several goroutines until each has seen an error
// or done `after` appends once the fault is on. It returns the
// acknowledged appends and the errors. It fails the test if an append that
// started after another append had failed is acknowledged: once the store
// has reported a failed write or sync it must not acknowledge anything
// (fsync errors are not retryable: the data they covered may be gone).
func faultRun(t *testing.T, s *Store, inj *faultInjector, prefix string, before, after int) ([]faultAck, []error) {
	t.Helper()
	var (
		mu     sync.Mutex
		acks   []faultAck
		errs   []error
		failed atomic.Bool
		ackCnt atomic.Int64
		wg     sync.WaitGroup
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			own := runtime.StreamID{Type: "F", ID: fmt.Sprintf("%s-w%d", prefix, w)}
			shared := runtime.StreamID{Type: "F", ID: prefix + "-shared"}
			var ver uint64
			sinceOn := 0
			for n := 0; ; n++ {
				if ackCnt.Load() >= int64(before) {
					inj.on.Store(true)
				}
				on := inj.on.Load()
				if on {
					if sinceOn++; sinceOn > after {
						return
					}
				}
				st, exp := own, ver
				if n%3 == 2 {
					st, exp = shared, runtime.AnyVersion
				}
				size := 1 + n%4
				evs := make([]runtime.EventData, size)
				tags := make([]string, size)
				for i := range evs {
					tags[i] = fmt.Sprintf("%s-w%d-n%d/%d/%d", prefix, w, n, i, size)
					evs[i] = runtime.EventData{Name: "E", Data: []byte(tags[i])}
				}
				wasFailed := failed.Load()
				res, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: exp, Events: evs})
				if err != nil {
					failed.Store(true)
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				if wasFailed {
					t.Errorf("append %s acknowledged after another append had failed", tags[0])
				}
				if st == own {
					ver = res.LastVersion
				}
				ackCnt.Add(1)
				mu.Lock()
				acks = append(acks, faultAck{stream: st, res: res, tags: tags})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return acks, errs
}

// TestFaultDuringAppends injects write errors, fsync errors and a full
// disk into the WAL while many goroutines append. The store must report
// the error to the caller, acknowledge nothing after it, refuse further
// calls (ErrFailed), and reopen consistent both from everything written
// and from only what was synced (a crash right after the failure):
// everything acknowledged present, nothing unacknowledged half-present.
func TestFaultDuringAppends(t *testing.T) {
	tests := []struct {
		name  string
		match func(errorfs.Op) bool
		err   error
	}{
		{"WAL fsync error", func(op errorfs.Op) bool { return isWAL(op) && isSync(op) }, syscall.EIO},
		{"WAL write error", func(op errorfs.Op) bool { return isWAL(op) && isWrite(op) && !isSync(op) }, syscall.EIO},
		{"disk full", func(op errorfs.Op) bool { return isWrite(op) && !isSync(op) }, syscall.ENOSPC},
		{"disk full on the WAL", func(op errorfs.Op) bool { return isWAL(op) && isWrite(op) }, syscall.ENOSPC},
	}
	for _, tc := range tests {
		for _, keep := range []int{0, 100} { // percent of unsynced data the crash keeps
			t.Run(fmt.Sprintf("%s/keep %d%%", tc.name, keep), func(t *testing.T) {
				mem := vfs.NewCrashableMem()
				inj := &faultInjector{match: tc.match, err: tc.err}
				s, err := Open("/db", WithFS(errorfs.Wrap(mem, inj)), WithLogger(faultLog), WithCacheSize(1<<20))
				if err != nil {
					t.Fatal(err)
				}
				acks, errs := faultRun(t, s, inj, "f", 40, 50)
				if inj.hits.Load() == 0 {
					t.Fatalf("the fault was never hit (%d acks)", len(acks))
				}
				if len(errs) == 0 {
					t.Fatalf("%d faults injected, %d appends acknowledged, no append failed", inj.hits.Load(), len(acks))
				}
				for _, err := range errs {
					if !errors.Is(err, tc.err) && !errors.Is(err, ErrFailed) {
						t.Errorf("append failed with %v, want an error wrapping %v or ErrFailed", err, tc.err)
					}
				}
				// The store is failed: later calls are refused, not acknowledged.
				_, err = s.Append(context.Background(), runtime.AppendRequest{Stream: runtime.StreamID{Type: "F", ID: "late"},
					Expected: runtime.AnyVersion, Events: []runtime.EventData{{Name: "E", Data: []byte("late/0/1")}}})
				if !errors.Is(err, ErrFailed) {
					t.Errorf("append after the failure: %v, want ErrFailed", err)
				}
				crash := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: keep, RNG: rand.New(rand.NewPCG(uint64(keep), 7))})
				_ = s.Close() // may report the failure; it must not hang or panic
				inj.on.Store(false)

				s2, err := Open("/db", WithFS(crash), WithLogger(faultLog))
				if err != nil {
					t.Fatalf("reopen after %s: %v", tc.name, err)
				}
				defer s2.Close()
				n := faultVerify(t, s2, acks)
				t.Logf("%d faults injected, %d appends acknowledged, %d failed; reopened with %d events", inj.hits.Load(), len(acks), len(errs), n)
				// The reopened store works.
				if _, err := s2.Append(context.Background(), runtime.AppendRequest{Stream: runtime.StreamID{Type: "F", ID: "after"},
					Events: []runtime.EventData{{Name: "E", Data: []byte("after/0/1")}}}); err != nil {
					t.Fatalf("append after reopening: %v", err)
				}
			})
		}
	}
}
