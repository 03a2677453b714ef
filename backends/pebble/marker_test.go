package pebble

import (
	"errors"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

// TestDeletionMarker: a marker holds the whole tombstone; a marker of 9
// bytes (position and mode, as written before) still decodes, and the
// store reads its tombstone from the record.
func TestDeletionMarker(t *testing.T) {
	want := runtime.Tombstone{Mode: runtime.HardDelete, Version: 7, Position: 1 << 40,
		Time: time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.UTC), Events: 6, Removed: 300}
	pos, mode, got, err := decodeDeleted(encodeDeleted(want))
	if err != nil || pos != want.Position || mode != want.Mode || got == nil || *got != want {
		t.Fatalf("decodeDeleted(encodeDeleted(%+v)) = %d, %s, %+v, %v", want, pos, mode, got, err)
	}
	full := encodeDeleted(want)
	for _, bad := range [][]byte{nil, full[:8], full[:10], full[:len(full)-1], append(full, 0), append(full[:8:8], 9)} {
		if _, _, _, err := decodeDeleted(bad); err == nil {
			t.Errorf("decodeDeleted(%x) accepted a malformed marker", bad)
		}
	}

	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := runtime.StreamID{Type: "T", ID: "a"}
	if _, err := s.Append(t.Context(), runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: []runtime.EventData{{Name: "E", Schema: 1}}}); err != nil {
		t.Fatal(err)
	}
	res, err := lifecycle.DeleteStream(t.Context(), s, st, runtime.SoftDelete)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := pebbledb.Open(dir, &pebbledb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	legacy := append(full[:8:8], byte(runtime.SoftDelete))
	copy(legacy, encodeDeleted(res.Tombstone)[:8])
	if err := db.Set(deletedKey(appendStreamKey(nil, st)), legacy, pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Append(t.Context(), runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: []runtime.EventData{{Name: "E", Schema: 1}}})
	var de *runtime.DeletedError
	if !errors.As(err, &de) || de.Tombstone.Position != res.Tombstone.Position || de.Tombstone.Events != 1 {
		t.Errorf("append after a 9-byte marker: %v; want the tombstone %+v", err, res.Tombstone)
	}
	rep, err := s.Verify(t.Context())
	if err != nil || len(rep.Problems) > 0 {
		t.Errorf("Verify with a 9-byte marker: %v, %v", rep.Problems, err)
	}
}
