package cqrsgen_test

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/internal/codegen/testmod"
)

// TestProjectionE2E generates a module with a domain package (with a
// same-package projection), a second aggregate in another package whose
// event shares a Go and wire name with the first's, and a read model
// spanning both from a third package; then vets it and runs a behaviour
// test of the generated projections on the memory store: dispatch by
// stream type and name, skipping without decoding, rebuild equal to a
// build, decoding errors and handler errors. The read model is generated
// first, before the packages it imports: the output must not depend on
// that order.
func TestProjectionE2E(t *testing.T) {
	files := map[string]string{}
	for _, pkg := range []string{"bank", "audit", "readmodel"} {
		maps.Copy(files, testmod.Files(t, filepath.Join("testdata", "e2e", "projection", pkg), pkg))
	}
	mod := testmod.Shared(t).Add(t, "projection", files)
	for _, pkg := range []string{"readmodel", "bank", "audit"} {
		if stderr, code := tool(t, filepath.Join(mod, pkg)); code != 0 {
			t.Fatalf("generate %s: exit %d\n%s", pkg, code, stderr)
		}
	}
	first, err := os.ReadFile(filepath.Join(mod, "readmodel", "cqrs_gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	// Once its imports are generated, the read model's output is the same,
	// and -check agrees everywhere.
	for _, pkg := range []string{"readmodel", "bank", "audit"} {
		if stderr, code := tool(t, filepath.Join(mod, pkg), "-check"); code != 0 {
			t.Errorf("-check %s after generating every package: exit %d\n%s", pkg, code, stderr)
		}
	}
	if again, _ := os.ReadFile(filepath.Join(mod, "readmodel", "cqrs_gen.go")); string(again) != string(first) {
		t.Errorf("read model output changed:\n%s", diff(string(first), string(again)))
	}
	testmod.MustGo(t, mod, "vet", "./...")
	out := testmod.MustGo(t, mod, "test", "-race", "-count=1", "-v", "./...")
	for _, name := range []string{"TestGeneratedAPI", "TestBuildRebuildAndBuildOnce", "TestCorruptRecordStopsWithoutRetry", "TestHandlerErrorIsRetriedThenStops"} {
		if !strings.Contains(out, "--- PASS: "+name) {
			t.Errorf("%s did not pass:\n%s", name, out)
		}
	}
}
