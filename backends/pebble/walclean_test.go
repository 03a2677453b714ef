package pebble

import (
	"context"
	"strings"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

// TestRecycledLogsOfOlderBuild: a store written by a build that recycled
// write-ahead logs (Pebble's default cleaner) may hold a kept log with a
// stream's bytes; once reopened by this build, a hard delete of that
// stream leaves no file holding them.
func TestRecycledLogsOfOlderBuild(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	marker := []byte("older-build-personal-data-c41d")
	doomed := runtime.StreamID{Type: "User", ID: "u-1"}
	recycling := WithPebbleOptions(func(o *pebbledb.Options) { o.Cleaner = pebbledb.DeleteCleaner{} })
	s := openT(t, dir, recycling)
	if _, err := s.Append(ctx, runtime.AppendRequest{Stream: doomed, Expected: runtime.NoStream,
		Events: []runtime.EventData{{Name: "E", Schema: 1, Data: marker}}}); err != nil {
		t.Fatal(err)
	}
	// The flush makes the log obsolete; Pebble keeps it for reuse.
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	logs := 0
	for _, f := range filesHolding(t, dir, map[string][]byte{"the marker": marker}) {
		if strings.Contains(f, ".log ") {
			logs++
		}
	}
	if logs == 0 {
		t.Fatal("no log file holds the marker before the delete: the test checks nothing")
	}
	s = openT(t, dir)
	if _, err := lifecycle.DeleteStream(ctx, s, doomed, runtime.HardDelete); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if files := filesHolding(t, dir, map[string][]byte{"the marker": marker}); len(files) > 0 {
		t.Errorf("after the hard delete by this build, files still hold the deleted bytes: %v", files)
	}
}
