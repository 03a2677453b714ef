package memory_test

import (
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
)

func TestRetention(t *testing.T) {
	storetest.RunRetention(t, storetest.RetentionFactory{
		Open: func(t *testing.T, ttl time.Duration, now func() time.Time) runtime.Store {
			return memory.New(memory.WithIdempotencyTTL(ttl), memory.WithClock(now))
		},
	})
}
