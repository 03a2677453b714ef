package bench

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiles starts a CPU profile into cpuFile and arranges a heap
// (allocation) profile into memFile, either name empty for none; the
// returned stop ends the CPU profile and writes the heap profile. With
// -only selecting one case, the profiles are that row's (and its limit's,
// which alternate with it).
func startProfiles(cpuFile, memFile string) (stop func() error, err error) {
	var cpu *os.File
	if cpuFile != "" {
		if cpu, err = os.Create(cpuFile); err != nil {
			return nil, fmt.Errorf("cqrsbench: -cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, fmt.Errorf("cqrsbench: -cpuprofile: %w", err)
		}
	}
	if memFile != "" {
		runtime.MemProfileRate = 64 << 10 // ~1 sample per 64 KiB, enough for per-event sites
	}
	return func() error {
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				return fmt.Errorf("cqrsbench: -cpuprofile: %w", err)
			}
		}
		if memFile == "" {
			return nil
		}
		f, err := os.Create(memFile)
		if err != nil {
			return fmt.Errorf("cqrsbench: -memprofile: %w", err)
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			f.Close()
			return fmt.Errorf("cqrsbench: -memprofile: %w", err)
		}
		return f.Close()
	}, nil
}
