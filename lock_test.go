package cqrsgen_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/internal/codegen"
	"github.com/cqrsgen/cqrsgen/internal/codegen/lock"
	"github.com/cqrsgen/cqrsgen/internal/codegen/testmod"
)

const lockGoldenName = "cqrs.lock.golden"

// TestLockGolden compares the schema lock generated for every
// testdata/golden/<case> with <case>/cqrs.lock.golden (-update rewrites
// it), twice, so the lock is deterministic too.
func TestLockGolden(t *testing.T) {
	for _, name := range cases(t, "testdata/golden") {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "golden", name)
			got := generateFile(t, dir, lock.FileName)
			if again := generateFile(t, dir, lock.FileName); !bytes.Equal(got, again) {
				t.Fatalf("second run differs:\n%s", diff(string(got), string(again)))
			}
			golden := filepath.Join(dir, lockGoldenName)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestLockGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs (-want +got):\n%s", golden, diff(string(want), string(got)))
			}
		})
	}
}

// lockStage makes dir hold the package of stage name of the lock test,
// testdata/e2e/lock/<name>: every .go file of the previous stage but
// doc.go goes, the stage's files come in.
func lockStage(t *testing.T, dir, name string) {
	t.Helper()
	old, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range old {
		if filepath.Base(f) != "doc.go" && filepath.Base(f) != codegen.DefaultOutput {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	for rel, src := range testmod.Files(t, filepath.Join("testdata", "e2e", "lock", name), ".") {
		writeFileString(t, filepath.Join(dir, rel), src)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestLockBehaviour drives the command through every lock outcome, on the
// stages of testdata/e2e/lock (real packages, so gofmt sees them): first
// run writes the lock; unchanged package leaves it alone; a compatible
// change is stale for -check and rewritten by a run; an incompatible one
// is a positioned error that writes nothing; -accept-breaking accepts it;
// a version bump with an upcaster from the locked shape passes and locks
// the old shape too; dropping that upcaster later is an error at the lock.
func TestLockBehaviour(t *testing.T) {
	dir := testmod.Shared(t).Add(t, "lock/account", map[string]string{"doc.go": "package account\n"})
	lockPath := filepath.Join(dir, lock.FileName)
	gen := filepath.Join(dir, codegen.DefaultOutput)

	run := func(wantCode int, args ...string) string {
		t.Helper()
		stderr, code := tool(t, dir, args...)
		if code != wantCode {
			t.Fatalf("cqrsgen %v: exit %d, want %d; stderr:\n%s", args, code, wantCode, stderr)
		}
		return stderr
	}

	// First run: no lock yet, -check says it would be created.
	lockStage(t, dir, "v1")
	if stderr := run(1, "-check"); !strings.Contains(stderr, "./cqrs.lock: stale: go generate would have created it") {
		t.Fatalf("-check without a lock: %q", stderr)
	}
	run(0)
	first := readFile(t, lockPath)
	for _, want := range []string{lock.Header + "\n", "\nstate  bank.account Account {Balance:int64}\n", "\nevent  bank.account bank.account.deposited@1 Deposited {Amount:int64}\n"} {
		if !strings.Contains(first, want) {
			t.Fatalf("lock lacks %q:\n%s", want, first)
		}
	}
	run(0, "-check")

	// Unchanged: not rewritten.
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(lockPath, old, old); err != nil {
		t.Fatal(err)
	}
	run(0)
	if fi, err := os.Stat(lockPath); err != nil || !fi.ModTime().Equal(old) {
		t.Fatalf("unchanged lock was rewritten (%v)", err)
	}

	// Compatible: an added field and a widened integer.
	lockStage(t, dir, "compatible")
	if stderr := run(1, "-check"); !strings.Contains(stderr, "./cqrs.lock: stale: go generate would have updated it") {
		t.Fatalf("-check with a compatible change: %q", stderr)
	}
	if readFile(t, lockPath) != first {
		t.Fatal("-check wrote the lock")
	}
	run(0)
	if got := readFile(t, lockPath); !strings.Contains(got, "deposited@1 Deposited {Amount:int64 Reference:string}") {
		t.Fatalf("compatible change not recorded:\n%s", got)
	}
	compatible := readFile(t, lockPath)
	genBefore := readFile(t, gen)

	// Incompatible: a retyped field, without a version bump.
	lockStage(t, dir, "incompatible")
	want := "./account.go:8:2: field Amount of Deposited changed from int64 to string: bump version= and add a //cqrs:upcast from the old shape, or run with -accept-breaking\n"
	if stderr := run(1); stderr != want {
		t.Fatalf("incompatible change:\n got %q\nwant %q", stderr, want)
	}
	if stderr := run(1, "-check"); stderr != want {
		t.Fatalf("incompatible change with -check:\n got %q\nwant %q", stderr, want)
	}
	if readFile(t, lockPath) != compatible || readFile(t, gen) != genBefore {
		t.Fatal("an incompatible change wrote files")
	}

	// Accepted deliberately.
	run(0, "-accept-breaking")
	if got := readFile(t, lockPath); !strings.Contains(got, "deposited@1 Deposited {Amount:string Reference:string}") {
		t.Fatalf("-accept-breaking did not rewrite the lock:\n%s", got)
	}
	run(0, "-check")

	// The proper way: version 2 and an upcaster whose input is the
	// locked version 1 shape. A wrong input shape is refused first.
	lockStage(t, dir, "wrongupcast")
	if stderr := run(1); !strings.Contains(stderr, "field Amount of DepositedV1 is int64, but was stored as string: DepositedV1 must describe events stored as bank.account.deposited@1") {
		t.Fatalf("upcaster input differing from the lock: %q", stderr)
	}
	lockStage(t, dir, "v2")
	run(0)
	got := readFile(t, lockPath)
	for _, want := range []string{
		"\nupcast bank.account bank.account.deposited@1 DepositedV1 {Amount:string Reference:string}\n",
		"\nevent  bank.account bank.account.deposited@2 Deposited {Cents:int64 Reference:string}\n",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("lock after the version bump lacks %q:\n%s", want, got)
		}
	}

	// Replacing the upcaster of version 1 by one of another stored form
	// leaves bank.account.deposited@1 unread: breaking, reported at the
	// lock's line.
	lockStage(t, dir, "rename")
	line := 1 + strings.Count(got[:strings.Index(got, "upcast bank.account bank.account.deposited@1")], "\n")
	want = fmt.Sprintf("./cqrs.lock:%d:1: bank.account.deposited@1 (upcaster input DepositedV1) is in cqrs.lock but nothing in the package reads bank.account.deposited@1 any more: events stored so could no longer be decoded; restore the event or its //cqrs:upcast, or run with -accept-breaking\n", line)
	if stderr := run(1); stderr != want {
		t.Fatalf("dropped upcaster:\n got %q\nwant %q", stderr, want)
	}
}

func writeFileString(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
