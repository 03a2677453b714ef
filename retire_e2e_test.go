package cqrsgen_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/internal/codegen/testmod"
)

// retireV1 is a Book domain with an event, Lent, that version 2 retires.
const retireV1 = `package library

//cqrs:aggregate
type Book struct {
	Title  string
	OnLoan bool
}

//cqrs:event Book
type Added struct{ Title string }

//cqrs:event Book
type Lent struct{ To string }

func (b *Book) ApplyAdded(e Added) { b.Title = e.Title }
func (b *Book) ApplyLent(Lent)     { b.OnLoan = true }
`

// retireV2 has no Lent type any more; RETIRED stands for the directive
// line under test.
const retireV2 = `package library

//cqrs:aggregate
RETIRED
type Book struct {
	Title  string
	OnLoan bool
}

//cqrs:event Book
type Added struct{ Title string }

//cqrs:event Book
type Renamed struct{ Title string }

//cqrs:command Book
type Rename struct{ Title string }

func (b *Book) ApplyAdded(e Added)     { b.Title = e.Title }
func (b *Book) ApplyRenamed(e Renamed) { b.Title = e.Title }

func (b *Book) HandleRename(c Rename) ([]BookEvent, error) {
	return []BookEvent{Renamed{Title: c.Title}}, nil
}
`

const retireWrite = `package library

import (
	"context"
	"os"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/pebble"
)

func TestWrite(t *testing.T) {
	s, err := pebble.Open(os.Getenv("CQRS_E2E_STORE"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := NewBookRepository(s).Append(context.Background(), "b1", 0, Added{Title: "Dune"}, Lent{To: "ada"}); err != nil {
		t.Fatal(err)
	}
}
`

const retireRead = `package library

import (
	"context"
	"os"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/pebble"
)

func TestRead(t *testing.T) {
	ctx := context.Background()
	s, err := pebble.Open(os.Getenv("CQRS_E2E_STORE"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	books := NewBookRepository(s)
	b, v, err := books.Load(ctx, "b1")
	if err != nil || v != 2 || b.Title != "Dune" {
		t.Fatalf("Load = %+v, %d, %v; want Dune at version 2 (the retired Lent skipped, its version counted)", b, v, err)
	}
	if v, err := books.Execute(ctx, "b1", Rename{Title: "Dune Messiah"}); err != nil || v != 3 {
		t.Fatalf("Execute = %d, %v; want version 3", v, err)
	}
	var seen []uint64
	for env, err := range books.Events(ctx, "b1", 0) {
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, env.Version)
	}
	if len(seen) != 2 || seen[0] != 1 || seen[1] != 3 {
		t.Fatalf("Events yielded versions %v, want [1 3]: the retired event skipped", seen)
	}
}
`

// TestRetireE2E writes a stream holding an event, removes the event's
// type, and checks that the generator refuses that until the event is
// retired with //cqrs:retired, after which the old stream still loads,
// executes commands and lists its other events.
func TestRetireE2E(t *testing.T) {
	mod := testmod.New(t, "example.com/retire", map[string]string{
		"library/book.go":       retireV1,
		"library/write_test.go": retireWrite,
	})
	dir := filepath.Join(mod, "library")
	t.Setenv("CQRS_E2E_STORE", filepath.Join(t.TempDir(), "store"))
	if stderr, code := tool(t, dir); code != 0 {
		t.Fatalf("generate v1: exit %d\n%s", code, stderr)
	}
	testmod.MustGo(t, mod, "test", "-count=1", "-run", "TestWrite", "./library")
	if err := os.Remove(filepath.Join(dir, "write_test.go")); err != nil {
		t.Fatal(err)
	}

	// Lent removed without a word: the lock refuses, naming the way out.
	writeFileString(t, filepath.Join(dir, "book.go"), strings.Replace(retireV2, "RETIRED\n", "", 1))
	stderr, code := tool(t, dir)
	if code != 1 || !strings.Contains(stderr, "retire it with //cqrs:retired Lent@1 beside //cqrs:aggregate") {
		t.Fatalf("v2 without //cqrs:retired: exit %d\n%s", code, stderr)
	}

	writeFileString(t, filepath.Join(dir, "book.go"), strings.Replace(retireV2, "RETIRED", "//cqrs:retired Lent@1", 1))
	writeFileString(t, filepath.Join(dir, "read_test.go"), retireRead)
	if stderr, code := tool(t, dir); code != 0 {
		t.Fatalf("generate v2: exit %d\n%s", code, stderr)
	}
	if lock := readFile(t, filepath.Join(dir, "cqrs.lock")); !strings.Contains(lock, "retired Book Lent@1 Book {}\n") {
		t.Errorf("the lock does not record the retired event:\n%s", lock)
	}
	testmod.MustGo(t, mod, "vet", "./...")
	out := testmod.MustGo(t, mod, "test", "-count=1", "-v", "-run", "TestRead", "./library")
	if !strings.Contains(out, "--- PASS: TestRead") {
		t.Fatalf("read test did not run:\n%s", out)
	}

	// Un-retiring without restoring the type is refused too.
	writeFileString(t, filepath.Join(dir, "book.go"), strings.Replace(retireV2, "RETIRED\n", "", 1))
	if stderr, code := tool(t, dir); code != 1 || !strings.Contains(stderr, "Lent@1 was retired on Book") {
		t.Fatalf("dropping //cqrs:retired: exit %d\n%s", code, stderr)
	}
}
