package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
)

// Machine describes where a report was measured.
type Machine struct {
	CPUModel    string     `json:"cpu_model"`
	Cores       int        `json:"cores"`
	GOMAXPROCS  int        `json:"gomaxprocs"`
	MemoryBytes int64      `json:"memory_bytes"`
	OS          string     `json:"os"`
	Arch        string     `json:"arch"`
	Kernel      string     `json:"kernel,omitempty"`
	GoVersion   string     `json:"go_version"`
	Filesystem  Filesystem `json:"data_dir_filesystem"`
}

// Filesystem is the mount a directory lives on.
type Filesystem struct {
	Type       string `json:"type"`
	Device     string `json:"device"`
	MountPoint string `json:"mount_point"`
}

// Memory-backed filesystem types on which fsync measures nothing.
var memoryFilesystems = map[string]bool{"tmpfs": true, "ramfs": true, "devtmpfs": true}

// InMemory reports whether fs keeps its data in RAM, where fsync is free
// and durability figures would be meaningless.
func (fs Filesystem) InMemory() bool { return memoryFilesystems[fs.Type] }

// DescribeMachine gathers the machine description; dir is the data
// directory whose filesystem is reported. Facts that cannot be read are
// left empty rather than failing the run.
func DescribeMachine(dir string) Machine {
	m := Machine{
		Cores:      goruntime.NumCPU(),
		GOMAXPROCS: goruntime.GOMAXPROCS(0),
		OS:         goruntime.GOOS,
		Arch:       goruntime.GOARCH,
		GoVersion:  goruntime.Version(),
		CPUModel:   cpuModel("/proc/cpuinfo"),
	}
	m.MemoryBytes = memTotal("/proc/meminfo")
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if dir != "" {
		if fs, err := FilesystemOf("/proc/mounts", dir); err == nil {
			m.Filesystem = fs
		}
	}
	if m.Filesystem.Type == "" {
		m.Filesystem.Type = "unknown"
	}
	return m
}

func cpuModel(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return goruntime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return goruntime.GOARCH
}

func memTotal(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// FilesystemOf returns the mount (from a /proc/mounts-format file) that
// holds dir: the entry with the longest mount point that is a prefix of
// dir's absolute, symlink-resolved path.
func FilesystemOf(mounts, dir string) (Filesystem, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Filesystem{}, fmt.Errorf("bench: resolving %s: %w", dir, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	f, err := os.Open(mounts)
	if err != nil {
		return Filesystem{}, fmt.Errorf("bench: reading mounts: %w", err)
	}
	defer f.Close()
	var best Filesystem
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		mp := unescapeMount(fields[1])
		if !within(abs, mp) || len(mp) < len(best.MountPoint) {
			continue
		}
		best = Filesystem{Device: fields[0], MountPoint: mp, Type: fields[2]}
	}
	if err := sc.Err(); err != nil {
		return Filesystem{}, fmt.Errorf("bench: reading mounts: %w", err)
	}
	if best.MountPoint == "" {
		return Filesystem{}, fmt.Errorf("bench: no mount holds %s", abs)
	}
	return best, nil
}

func within(path, mount string) bool {
	if mount == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == mount || strings.HasPrefix(path, mount+"/")
}

// unescapeMount undoes /proc/mounts' octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
