package codegen

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cqrsgen/cqrsgen/internal/codegen/load"
	"github.com/cqrsgen/cqrsgen/internal/codegen/lock"
	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
	"github.com/cqrsgen/cqrsgen/internal/codegen/write"
)

// packageOutputs returns the outputs of one package: its generated file
// (or the file's removal) and, when the package has aggregates or sagas,
// its schema lock. The lock is checked against the package first: a breaking change
// is a problem unless accept is set, and then nothing is written.
func packageOutputs(pkg *load.Package, accept bool) ([]write.Output, []model.Error) {
	out, mp, errs := packageModel(pkg)
	if len(errs) > 0 || out == nil {
		return nil, errs
	}
	outs := []write.Output{*out}
	if mp == nil {
		return outs, nil // a removal: the lock stays, as a record
	}
	lk, errs := lockOutput(filepath.Join(pkg.Dir, lock.FileName), mp, accept)
	if len(errs) > 0 {
		return nil, errs
	}
	if lk != nil {
		outs = append(outs, *lk)
	}
	return outs, nil
}

// lockOutput checks mp against the lock file at path and returns the lock
// to write: nil when the package has nothing to lock and there is no lock
// yet.
func lockOutput(path string, mp *model.Package, accept bool) (*write.Output, []model.Error) {
	cur := lock.Entries(mp)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if len(cur) == 0 {
			return nil, nil
		}
		// First run: record the package as it is.
	case err != nil:
		return nil, []model.Error{{Pos: model.Pos{File: path, Line: 1, Col: 1}, Msg: "cannot read the schema lock: " + err.Error()}}
	case !accept:
		old, errs := lock.Parse(path, data)
		if len(errs) > 0 {
			return nil, errs
		}
		if errs := lock.Check(path, old, cur); len(errs) > 0 {
			return nil, errs
		}
	}
	return &write.Output{Path: path, Src: lock.Render(cur)}, nil
}
