package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// settledPebble is a Pebble store and a raw Pebble database that hold the
// same files: the store's database, flushed and compacted, and a
// checkpoint of it (hard links to the same tables). A limit that scans its
// own database, filled after the store's, reads whatever shape the LSM
// tree has at that moment (memtable, L0 files, levels half compacted), and
// its speed moves with it: issue 18 saw the ReadAll ratio swing from 0.42x
// to 0.97x with the amount of data alone. Here both sides read the same
// bytes in the same layout, and the layout no longer depends on when the
// background compactions ran.
type settledPebble struct {
	store *pebble.Store
	raw   *pebbledb.DB
	close func() error
}

// filledRaw is what the limits of a filled store read (openFilled).
type filledRaw struct {
	// pebble, for the Pebble store, is a raw database holding the same
	// tables in the same compacted layout (openSettledPebble).
	pebble *pebbledb.DB
	// pgSchema, for the PostgreSQL store, names the store's schema, which
	// its read limits read on connections of their own (rawpgread.go).
	pgSchema string
}

// openFilled opens a fresh store of the named kind and fills it through
// fill. raw holds what the limits of read cases read (filledRaw): for
// other stores than Pebble and PostgreSQL, nothing. closeAll closes the
// store (and Pebble's raw database) and removes their data (PostgreSQL's
// schema); the PostgreSQL limits close their own connections first.
func (r *runner) openFilled(ctx context.Context, store string, fill func(runtime.Store) error) (s runtime.Store, raw filledRaw, closeAll func() error, err error) {
	switch store {
	case "pebble":
		sp, err := r.openSettledPebble(ctx, fill)
		if err != nil {
			return nil, raw, nil, err
		}
		return sp.store, filledRaw{pebble: sp.raw}, sp.close, nil
	case "postgres":
		s, schema, closeAll, err := r.openFilledPostgres(ctx, fill)
		if err != nil {
			return nil, raw, nil, err
		}
		return s, filledRaw{pgSchema: schema}, closeAll, nil
	}
	s, closeStore, err := r.openStore(ctx, store)
	if err != nil {
		return nil, raw, nil, err
	}
	if err := fill(s); err != nil {
		return nil, raw, nil, errors.Join(err, closeStore())
	}
	return s, raw, closeStore, nil
}

// openSettledPebble opens a fresh Pebble store, fills it through fill,
// closes it, flushes and compacts its whole key space with raw Pebble,
// checkpoints it into a second directory, and reopens the store on the
// first and raw Pebble on the second.
func (r *runner) openSettledPebble(ctx context.Context, fill func(runtime.Store) error) (*settledPebble, error) {
	dir, rawDir := r.tempDir("pebble"), r.tempDir("rawpebble")
	removeAll := func() error { return errors.Join(os.RemoveAll(dir), os.RemoveAll(rawDir)) }
	logger := slog.New(slog.NewTextHandler(r.cfg.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := pebble.Open(dir, pebble.WithLogger(logger))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("bench: opening pebble store: %w", err), removeAll())
	}
	err = fill(s)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = settle(ctx, dir, rawDir, logger)
	}
	if err != nil {
		return nil, errors.Join(err, removeAll())
	}
	if s, err = pebble.Open(dir, pebble.WithLogger(logger)); err != nil {
		return nil, errors.Join(fmt.Errorf("bench: reopening pebble store: %w", err), removeAll())
	}
	db, err := openPebbleDir(rawDir, logger)
	if err != nil {
		return nil, errors.Join(err, s.Close(), removeAll())
	}
	return &settledPebble{store: s, raw: db, close: func() error {
		return errors.Join(s.Close(), db.Close(), removeAll())
	}}, nil
}

// settle flushes and compacts the closed Pebble database in dir into its
// bottom level and checkpoints it into rawDir.
func settle(ctx context.Context, dir, rawDir string, logger *slog.Logger) error {
	db, err := openPebbleDir(dir, logger)
	if err != nil {
		return err
	}
	err = db.Flush()
	if err == nil {
		// Every key the store writes starts with a lower-case tag byte.
		err = db.Compact(ctx, []byte{0}, []byte{0xff}, true)
	}
	if err == nil {
		err = db.Checkpoint(rawDir, pebbledb.WithFlushedWAL())
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bench: settling %s: %w", dir, err)
	}
	return nil
}

// openPebbleDir opens the Pebble database in dir (creating it if needed)
// with the Pebble store's options: format, memtable and cache size; tune,
// if given, changes them further.
func openPebbleDir(dir string, logger *slog.Logger, tune ...func(*pebbledb.Options)) (*pebbledb.DB, error) {
	opts := &pebbledb.Options{
		FormatMajorVersion: pebbledb.FormatNewest,
		MemTableSize:       pebble.DefaultMemTableSize,
		Logger:             quietLogger{logger},
	}
	for _, f := range tune {
		f(opts)
	}
	opts.Cache = pebbledb.NewCache(pebble.CacheCapacity(pebble.DefaultCacheSize, opts))
	defer opts.Cache.Unref()
	db, err := pebbledb.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("bench: opening raw pebble in %s: %w", dir, err)
	}
	return db, nil
}
