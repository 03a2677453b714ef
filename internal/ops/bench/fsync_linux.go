package bench

import (
	"os"
	"syscall"
)

// datasync flushes f's data (not its inode times) to the disk.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

// syncDisks writes every dirty page of every filesystem to its disk.
func syncDisks() { syscall.Sync() }
