package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// FormatVersion is the version of the key layout and envelopes this build
// writes (docs/storage.md). Open refuses a store written with another
// version. Version 2 moved a record's stream version and global position to
// the end of its envelope, at fixed width (version 1 is not readable).
const FormatVersion = 2

// Errors returned by Open. Each is wrapped with the directory concerned.
var (
	// ErrLocked reports a directory already opened by this or another
	// process.
	ErrLocked = errors.New("cqrsgen/pebble: store directory already open")
	// ErrNotStore reports a directory that holds something other than a
	// cqrsgen Pebble store.
	ErrNotStore = errors.New("cqrsgen/pebble: not a store directory")
	// ErrFormat reports a store written in a format this build cannot
	// read.
	ErrFormat = errors.New("cqrsgen/pebble: incompatible store format")
	// ErrFailed reports a store that met a fatal Pebble error (a failed
	// WAL write or sync, a failed MANIFEST update). Every call after it
	// fails; reopen the store to recover from the last durable state.
	ErrFailed = errors.New("cqrsgen/pebble: store failed")
)

// Store is a durable event store on Pebble. It satisfies runtime.Store; all
// methods are safe for concurrent use. Reads go to the database directly,
// bounded by the durable watermark; every mutation (appends, snapshots,
// checkpoints, idempotency records) goes through the write pipeline (see
// pipeline), which group-commits them with one fsync per group.
//
// If Pebble reports a fatal error (it calls Logger.Fatalf, which by
// default exits the process), the store logs it at error level, refuses
// every later call with an error wrapping ErrFailed, and never
// acknowledges the append whose commit failed.
type Store struct {
	dir  string
	db   *pebbledb.DB
	lock *pebbledb.Lock
	opts options

	// mu guards closed; direct database reads hold it shared so that Close
	// cannot close the database under them.
	mu     sync.RWMutex
	closed bool

	itersMu sync.Mutex
	iters   map[*trackedIter]struct{}

	// pipeline is the write path: every mutation goes through it.
	pipeline

	fatal atomic.Pointer[error]

	// walFS wraps the file systems of the write-ahead logs (the primary
	// directory's, then a failover directory's), for purgeLogs.
	walFS []*walFS

	// snaps records which streams may have a snapshot (snapset.go).
	snaps snapSet
	// snapGet, set by tests before use, runs before each snapshot Get of
	// LoadSnapshot.
	snapGet func()

	retention retention // retention.go
	// keyFiles holds crypto-shredding's data keys (keys.go).
	keyFiles keyFiles
}

var _ runtime.Store = (*Store)(nil)

// Open opens the store in dir, creating the directory and the store if
// needed. It fails with an error wrapping ErrLocked when dir is already open
// (in this process or another), ErrNotStore when dir holds other files or
// another database, and ErrFormat when the store was written in another
// format version (see FormatVersion).
func Open(dir string, opts ...Option) (*Store, error) {
	o := defaultOptions()
	for _, f := range opts {
		f(&o)
	}
	if err := checkDir(o, dir); err != nil {
		return nil, err
	}
	lock, err := pebbledb.LockDirectory(dir, o.fs)
	if err != nil {
		return nil, fmt.Errorf("%w: %q (in this or another process): %v", ErrLocked, dir, err)
	}
	s := &Store{
		dir:   dir,
		lock:  lock,
		opts:  o,
		iters: make(map[*trackedIter]struct{}),
		pipeline: pipeline{
			wake:     make(chan struct{}, 1),
			done:     make(chan struct{}),
			closedCh: make(chan struct{}),
		},
	}
	popts := &pebbledb.Options{
		FS:                 o.fs,
		FormatMajorVersion: pebbledb.FormatNewest,
		MemTableSize:       o.memTableSize,
		Logger:             &logger{s: s, l: o.logger},
		Lock:               lock,
	}
	popts.EnsureDefaults()
	if o.tune != nil {
		o.tune(popts)
	}
	s.wrapWALFS(dir, popts)
	if popts.Cache == nil {
		cache := pebbledb.NewCache(CacheCapacity(o.cacheSize, popts))
		defer cache.Unref()
		popts.Cache = cache
	}
	db, err := pebbledb.Open(dir, popts)
	if err != nil {
		_ = lock.Close()
		if strings.Contains(err.Error(), "format major version") {
			return nil, fmt.Errorf("%w: %q: %v", ErrFormat, dir, err)
		}
		return nil, fmt.Errorf("cqrsgen/pebble: open %q: %w", dir, err)
	}
	s.db = db
	err = s.load()
	if err == nil {
		err = s.snaps.build(db, s.ctr.Snapshots)
	}
	if err != nil {
		_ = db.Close()
		_ = lock.Close()
		return nil, err
	}
	s.w = &writer{s: s, heads: make(map[string]*headEntry), pos: s.acked, ctr: s.ctr,
		pipe: make(chan *pending, 256)}
	go s.run()
	return s, nil
}

// checkDir refuses directories that are not (and cannot become) a store.
func checkDir(o options, dir string) error {
	names, err := o.fs.List(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if err := o.fs.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("cqrsgen/pebble: create %q: %w", dir, err)
			}
			return nil
		}
		return fmt.Errorf("cqrsgen/pebble: cannot read store directory %q: %w", dir, err)
	}
	if len(names) == 0 {
		return nil
	}
	for _, n := range names {
		if n == "CURRENT" || n == "LOCK" || strings.HasPrefix(n, "MANIFEST-") ||
			strings.HasPrefix(n, "OPTIONS-") || strings.HasPrefix(n, "marker.") {
			return nil
		}
	}
	return fmt.Errorf("%w: %q holds other files (for example %q)", ErrNotStore, dir, names[0])
}

