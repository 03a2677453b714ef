package bench

import (
	"context"
	"fmt"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// turnLog is one turn's entry of Config.TurnLog, begun before the turn.
type turnLog struct {
	r     *runner
	start time.Time
	cpu   time.Duration
	gcs   uint32
	pause uint64
}

// beginTurn starts a turn's entry; a nil *turnLog (no TurnLog) does
// nothing. Reading the GC counters stops the world: it is done between
// turns, outside their clocks, and only when a turn log is asked for.
func (r *runner) beginTurn() *turnLog {
	if r.cfg.TurnLog == nil {
		return nil
	}
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	return &turnLog{r: r, start: time.Now(), cpu: processCPU(), gcs: ms.NumGC, pause: ms.PauseTotalNs}
}

// end writes the turn's line: the side, the round, its rate, percentiles
// and time cap, the process's processor time during it (the side's own
// work, and whatever background work of the other sides' databases fell
// in it), the garbage collections during it and their pauses, and the
// side's database state after it.
func (t *turnLog) end(sd *appendSide, round int, res driveResult) {
	if t == nil {
		return
	}
	cpu := processCPU() - t.cpu
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	events := res.ops * int64(max(1, sd.row.Batch))
	rate := 0.0
	if res.elapsed > 0 {
		rate = float64(events) / res.elapsed.Seconds()
	}
	line := fmt.Sprintf("turn side=%q round=%d ops=%d seconds=%.3f events_per_sec=%.0f", sd.label, round, res.ops, res.elapsed.Seconds(), rate)
	if s := res.hist.Summary(); s != nil {
		line += fmt.Sprintf(" p50_us=%.0f p99_us=%.0f max_us=%.0f", float64(s.P50)/1e3, float64(s.P99)/1e3, float64(s.Max)/1e3)
	}
	cpuPerEvent := 0.0
	if events > 0 {
		cpuPerEvent = float64(cpu.Nanoseconds()) / float64(events)
	}
	line += fmt.Sprintf(" cpu_ms=%d cpu_ns_per_event=%.0f", cpu.Milliseconds(), cpuPerEvent)
	line += fmt.Sprintf(" capped=%t gcs=%d gc_pause_us=%d heap_mb=%d", res.capped, ms.NumGC-t.gcs, (ms.PauseTotalNs-t.pause)/1e3, ms.HeapAlloc>>20)
	if sd.state != nil {
		line += " " + sd.state()
	}
	fmt.Fprintln(t.r.cfg.TurnLog, line)
}

// pebbleState describes a raw Pebble database's write-side state for the
// turn log, under the names of the Pebble store's Stats (storeState).
func pebbleState(db *pebbledb.DB) func() string {
	return func() string {
		m := db.Metrics()
		return fmt.Sprintf("memtable_bytes=%d wal_files=%d wal_obsolete=%d wal_physical_bytes=%d flushes=%d l0_files=%d compactions=%d compaction_debt_bytes=%d",
			m.MemTable.Size, m.WAL.Files, m.WAL.ObsoleteFiles, m.WAL.PhysicalSize,
			m.Flush.Count, m.Levels[0].TablesCount, m.Compact.Count, m.Compact.EstimatedDebt)
	}
}

// storeState describes a store's state for the turn log from its Stats'
// Extra (the Pebble store's metrics, commits and gathering back-offs); nil
// for stores without them.
func storeState(ctx context.Context, s runtime.Store) func() string {
	if st, err := s.Stats(ctx); err != nil || len(st.Extra) == 0 {
		return nil
	}
	return func() string {
		st, err := s.Stats(ctx)
		if err != nil {
			return "stats_error=" + strconv.Quote(err.Error())
		}
		var b strings.Builder
		for _, k := range []string{"memtable_bytes", "wal_files", "wal_physical_bytes", "flushes", "l0_files", "compactions", "compaction_debt_bytes", "commits", "gather_backoffs"} {
			fmt.Fprintf(&b, " %s=%d", k, st.Extra[k])
		}
		return b.String()[1:]
	}
}

// turnState is storeState when a turn log is asked for.
func (r *runner) turnState(ctx context.Context, s runtime.Store) func() string {
	if r.cfg.TurnLog == nil {
		return nil
	}
	return storeState(ctx, s)
}

// turnStateRaw is pebbleState when a turn log is asked for.
func (r *runner) turnStateRaw(db *pebbledb.DB) func() string {
	if r.cfg.TurnLog == nil {
		return nil
	}
	return pebbleState(db)
}
