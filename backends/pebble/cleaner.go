package pebble

import (
	"errors"
	"io/fs"
	"strings"
	"sync"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Write-ahead logs and hard deletes. Pebble keeps the logs of flushed
// memtables for reuse (recycling): a kept log still holds every byte
// written to it, and a reused one is overwritten from its start without
// being truncated, so its tail can still hold older bytes. Writing into a
// recycled log is cheaper (its fdatasync need not journal a new size), so
// the store recycles, and a hard delete pays instead: purgeLogs, after the
// delete committed, marks every log of the directory as doomed, flushes
// (which makes them all obsolete) and removes them. Pebble still lists the
// removed ones for reuse; walFS turns the reuse of a doomed or missing log
// into the creation of a new file, which Pebble's vfs.FS contract allows
// ("It is acceptable for the implementation to choose not to reuse
// oldname, and simply create the file with newname -- in this case the
// implementation should delete oldname"; Pebble stats the file it gets
// for its size, and its cleaner ignores a file already gone). See
// docs/storage.md, "Deletes".

// walFS wraps the file system that holds the store's write-ahead logs.
type walFS struct {
	vfs.FS
	dir string // the directory of the logs

	// purge serializes purgeLogs: a flush started by one must not make a
	// log doomed by another look obsolete while it is still written.
	purge sync.Mutex

	mu     sync.Mutex
	doomed map[string]struct{} // paths of logs that must not be reused
}

func newWALFS(inner vfs.FS, dir string) *walFS {
	return &walFS{FS: inner, dir: dir, doomed: map[string]struct{}{}}
}

// ReuseForWrite implements vfs.FS: it reuses oldname as Pebble asks,
// unless oldname is doomed (removed first) or gone (a purge removed it),
// in which case it creates newname afresh.
func (w *walFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.doomed[oldname]; !ok {
		f, err := w.FS.ReuseForWrite(oldname, newname, category)
		if !errors.Is(err, fs.ErrNotExist) {
			return f, err
		}
	} else {
		if err := w.FS.Remove(oldname); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		delete(w.doomed, oldname)
	}
	return w.FS.Create(newname, category)
}

// wrapWALFS puts a walFS around the file system of each directory
// Pebble writes logs to.
func (s *Store) wrapWALFS(dir string, popts *pebbledb.Options) {
	if popts.WALDir != "" {
		dir = popts.WALDir
	}
	w := newWALFS(popts.FS, dir)
	popts.FS = w
	s.walFS = []*walFS{w}
	if f := popts.WALFailover; f != nil {
		sec := f.Secondary
		if sec.FS == nil {
			sec.FS = w.FS
		}
		ws := newWALFS(sec.FS, sec.Dirname)
		sec.FS = ws
		c := *f
		c.Secondary = sec
		popts.WALFailover = &c
		s.walFS = append(s.walFS, ws)
	}
}

// doom marks every log now in the directory as doomed: none is reused
// from now on, and removeDoomed removes them.
func (w *walFS) doom() error {
	names, err := w.FS.List(w.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a failover directory not made yet
	}
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range names {
		if strings.HasSuffix(n, ".log") {
			w.doomed[w.FS.PathJoin(w.dir, n)] = struct{}{}
		}
	}
	return nil
}

// removeDoomed removes the doomed logs and syncs the directory. The
// caller has made them obsolete (by a flush after doom): Pebble either
// lists them for reuse, which ReuseForWrite handles, or deletes them too,
// and its cleaner ignores a file already gone.
func (w *walFS) removeDoomed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p := range w.doomed {
		if err := w.FS.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		delete(w.doomed, p)
	}
	return syncDir(w.FS, w.dir)
}

// purgeLogs leaves no write-ahead log holding bytes written before it was
// called (those of a committed hard delete's stream): it dooms every log,
// flushes all memtables (a flush always switches to a new log, created
// afresh since every log it could reuse is doomed, and once it is done every
// older log is obsolete), then removes the doomed logs.
func (s *Store) purgeLogs() error {
	for _, w := range s.walFS {
		w.purge.Lock()
		defer w.purge.Unlock()
		if err := w.doom(); err != nil {
			return err
		}
	}
	if err := s.db.Flush(); err != nil {
		return err
	}
	for _, w := range s.walFS {
		if err := w.removeDoomed(); err != nil {
			return err
		}
	}
	return nil
}
