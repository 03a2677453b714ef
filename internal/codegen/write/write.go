// Package write puts generated files on disk, all or nothing: every output
// is formatted first and nothing is written if any fails; a file whose
// bytes are unchanged is not rewritten (its mtime and the build cache
// stay); obsolete generated files are removed. Check reports what Apply
// would change without touching anything.
package write

import (
	"bytes"
	"errors"
	"fmt"
	"go/format"
	"io/fs"
	"os"
	"path/filepath"
)

// Output is one generated file. A nil Src means the file is obsolete (its
// package no longer has directives) and is to be removed if present.
type Output struct {
	Path string
	Src  []byte
}

// Format gofmts every Go output in place. If any fails, it returns an error
// naming each failure and leaves outs unusable for writing.
func Format(outs []Output) error {
	var errs []error
	for i := range outs {
		if outs[i].Src == nil || filepath.Ext(outs[i].Path) != ".go" {
			continue // removals, and non-Go files (cqrs.lock)
		}
		src, err := format.Source(outs[i].Src)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: generated source does not format (a cqrsgen bug): %w", outs[i].Path, err))
			continue
		}
		outs[i].Src = src
	}
	return errors.Join(errs...)
}

// Change says what Apply does (or would do) to one path.
type Change int

// The changes Apply can make.
const (
	Unchanged Change = iota
	Created
	Updated
	Removed
)

func (c Change) String() string {
	return [...]string{"unchanged", "created", "updated", "removed"}[c]
}

// Result is the change to one output.
type Result struct {
	Path   string
	Change Change
}

// Check compares outs with the disk and reports the change Apply would
// make to each, writing nothing.
func Check(outs []Output) ([]Result, error) {
	var res []Result
	for _, o := range outs {
		old, err := os.ReadFile(o.Path)
		exists := err == nil
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		c := Unchanged
		switch {
		case o.Src == nil && exists:
			c = Removed
		case o.Src == nil:
		case !exists:
			c = Created
		case !bytes.Equal(old, o.Src):
			c = Updated
		}
		res = append(res, Result{Path: o.Path, Change: c})
	}
	return res, nil
}

// Apply makes the disk match outs: it writes new and changed files
// (through a temporary file renamed into place, so a reader never sees a
// half-written file), leaves unchanged ones alone and removes obsolete
// ones. It returns what it did.
func Apply(outs []Output) ([]Result, error) {
	res, err := Check(outs)
	if err != nil {
		return nil, err
	}
	for i, r := range res {
		switch r.Change {
		case Created, Updated:
			if err := writeFile(r.Path, outs[i].Src); err != nil {
				return res[:i], err
			}
		case Removed:
			if err := os.Remove(r.Path); err != nil {
				return res[:i], err
			}
		}
	}
	return res, nil
}

func writeFile(path string, src []byte) error {
	perm := fs.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cqrsgen-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(src); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
