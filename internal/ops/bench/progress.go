package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Progress is told what the run is doing.
type Progress interface {
	// Begin announces a measurement of up to total operations; done counts
	// the completed ones while it runs.
	Begin(name string, total int64, done *atomic.Int64)
	// End reports a finished row.
	End(row Row)
	// Close ends the display.
	Close()
}

type nopProgress struct{}

func (nopProgress) Begin(string, int64, *atomic.Int64) {}
func (nopProgress) End(Row)                            {}
func (nopProgress) Close()                             {}

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// NewProgress returns a terminal display (one line, rewritten in place
// ten times a second) when terminal is true, else a line printer that
// writes one machine-friendly `key=value` line per finished row and
// nothing else.
func NewProgress(w io.Writer, terminal bool) Progress {
	if terminal {
		return &termProgress{w: w}
	}
	return &lineProgress{w: w}
}

// lineProgress prints one line per row.
type lineProgress struct{ w io.Writer }

func (lineProgress) Begin(string, int64, *atomic.Int64) {}
func (lineProgress) Close()                             {}

func (p *lineProgress) End(row Row) { fmt.Fprintln(p.w, RowLine(row)) }

// RowLine formats row as one line of space-separated key=value fields:
// stable names, raw numbers (nanoseconds, events per second), for grep,
// awk and scripts.
func RowLine(row Row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "case=%s subject=%q kind=%s", row.Case, row.Subject, row.Kind)
	if row.Synced != nil {
		fmt.Fprintf(&b, " synced=%t", *row.Synced)
	}
	fmt.Fprintf(&b, " ops=%d events=%d seconds=%.3f", row.Ops, row.Events, row.Seconds)
	if row.EventsPerSec > 0 {
		fmt.Fprintf(&b, " events_per_sec=%.0f", row.EventsPerSec)
	}
	if l := row.Latency; l != nil {
		fmt.Fprintf(&b, " p50_ns=%d p99_ns=%d p999_ns=%d max_ns=%d", l.P50, l.P99, l.P999, l.Max)
	}
	if row.NsPerOp > 0 {
		fmt.Fprintf(&b, " ns_per_op=%.1f allocs_per_op=%.1f", row.NsPerOp, row.AllocsPerOp)
	}
	if row.Limit != "" {
		fmt.Fprintf(&b, " ratio=%.3f ratio_basis=%s limit=%q", row.Ratio, row.RatioBasis, row.Limit)
	}
	return b.String()
}

// termProgress rewrites a single status line.
type termProgress struct {
	w    io.Writer
	mu   sync.Mutex
	stop chan struct{}
	wg   sync.WaitGroup
	rows int
}

func (p *termProgress) Begin(name string, total int64, done *atomic.Int64) {
	p.halt()
	p.mu.Lock()
	p.stop = make(chan struct{})
	rows := p.rows
	p.mu.Unlock()
	start := time.Now()
	draw := func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		fmt.Fprintf(p.w, "\r\x1b[K[%d rows done] %s: %d/%d ops, %.1fs", rows, name, done.Load(), total, time.Since(start).Seconds())
	}
	draw()
	p.wg.Add(1)
	go func(stop chan struct{}) {
		defer p.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				draw()
			}
		}
	}(p.stop)
}

// halt stops the redraw goroutine, if any.
func (p *termProgress) halt() {
	p.mu.Lock()
	stop := p.stop
	p.stop = nil
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		p.wg.Wait()
	}
}

func (p *termProgress) End(row Row) {
	p.halt()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rows++
	rate := ""
	switch {
	case row.EventsPerSec > 0:
		rate = formatRate(row.EventsPerSec) + " events/s"
	case row.NsPerOp > 0:
		rate = formatFloat(row.NsPerOp) + " ns/op"
	}
	if row.Latency != nil {
		rate += " p99 " + formatNs(row.Latency.P99)
	}
	fmt.Fprintf(p.w, "\r\x1b[K[%d rows done] %s %s: %s", p.rows, row.Case, row.Subject, rate)
}

func (p *termProgress) Close() {
	p.halt()
	fmt.Fprint(p.w, "\r\x1b[K")
}
