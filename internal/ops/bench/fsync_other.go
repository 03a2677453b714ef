//go:build !linux

package bench

import (
	"os"
	"time"
)

// datasync flushes f to the disk (fsync where fdatasync is unavailable).
func datasync(f *os.File) error { return f.Sync() }

// syncDisks does nothing here: the append cases' disk figures are taken
// on Linux.
func syncDisks() {}

// processCPU is not measured here (the turn log shows 0).
func processCPU() time.Duration { return 0 }

// machineCPU is not measured here (the turn log leaves it out).
func machineCPU() (busy, total time.Duration, ok bool) { return 0, 0, false }
