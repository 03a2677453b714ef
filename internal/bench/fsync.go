package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// fsyncCase measures the data directory's raw fsync rate: one goroutine
// appending 100 bytes to a file and calling fdatasync, in a loop.
func (r *runner) fsyncCase(ctx context.Context) error {
	const name = "fsync"
	if !r.selected(name) || !r.has("pebble") && !r.has("postgres") {
		return nil
	}
	row, err := r.measureFsync(ctx)
	if err != nil {
		return err
	}
	r.add(row)
	r.fsync = &row
	return nil
}

func (r *runner) measureFsync(ctx context.Context) (Row, error) {
	dir := r.tempDir("fsync")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Row{}, fmt.Errorf("bench: fsync: %w", err)
	}
	defer os.RemoveAll(dir)
	f, err := os.OpenFile(filepath.Join(dir, "fsync.dat"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Row{}, fmt.Errorf("bench: fsync: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 100)
	res, err := drive(ctx, r.cfg.Progress, "fsync", 1, r.lim.fsyncOps, r.lim.fsyncTime, func(context.Context, int) error {
		if _, err := f.Write(buf); err != nil {
			return err
		}
		return datasync(f)
	})
	if err != nil {
		return Row{}, err
	}
	row := Row{Case: "fsync", Group: "fsync", Subject: "fsync (100 B write + fdatasync)", Kind: KindLimit, Synced: ptr(true), Batch: 1, Writers: 1}
	res.fill(&row, 1)
	return row, nil
}
