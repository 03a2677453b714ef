package cqrsgen_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/internal/codegen/testmod"
)

// TestSagaStateE2E leaves saga instances in flight in a Pebble store with
// generated code whose state has Amount int64, changes it to a string,
// and resumes them: without a version bump the generator refuses the
// change (the lock), and with version=2 and an upcaster the regenerated
// saga finishes both instances, one completed and one compensated.
func TestSagaStateE2E(t *testing.T) {
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join("testdata", "e2e", "sagastate", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	mod := testmod.New(t, "example.com/hotel", map[string]string{
		"hotel/domain.go":     read("domain.go.txt"),
		"hotel/booking.go":    read("v1.go.txt"),
		"hotel/start_test.go": read("start_test.go.txt"),
	})
	dir := filepath.Join(mod, "hotel")
	t.Setenv("CQRS_E2E_STORE", filepath.Join(t.TempDir(), "store"))
	if stderr, code := tool(t, dir); code != 0 {
		t.Fatalf("generate v1: exit %d\n%s", code, stderr)
	}
	testmod.MustGo(t, mod, "test", "-count=1", "-run", "TestStartV1", "./hotel")
	if err := os.Remove(filepath.Join(dir, "start_test.go")); err != nil {
		t.Fatal(err)
	}

	// The new state without a version bump: refused, nothing written.
	v2 := read("v2.go.txt")
	unversioned := strings.Replace(v2, " version=2", "", 1)
	unversioned = unversioned[:strings.Index(unversioned, "// BookingV1")] + unversioned[strings.Index(unversioned, "func (Booking) CorrelateRequested"):]
	writeFileString(t, filepath.Join(dir, "booking.go"), unversioned)
	gen := readFile(t, filepath.Join(dir, "cqrs_gen.go"))
	stderr, code := tool(t, dir)
	if code != 1 || !strings.Contains(stderr, "field Amount of Booking changed from int64 to string: bump version= and add a //cqrs:upcast from the old shape, or run with -accept-breaking") {
		t.Fatalf("unversioned state change: exit %d\n%s", code, stderr)
	}
	if readFile(t, filepath.Join(dir, "cqrs_gen.go")) != gen {
		t.Fatal("a refused change rewrote cqrs_gen.go")
	}

	writeFileString(t, filepath.Join(dir, "booking.go"), v2)
	writeFileString(t, filepath.Join(dir, "finish_test.go"), read("finish_test.go.txt"))
	if stderr, code := tool(t, dir); code != 0 {
		t.Fatalf("generate v2: exit %d\n%s", code, stderr)
	}
	if lock := readFile(t, filepath.Join(dir, "cqrs.lock")); !strings.Contains(lock, "upcast cqrsgen.saga.hotel.booking hotel.booking@1 BookingV1 {Room:string Card:string Amount:int64}") {
		t.Fatalf("lock lacks the version 1 state:\n%s", lock)
	}
	out := testmod.MustGo(t, mod, "test", "-count=1", "-v", "-run", "TestFinishV2", "./hotel")
	if !strings.Contains(out, "--- PASS: TestFinishV2") {
		t.Fatalf("finish test did not run:\n%s", out)
	}
}
