package cqrsgen_test

import (
	"testing"

	"github.com/cqrsgen/cqrsgen/internal/codegen/testmod"
)

// TestGoModTidy fails when go.mod or go.sum is not what go mod tidy
// writes: a direct requirement marked // indirect (or the reverse), a
// missing or stale go.sum line. Users read go.mod to learn what cqrsgen
// depends on.
func TestGoModTidy(t *testing.T) {
	if out, err := testmod.Go(testmod.Root(t), "mod", "tidy", "-diff"); err != nil {
		t.Fatalf("go mod tidy -diff: %v (run go mod tidy)\n%s", err, out)
	}
}
