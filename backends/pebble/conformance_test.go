package pebble_test

import (
	"context"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T) runtime.Store {
			s, err := pebble.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Reopen: func(t *testing.T, s runtime.Store) runtime.Store {
			dir := s.(*pebble.Store).Dir()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2, err := pebble.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			return s2
		},
	})
}

// flushingStore runs the suite against a WithNoSync store: ReadAll, Head
// and Wait lag acknowledged appends until a sync (documented), so each
// Append is followed by Flush, which is what makes them visible there.
type flushingStore struct{ *pebble.Store }

func (f flushingStore) Append(ctx context.Context, req runtime.AppendRequest) (runtime.AppendResult, error) {
	res, err := f.Store.Append(ctx, req)
	if err != nil {
		return res, err
	}
	return res, f.Flush(ctx)
}

func TestConformanceNoSync(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T) runtime.Store {
			s, err := pebble.Open(t.TempDir(), pebble.WithNoSync(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			return flushingStore{s}
		},
		Reopen: func(t *testing.T, s runtime.Store) runtime.Store {
			dir := s.(flushingStore).Dir()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2, err := pebble.Open(dir, pebble.WithNoSync(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			return flushingStore{s2}
		},
	})
}
