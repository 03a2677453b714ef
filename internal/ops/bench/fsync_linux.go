package bench

import (
	"os"
	"syscall"
	"time"
)

// datasync flushes f's data (not its inode times) to the disk.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

// syncDisks writes every dirty page of every filesystem to its disk.
func syncDisks() { syscall.Sync() }

// processCPU is the processor time this process has used (user and
// system), for the turn log.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
