package write

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFormatFailureWritesNothing(t *testing.T) {
	dir := t.TempDir()
	outs := []Output{
		{Path: filepath.Join(dir, "a.go"), Src: []byte("package a\nvar  x = 1\n")},
		{Path: filepath.Join(dir, "b.go"), Src: []byte("package b\nfunc {\n")},
	}
	if err := Format(outs); err == nil {
		t.Fatal("Format accepted invalid source")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("files written: %v", entries)
	}
}

func TestApply(t *testing.T) {
	dir := t.TempDir()
	same, changed, gone, fresh := filepath.Join(dir, "same.go"), filepath.Join(dir, "changed.go"), filepath.Join(dir, "gone.go"), filepath.Join(dir, "new.go")
	for _, p := range []string{same, changed, gone} {
		if err := os.WriteFile(p, []byte("package p\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(same, old, old); err != nil {
		t.Fatal(err)
	}
	outs := []Output{
		{Path: same, Src: []byte("package p\n")},
		{Path: changed, Src: []byte("package p\n\nvar X = 1\n")},
		{Path: gone},
		{Path: fresh, Src: []byte("package p\n")},
		{Path: filepath.Join(dir, "never.go")}, // obsolete and absent: nothing to do
	}
	want := []Change{Unchanged, Updated, Removed, Created, Unchanged}

	check, err := Check(outs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range check {
		if r.Change != want[i] {
			t.Errorf("Check %s: %v, want %v", r.Path, r.Change, want[i])
		}
	}
	if _, err := os.Stat(fresh); err == nil {
		t.Fatal("Check wrote a file")
	}

	res, err := Apply(outs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Change != want[i] {
			t.Errorf("Apply %s: %v, want %v", r.Path, r.Change, want[i])
		}
	}
	if fi, _ := os.Stat(same); !fi.ModTime().Equal(old) {
		t.Error("unchanged file was rewritten")
	}
	if data, _ := os.ReadFile(changed); string(data) != "package p\n\nvar X = 1\n" {
		t.Errorf("changed file holds %q", data)
	}
	if fi, _ := os.Stat(changed); fi.Mode().Perm() != 0o600 {
		t.Errorf("rewrite changed the mode to %v", fi.Mode().Perm())
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Error("obsolete file not removed")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("new file not written")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("left %d entries (temporary files?): %v", len(entries), entries)
	}
}
