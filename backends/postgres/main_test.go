package postgres

import (
	"context"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newStore opens a store in a fresh schema and closes it when t ends.
func newStore(t testing.TB, opts ...Option) *Store {
	t.Helper()
	return openIn(t, pgtest.Schema(t), opts...)
}

// openIn opens a store in schema and closes it when t ends (a store the
// test closed itself is fine).
func openIn(t testing.TB, schema string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), pgtest.DSN(), append([]Option{WithSchema(schema)}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
