package cqrsgen_test

import (
	"os"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/internal/codegen/testmod"
)

// TestShredE2E generates code for the golden shred package (fields tagged
// pii) outside this repository, vets it and runs the behaviour tests of
// testdata/e2e/shred on the memory and Pebble stores.
func TestShredE2E(t *testing.T) {
	src, err := os.ReadFile("testdata/golden/shred/member.go")
	if err != nil {
		t.Fatal(err)
	}
	files := testmod.Files(t, "testdata/e2e/shred", ".")
	files["member.go"] = string(src)
	dir := testmod.Shared(t).Add(t, "shred", files)
	if stderr, code := tool(t, dir); code != 0 {
		t.Fatalf("generate: exit %d\n%s", code, stderr)
	}
	testmod.MustGo(t, dir, "vet", "./...")
	out := testmod.MustGo(t, dir, "test", "-race", "-count=1", "-v", "./...")
	if !strings.Contains(out, "--- PASS: TestShred") {
		t.Fatalf("TestShred did not run:\n%s", out)
	}
}