// load checks the format key (writing it for a new store) and restores the
// counters, the head position and the watermarks.
func (s *Store) load() error {
	v, err := s.get(keyFormat)
	switch {
	case errors.Is(err, runtime.ErrNotFound):
		empty, err := s.isEmpty()
		if err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("%w: %q is a Pebble database without a cqrsgen format key", ErrNotStore, s.dir)
		}
		b := s.db.NewBatch()
		defer b.Close()
		_ = b.Set(keyFormat, binary.AppendUvarint(nil, FormatVersion), nil)
		_ = b.Set(keyCounters, encodeCounters(counters{}), nil)
		if err := b.Commit(pebbledb.Sync); err != nil {
			return fmt.Errorf("cqrsgen/pebble: initialise %q: %w", s.dir, err)
		}
		return nil
	case err != nil:
		return err
	}
	ver, n := binary.Uvarint(v)
	if n <= 0 || n != len(v) {
		return fmt.Errorf("%w: %q: unreadable format key %x", ErrNotStore, s.dir, v)
	}
	if ver != FormatVersion {
		return fmt.Errorf("%w: %q was written in format version %d; this build reads format version %d", ErrFormat, s.dir, ver, FormatVersion)
	}
	cv, err := s.get(keyCounters)
	if err != nil {
		return fmt.Errorf("cqrsgen/pebble: %q: counters: %w", s.dir, err)
	}
	c, err := decodeCounters(cv)
	if err != nil {
		return &runtime.DecodeError{What: "store counters", Err: fmt.Errorf("%s: %w", s.dir, err)}
	}
	s.ctr = c
	if err := s.loadTruncated(); err != nil {
		return err
	}
	head, err := s.lastPosition()
	if err != nil {
		return err
	}
	s.acked, s.durable = head, head
	return nil
}

func (s *Store) isEmpty() (bool, error) {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return false, err
	}
	empty := !it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return false, err
	}
	return empty, nil
}

func (s *Store) lastPosition() (uint64, error) {
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{tagEvent}, UpperBound: []byte{tagEvent + 1}})
	if err != nil {
		return 0, err
	}
	var head uint64
	if it.Last() {
		k := it.Key()
		if len(k) != 9 {
			_ = it.Close()
			return 0, &runtime.DecodeError{What: "event key", Err: fmt.Errorf("%s: malformed key %x", s.dir, k)}
		}
		head = binary.BigEndian.Uint64(k[1:])
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, err
	}
	return head, nil
}

// get returns a copy of the value at key or an error wrapping
// runtime.ErrNotFound. The caller holds mu or is the writer.
func (s *Store) get(key []byte) ([]byte, error) {
	v, c, err := s.db.Get(key)
	if errors.Is(err, pebbledb.ErrNotFound) {
		return nil, runtime.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), v...)
	return out, c.Close()
}

// enter guards a direct read: it fails when ctx is done, the store is
// closed or failed; on success the caller must call s.mu.RUnlock.
func (s *Store) enter(ctx context.Context, op string) error {
	return s.enterLazy(ctx, func() string { return op })
}

// enterLazy is enter with the operation's name built only for an error.
func (s *Store) enterLazy(ctx context.Context, op func() string) error {
	if ctx.Err() != nil {
		return storekit.ContextErr(ctx, op())
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("cqrsgen/pebble: %s: %w", op(), runtime.ErrClosed)
	}
	if err := s.failure(); err != nil {
		s.mu.RUnlock()
		return fmt.Errorf("cqrsgen/pebble: %s: %w", op(), err)
	}
	return nil
}

func (s *Store) failure() error {
	if p := s.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

// Close stops the writer after it has answered every queued request,
// closes the iterators still open (their loops then yield ErrClosed), and
// closes the database. Every call after Close, including a second Close,
// returns an error wrapping runtime.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("cqrsgen/pebble: close %q: %w", s.dir, runtime.ErrClosed)
	}
	s.closed = true
	s.mu.Unlock()

	s.qmu.Lock()
	s.qclosed = true
	s.qmu.Unlock()
	s.signal()
	<-s.done

	s.itersMu.Lock()
	for t := range s.iters {
		t.mu.Lock()
		t.close()
		t.mu.Unlock()
	}
	clear(s.iters)
	s.itersMu.Unlock()

	s.wmu.Lock()
	close(s.closedCh)
	s.wmu.Unlock()

	err := s.db.Close()
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("cqrsgen/pebble: close %q: %w", s.dir, err)
	}
	return nil
}

// logger adapts Pebble's Logger to slog and turns Fatalf into a failed
// store instead of a process exit.
type logger struct {
	s *Store
	l *slog.Logger
}

func (g *logger) Infof(format string, args ...any) {
	g.l.Debug(strings.TrimSpace(fmt.Sprintf(format, args...)), "store", g.s.dir)
}

func (g *logger) Errorf(format string, args ...any) {
	g.l.Error(strings.TrimSpace(fmt.Sprintf(format, args...)), "store", g.s.dir)
}

func (g *logger) Fatalf(format string, args ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	g.l.Error("pebble fatal error; the store refuses further calls", "store", g.s.dir, "error", msg)
	err := fmt.Errorf("%w: %q: %s", ErrFailed, g.s.dir, msg)
	g.s.fatal.CompareAndSwap(nil, &err)
}

var _ io.Closer = (*Store)(nil)

// Dir returns the directory the store was opened on.
func (s *Store) Dir() string { return s.dir }
