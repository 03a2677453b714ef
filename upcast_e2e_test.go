package cqrsgen_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/internal/codegen/testmod"
)

// TestUpcastE2E writes events and snapshots with generated code of schema
// version 1 into a Pebble store, evolves the package to version 2 (a
// version bump with an upcaster, a renamed event, a new state shape),
// regenerates, and reads the same store back through Load and Events:
// only current types, the old snapshot ignored and the state rebuilt from
// events. On the way, the version 2 package without its upcaster is
// refused by the generator, and the lock written by version 1 accepts the
// upcaster's input shape.
func TestUpcastE2E(t *testing.T) {
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join("testdata", "e2e", "upcast", filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	dir := testmod.Shared(t).Add(t, "upcast/bank", testmod.Files(t, filepath.Join("testdata", "e2e", "upcast", "v1"), "."))
	t.Setenv("CQRS_E2E_STORE", filepath.Join(t.TempDir(), "store"))

	if stderr, code := tool(t, dir); code != 0 {
		t.Fatalf("generate v1: exit %d\n%s", code, stderr)
	}
	testmod.MustGo(t, dir, "test", "-count=1", "-run", "TestWriteV1", ".")

	// Version 2 without the upcaster of Deposited: a gap, nothing written.
	v2 := read("v2/account.go")
	i := strings.Index(v2, "//cqrs:upcast\nfunc depositedV1ToV2")
	if i < 0 {
		t.Fatal("v2/account.go lacks the upcaster")
	}
	writeFileString(t, filepath.Join(dir, "account.go"), v2[:i]+strings.Replace(v2[i:], "//cqrs:upcast\n", "", 1))
	if err := os.Remove(filepath.Join(dir, "write_test.go")); err != nil {
		t.Fatal(err)
	}
	stderr, code := tool(t, dir)
	if code != 1 || !strings.Contains(stderr, "event Deposited is version 2, but no //cqrs:upcast returns Deposited") {
		t.Fatalf("v2 without upcaster: exit %d\n%s", code, stderr)
	}

	// Version 2 with its upcasters.
	writeFileString(t, filepath.Join(dir, "account.go"), v2)
	writeFileString(t, filepath.Join(dir, "read_test.go"), read("v2/read_test.go"))
	if stderr, code := tool(t, dir); code != 0 {
		t.Fatalf("generate v2: exit %d\n%s", code, stderr)
	}
	lock := readFile(t, filepath.Join(dir, "cqrs.lock"))
	for _, want := range []string{
		"upcast bank.account bank.account.deposited@1 DepositedV1 {Amount:int64}",
		"upcast bank.account bank.account.noted@1 NotedV1 {Note:string}",
		"event  bank.account bank.account.deposited@2 Deposited {Cents:int64 Currency:string}",
	} {
		if !strings.Contains(lock, want) {
			t.Errorf("lock lacks %q:\n%s", want, lock)
		}
	}
	testmod.MustGo(t, dir, "vet", ".")
	out := testmod.MustGo(t, dir, "test", "-count=1", "-v", "-run", "TestReadV2", ".")
	if !strings.Contains(out, "--- PASS: TestReadV2") {
		t.Fatalf("read test did not run:\n%s", out)
	}
}
