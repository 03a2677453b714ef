package cqrsgen_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestProjectionCheckpoints checks, on every embedded store, what the
// projection runner relies on from checkpoints (until backends/storetest
// covers it, see notes/requests-projgen.md): a checkpoint moves back to 0
// (a rebuild) and stays there across a reopen, and names with ':' — the
// runtime's "cqrsgen:rebuild:<name>" markers, name= values like
// "bank:balances" — round-trip byte for byte without colliding with names
// they are a prefix of, up to runtime.MaxIDLength bytes.
func TestProjectionCheckpoints(t *testing.T) {
	long := "p:" + strings.Repeat("x:", (runtime.MaxIDLength-2)/2)
	long += strings.Repeat("y", runtime.MaxIDLength-len(long))
	names := []string{"bank:balances", "bank:balances:", "bank:balances:x", "cqrsgen:rebuild:bank:balances", "bank", ":", "::", "é:ü", long}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pebble")
	stores := []struct {
		name   string
		open   func(t *testing.T) runtime.Store
		reopen bool
	}{
		{"memory", func(*testing.T) runtime.Store { return memory.New() }, false},
		{"pebble", func(t *testing.T) runtime.Store {
			s, err := pebble.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, true},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t)
			for i, n := range names {
				if err := s.SaveCheckpoint(ctx, n, uint64(100+i)); err != nil {
					t.Fatalf("SaveCheckpoint(%q): %v", n, err)
				}
			}
			// Back to 0, as a rebuild does, for every other name.
			for i, n := range names {
				if i%2 == 0 {
					if err := s.SaveCheckpoint(ctx, n, 0); err != nil {
						t.Fatalf("SaveCheckpoint(%q, 0): %v", n, err)
					}
				}
			}
			check := func(when string, s runtime.Store) {
				t.Helper()
				for i, n := range names {
					want := uint64(100 + i)
					if i%2 == 0 {
						want = 0
					}
					if got, err := s.LoadCheckpoint(ctx, n); err != nil || got != want {
						t.Errorf("%s: LoadCheckpoint(%.40q) = %d, %v; want %d", when, n, got, err, want)
					}
				}
			}
			check("before reopening", s)
			if c, ok := s.(interface{ Close() error }); ok {
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if st.reopen {
				s = st.open(t)
				defer s.(interface{ Close() error }).Close()
				check("after reopening", s)
			}
		})
	}
}
