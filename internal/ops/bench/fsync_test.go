package bench

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestFsyncCase checks the disk rows: one for writes that extend the file
// and one for writes into a file written in advance, each with every
// operation done and synced, the second related to the first, and no file
// left behind.
func TestFsyncCase(t *testing.T) {
	root := t.TempDir()
	r := &runner{cfg: Config{Progress: nopProgress{}, Stores: []string{"pebble"}}, root: root,
		lim: limits{fsyncOps: 50, fsyncTime: time.Hour}}
	if err := r.fsyncCase(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(r.rows) != 2 {
		t.Fatalf("%d rows, want 2", len(r.rows))
	}
	extend, over := r.rows[0], r.rows[1]
	for _, row := range r.rows {
		if row.Case != "fsync" || row.Kind != KindLimit || row.Synced == nil || !*row.Synced || row.Ops != 50 || row.EventsPerSec <= 0 {
			t.Errorf("row %+v: want a synced fsync limit row of 50 operations", row)
		}
	}
	if r.fsync == nil || r.fsync.Subject != extend.Subject {
		t.Errorf("the limit of the other stores is %v, want the extending row", r.fsync)
	}
	if over.Subject == extend.Subject || over.Limit != extend.Subject || over.Ratio <= 0 {
		t.Errorf("overwrite row %q relates to %q (%.2fx), want its own subject related to %q", over.Subject, over.Limit, over.Ratio, extend.Subject)
	}
	if left, err := os.ReadDir(root); err != nil || len(left) != 0 {
		t.Errorf("left behind in the data directory: %v, %v", left, err)
	}
}
