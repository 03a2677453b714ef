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
	r           *runner
	start       time.Time
	cpu         time.Duration
	busy, total time.Duration // machineCPU's, ok when total > 0
	gcs         uint32
	pause       uint64
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
	t := &turnLog{r: r, start: time.Now(), cpu: processCPU(), gcs: ms.NumGC, pause: ms.PauseTotalNs}
	t.busy, t.total, _ = machineCPU()
	return t
}

// parseProcStat reads the first line of /proc/stat (the "cpu" line, in
// USER_HZ ticks, 100 a second on Linux): busy is every field but idle
// and iowait, guest time left out as it is counted in user already.
func parseProcStat(stat string) (busy, total time.Duration, ok bool) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, false
	}
	const tick = 10 * time.Millisecond
	for i, x := range f[1:min(len(f), 9)] { // user nice system idle iowait irq softirq steal
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false
		}
		total += time.Duration(n) * tick
		if i != 3 && i != 4 {
			busy += time.Duration(n) * tick
		}
	}
	return busy, total, true
}

// end writes the turn's line: the side, the round, its rate, percentiles
// and time cap, the process's processor time during it (the side's own
// work, and whatever background work of the other sides' databases fell
// in it), the machine's busy share and busy time per event (the client's,
// a local database server's and the kernel's work), the garbage collections during it and their pauses, and the
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
	if busy, total, ok := machineCPU(); ok && t.total > 0 && total > t.total {
		b := busy - t.busy
		perEvent := 0.0
		if events > 0 {
			perEvent = float64(b.Nanoseconds()) / float64(events)
		}
		line += fmt.Sprintf(" machine_busy_pct=%.0f machine_cpu_ns_per_event=%.0f", 100*float64(b)/float64(total-t.total), perEvent)
	}
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
