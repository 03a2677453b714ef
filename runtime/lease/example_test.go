package lease_test

import (
	"fmt"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime/instrument"
	"github.com/cqrsgen/cqrsgen/runtime/lease"
)

// Of finds the Leaser behind a store, through wrappers such as
// instrument.Store. The memory and Pebble stores have none (one process
// owns them), so the runners run every projection and saga unleased; a
// *postgres.Store is a Leaser.
func ExampleOf() {
	_, ok := lease.Of(memory.New())
	fmt.Println("memory:", ok)
	_, ok = lease.Of(instrument.New(memory.New(), nil))
	fmt.Println("instrumented memory:", ok)

	// Output:
	// memory: false
	// instrumented memory: false
}
