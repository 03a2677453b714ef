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

// machineCPU is the processor time every CPU of the machine has been busy
// (not idle, not waiting for I/O) and the time they have counted in all,
// from /proc/stat, for the turn log: with a database server on the same
// machine, a turn's busy time is the client's, the server's and the
// kernel's work together. ok is false when /proc/stat cannot be read.
func machineCPU() (busy, total time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	return parseProcStat(string(b))
}
