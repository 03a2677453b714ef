package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// fsyncCase measures the data directory's raw fsync rate: one goroutine
// appending 100 bytes to a file and calling fdatasync, in a loop; and the
// same writes into a file already written to its full length. The first
// is what every synced append pays while Pebble's WAL file is new (the
// first memtable's worth after Open: each fdatasync also journals the
// file's new size), the second what it pays once Pebble reuses a WAL file
// it recycled. Pebble's memtables start at 256 KiB and double up to the
// store's 64 MiB, so the single-event rows from 64 writers up and every
// 100-event row flush memtables: raw Pebble as it ships then writes into
// recycled logs, the store (which does not recycle them: hard deletes) and
// the limit without recycling into new ones (rawPebbleAppend).
func (r *runner) fsyncCase(ctx context.Context) error {
	const name = "fsync"
	if !r.selected(name) || !r.has("pebble") && !r.has("postgres") {
		return nil
	}
	row, err := r.measureFsync(ctx, false)
	if err != nil {
		return err
	}
	r.add(row)
	r.fsync = &row
	over, err := r.measureFsync(ctx, true)
	if err != nil {
		return err
	}
	ratioRate(&over, row)
	r.add(over)
	return nil
}

func (r *runner) measureFsync(ctx context.Context, overwrite bool) (Row, error) {
	dir := r.tempDir("fsync")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Row{}, fmt.Errorf("bench: fsync: %w", err)
	}
	defer os.RemoveAll(dir)
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if overwrite {
		flags = os.O_CREATE | os.O_WRONLY
	}
	f, err := os.OpenFile(filepath.Join(dir, "fsync.dat"), flags, 0o644)
	if err != nil {
		return Row{}, fmt.Errorf("bench: fsync: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 100)
	if overwrite {
		// Written and synced in advance, as a recycled WAL file is.
		zeros := make([]byte, 1<<20)
		for off := int64(0); off < r.lim.fsyncOps*int64(len(buf)); off += int64(len(zeros)) {
			if _, err := f.WriteAt(zeros, off); err != nil {
				return Row{}, fmt.Errorf("bench: fsync: %w", err)
			}
		}
		if err := f.Sync(); err != nil {
			return Row{}, fmt.Errorf("bench: fsync: %w", err)
		}
	}
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
	if overwrite {
		row.Subject = "fsync into a file already written (100 B write + fdatasync)"
	}
	res.fill(&row, 1)
	return row, nil
}
