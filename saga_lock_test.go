package cqrsgen_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/internal/codegen/lock"
	"github.com/cqrsgen/cqrsgen/internal/codegen/testmod"
)

// sagaLockPackage is a saga package the saga lock test evolves: {{opts}}
// are the saga directive's options, {{fields}} its state's fields, {{extra}}
// more declarations.
const sagaLockPackage = `package hotel

import (
	"context"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
)

//cqrs:aggregate
type Room struct{ Held bool }

//cqrs:event Room
type Held struct{ Amount int64 }

func (r *Room) ApplyHeld(Held) { r.Held = true }

//cqrs:saga{{opts}}
type Flow struct {
{{fields}}
}

func (Flow) CorrelateHeld(e runtime.Envelope[Held]) (string, bool) { return e.ID, true }

func (f *Flow) OnHeld(ctx context.Context, e runtime.Envelope[Held], do *saga.Actions) error {
	return nil
}
{{extra}}`

func writeSagaLockPackage(t *testing.T, dir, opts, fields, extra string) {
	t.Helper()
	r := strings.NewReplacer("{{opts}}", opts, "{{fields}}", fields, "{{extra}}", extra)
	writeFileString(t, filepath.Join(dir, "hotel.go"), r.Replace(sagaLockPackage))
}

// TestSagaStateLock: a saga's state is under the schema lock with the
// rules and messages of events. Retyping a field without a version bump
// is refused at the field; a version bump with an upcaster from the locked
// shape passes and locks the old shape; a wrong upcaster input, a version
// going down, a renamed or removed saga are refused. (A stored version
// that nothing reads any more is refused earlier, by the generator's own
// check that every version from 1 has an upcaster.)
func TestSagaStateLock(t *testing.T) {
	mod := testmod.New(t, "example.com/hotel", map[string]string{"hotel/doc.go": "package hotel\n"})
	dir := filepath.Join(mod, "hotel")
	lockPath := filepath.Join(dir, lock.FileName)
	run := func(wantCode int, args ...string) string {
		t.Helper()
		stderr, code := tool(t, dir, args...)
		if code != wantCode {
			t.Fatalf("cqrsgen %v: exit %d, want %d; stderr:\n%s", args, code, wantCode, stderr)
		}
		return stderr
	}

	writeSagaLockPackage(t, dir, " name=hotel.booking", "\tRoom   string\n\tAmount int64", "")
	run(0)
	locked := readFile(t, lockPath)
	if want := "\nsaga   cqrsgen.saga.hotel.booking hotel.booking@1 Flow {Room:string Amount:int64}\n"; !strings.Contains(locked, want) {
		t.Fatalf("lock lacks %q:\n%s", want, locked)
	}

	// Compatible: an added field and a widened integer are recorded.
	writeSagaLockPackage(t, dir, " name=hotel.booking", "\tRoom   string\n\tAmount int64\n\tNights int32", "")
	run(0)
	compatible := readFile(t, lockPath)
	if !strings.Contains(compatible, "Flow {Room:string Amount:int64 Nights:int32}") {
		t.Fatalf("compatible change not recorded:\n%s", compatible)
	}

	// The case: Amount int64 → string, no version bump.
	fields := "\tRoom   string\n\tAmount string\n\tNights int32"
	writeSagaLockPackage(t, dir, " name=hotel.booking", fields, "")
	want := "./hotel.go:21:2: field Amount of Flow changed from int64 to string: bump version= and add a //cqrs:upcast from the old shape, or run with -accept-breaking\n"
	if stderr := run(1); stderr != want {
		t.Fatalf("retyped saga state field:\n got %q\nwant %q", stderr, want)
	}
	if readFile(t, lockPath) != compatible {
		t.Fatal("a refused change wrote the lock")
	}

	// A version bump alone leaves the stored states unread.
	writeSagaLockPackage(t, dir, " name=hotel.booking version=2", fields, "")
	if stderr := run(1); !strings.Contains(stderr, "./hotel.go:19:6: saga Flow is version 2, but no //cqrs:upcast returns Flow: instance states stored at version 1 could not be read; add //cqrs:upcast func(old FlowV1) Flow") {
		t.Fatalf("version bump without upcaster: %q", stderr)
	}

	// An upcaster whose input differs from the locked shape.
	upcast := "\ntype FlowV1 struct {\n\tRoom   string\n\tAmount %s\n\tNights int32\n}\n\n//cqrs:upcast\nfunc flowV1ToV2(old FlowV1) Flow { return Flow{Room: old.Room, Nights: old.Nights} }\n"
	writeSagaLockPackage(t, dir, " name=hotel.booking version=2", fields, fmt.Sprintf(upcast, "float64"))
	if stderr := run(1); !strings.Contains(stderr, "field Amount of FlowV1 is float64, but was stored as int64: FlowV1 must describe instance states stored as hotel.booking@1, which cqrs.lock (line 8) records differently; fix FlowV1, or run with -accept-breaking") {
		t.Fatalf("upcaster input differing from the lock: %q", stderr)
	}

	// The proper way.
	writeSagaLockPackage(t, dir, " name=hotel.booking version=2", fields, fmt.Sprintf(upcast, "int64"))
	run(0)
	got := readFile(t, lockPath)
	for _, want := range []string{
		"\nupcast cqrsgen.saga.hotel.booking hotel.booking@1 FlowV1 {Room:string Amount:int64 Nights:int32}\n",
		"\nsaga   cqrsgen.saga.hotel.booking hotel.booking@2 Flow {Room:string Amount:string Nights:int32}\n",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("lock after the version bump lacks %q:\n%s", want, got)
		}
	}
	if gen := readFile(t, filepath.Join(dir, "cqrs_gen.go")); !strings.Contains(gen, "*s = flowV1ToV2(old)") || !strings.Contains(gen, "StateVersion: 2,") {
		t.Fatalf("generated saga does not upcast version 1 states:\n%s", gen)
	}

	for _, c := range []struct{ name, opts, extra, want string }{
		{"version down", " name=hotel.booking", "",
			"./hotel.go:19:6: saga Flow is version 1, but cqrs.lock records hotel.booking@2: versions never go down; restore version=2, or run with -accept-breaking\n" +
				"./hotel.go:21:2: field Amount of Flow changed from int64 to string: bump version= and add a //cqrs:upcast from the old shape, or run with -accept-breaking\n"},
		{"renamed", " name=hotel.stay version=2", fmt.Sprintf(upcast, "int64"),
			"./hotel.go:19:6: name of saga Flow changed from \"hotel.booking\" to \"hotel.stay\": its instances in flight would no longer be found; restore name=hotel.booking on the saga, or run with -accept-breaking\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			writeSagaLockPackage(t, dir, c.opts, fields, c.extra)
			if stderr := run(1); stderr != c.want {
				t.Fatalf("\n got %q\nwant %q", stderr, c.want)
			}
			if readFile(t, lockPath) != got {
				t.Fatal("a refused change wrote the lock")
			}
		})
	}

	// A saga removed from the package.
	writeFileString(t, filepath.Join(dir, "hotel.go"), "package hotel\n\n//cqrs:aggregate\ntype Room struct{ Held bool }\n\n//cqrs:event Room\ntype Held struct{ Amount int64 }\n\nfunc (r *Room) ApplyHeld(Held) { r.Held = true }\n")
	if stderr := run(1); !strings.Contains(stderr, "saga Flow (\"hotel.booking\") is in cqrs.lock but no longer in the package: its instances in flight could no longer be driven or loaded; restore it, or run with -accept-breaking") {
		t.Fatalf("removed saga: %q", stderr)
	}
	run(0, "-accept-breaking")
	if strings.Contains(readFile(t, lockPath), "\nsaga ") {
		t.Fatal("-accept-breaking kept the removed saga in the lock")
	}
}
