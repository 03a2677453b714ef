package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/examples/bank/account"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// appendCases measures every (batch, writers) combination on every store,
// each beside its limit row.
func (r *runner) appendCases(ctx context.Context) error {
	for _, batch := range appendBatches {
		for _, writers := range appendWriters {
			name := fmt.Sprintf("append/batch=%d/writers=%d", batch, writers)
			if !r.selected(name) {
				continue
			}
			if err := r.appendCase(ctx, name, batch, writers); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *runner) appendCase(ctx context.Context, name string, batch, writers int) error {
	maxOps := max(int64(writers), r.lim.appendEvents/int64(batch))
	for _, store := range r.cfg.Stores {
		var limit Row
		var err error
		switch store {
		case "memory":
			limit, err = r.rawMemoryAppend(ctx, name, batch, writers, maxOps)
		case "pebble":
			limit, err = r.rawPebbleAppend(ctx, name, batch, writers, maxOps)
		default:
			if r.fsync != nil {
				limit = *r.fsync
			}
		}
		if err != nil {
			return err
		}
		row, err := r.storeAppend(ctx, name, store, batch, writers, maxOps)
		if err != nil {
			return err
		}
		ratioRate(&row, limit)
		repoRow, err := r.repoAppend(ctx, name, store, batch, writers, maxOps)
		if err != nil {
			return err
		}
		ratioRate(&repoRow, limit)
		if limit.Case == name {
			r.add(limit)
		}
		r.add(row)
		r.add(repoRow)
	}
	return nil
}

// repoAppend appends batches of Deposited events through the generated
// AccountRepository (encoding included; snapshots off, so that no append
// pays for a load), each writer to its own aggregate.
func (r *runner) repoAppend(ctx context.Context, name, store string, batch, writers int, maxOps int64) (Row, error) {
	s, closeStore, err := r.openStore(ctx, store)
	if err != nil {
		return Row{}, err
	}
	defer closeStore()
	repo := account.NewAccountRepository(s, runtime.WithSnapshotEvery(0))
	events := make([]account.AccountEvent, batch)
	for i := range events {
		events[i] = sampleDeposit
	}
	versions := make([]uint64, writers)
	ids := make([]string, writers)
	for w := range ids {
		ids[w] = fmt.Sprintf("writer-%d", w)
	}
	res, err := drive(ctx, r.cfg.Progress, name+" "+store+" repository", writers, maxOps, r.lim.appendTime, func(ctx context.Context, w int) error {
		v, err := repo.Append(ctx, ids[w], versions[w], events...)
		versions[w] = v
		return err
	})
	if err != nil {
		return Row{}, err
	}
	row := Row{Case: name, Group: "append", Subject: store + " repository (generated, encoding included)", Kind: KindCqrsgen, Synced: durable(store), Batch: batch, Writers: writers}
	res.fill(&row, batch)
	return row, nil
}

// storeAppend appends batches of store-level events, each writer to its own
// stream with the expected version it last saw.
func (r *runner) storeAppend(ctx context.Context, name, store string, batch, writers int, maxOps int64) (Row, error) {
	s, closeStore, err := r.openStore(ctx, store)
	if err != nil {
		return Row{}, err
	}
	defer closeStore()
	events := sampleBatch(batch)
	versions := make([]uint64, writers)
	streams := make([]runtime.StreamID, writers)
	for w := range streams {
		streams[w] = runtime.StreamID{Type: streamType, ID: fmt.Sprintf("writer-%d", w)}
	}
	res, err := drive(ctx, r.cfg.Progress, name+" "+store, writers, maxOps, r.lim.appendTime, func(ctx context.Context, w int) error {
		out, err := s.Append(ctx, runtime.AppendRequest{
			Stream:   streams[w],
			Expected: versions[w],
			Events:   events,
		})
		versions[w] = out.LastVersion
		return err
	})
	if err != nil {
		return Row{}, err
	}
	row := Row{Case: name, Group: "append", Subject: store + " store", Kind: KindCqrsgen, Synced: durable(store), Batch: batch, Writers: writers}
	res.fill(&row, batch)
	return row, nil
}

// recordSize is the size of the value the Pebble store writes for one
// event of the sample stream near the given version and position (its
// record envelope: header fields, name, body and a 4-byte checksum).
func recordSize(stream runtime.StreamID, version, pos uint64, name string, data []byte) int {
	uv := func(v uint64) int { return len(binary.AppendUvarint(nil, v)) }
	return 1 + uv(uint64(len(stream.Type))) + len(stream.Type) + uv(uint64(len(stream.ID))) + len(stream.ID) +
		uv(version) + uv(pos) + uv(uint64(len(name))) + len(name) + uv(1) +
		5 + 4 + 1 + uv(uint64(len(data))) + len(data) + 4
}

// openRawPebble opens a bare Pebble database with the Pebble store's
// default options (cache, memtable size, format).
func (r *runner) openRawPebble() (*pebbledb.DB, func(), error) {
	dir := r.tempDir("rawpebble")
	cache := pebbledb.NewCache(pebble.DefaultCacheSize)
	defer cache.Unref()
	opts := &pebbledb.Options{
		Cache:              cache,
		FormatMajorVersion: pebbledb.FormatNewest,
		MemTableSize:       pebble.DefaultMemTableSize,
		Logger:             quietLogger{slog.New(slog.NewTextHandler(r.cfg.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))},
	}
	db, err := pebbledb.Open(dir, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("bench: opening raw pebble in %s: %w", dir, err)
	}
	return db, func() {
		_ = db.Close()
		_ = os.RemoveAll(dir)
	}, nil
}

// quietLogger routes Pebble's messages to a slog logger.
type quietLogger struct{ l *slog.Logger }

func (q quietLogger) Infof(format string, args ...any) { q.l.Info(fmt.Sprintf(format, args...)) }
func (q quietLogger) Errorf(format string, args ...any) {
	q.l.Error(fmt.Sprintf(format, args...))
}
func (q quietLogger) Fatalf(format string, args ...any) {
	q.l.Error(fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...)) // Pebble's contract: Fatalf does not return
}

// rawKeys appends to b the two keys and values the Pebble store writes for
// one event: p<pos:8> → record, s<stream><version:8> → pos:8.
func rawKeys(b *pebbledb.Batch, streamKey []byte, version, pos uint64, value []byte, kbuf []byte) []byte {
	kbuf = append(kbuf[:0], 'p')
	kbuf = binary.BigEndian.AppendUint64(kbuf, pos)
	_ = b.Set(kbuf, value, nil)
	kbuf = append(kbuf[:0], 's')
	kbuf = append(kbuf, streamKey...)
	kbuf = binary.BigEndian.AppendUint64(kbuf, version)
	var pv [8]byte
	binary.BigEndian.PutUint64(pv[:], pos)
	_ = b.Set(kbuf, pv[:], nil)
	return kbuf
}

func streamKeyOf(s runtime.StreamID) []byte {
	b := binary.AppendUvarint(nil, uint64(len(s.Type)))
	b = append(b, s.Type...)
	b = binary.AppendUvarint(b, uint64(len(s.ID)))
	return append(b, s.ID...)
}

// rawPebbleAppend writes the same keys and bytes as the Pebble store, in
// the same batch sizes, each writer committing its own pebble.Sync batch.
// Positions come from an atomic counter: no ordering, no version check.
func (r *runner) rawPebbleAppend(ctx context.Context, name string, batch, writers int, maxOps int64) (Row, error) {
	db, closeDB, err := r.openRawPebble()
	if err != nil {
		return Row{}, err
	}
	defer closeDB()
	data := samplePayload()
	var pos atomic.Uint64
	type wstate struct {
		streamKey []byte
		version   uint64
		value     []byte
		kbuf      []byte
	}
	ws := make([]*wstate, writers)
	for w := range ws {
		st := runtime.StreamID{Type: streamType, ID: fmt.Sprintf("writer-%d", w)}
		ws[w] = &wstate{streamKey: streamKeyOf(st), value: make([]byte, recordSize(st, 1000, 100_000, eventName, data))}
		copy(ws[w].value[len(ws[w].value)-len(data)-4:], data)
	}
	res, err := drive(ctx, r.cfg.Progress, name+" raw pebble", writers, maxOps, r.lim.appendTime, func(_ context.Context, w int) error {
		st := ws[w]
		b := db.NewBatch()
		first := pos.Add(uint64(batch)) - uint64(batch)
		for i := range batch {
			st.version++
			st.kbuf = rawKeys(b, st.streamKey, st.version, first+uint64(i)+1, st.value, st.kbuf)
		}
		err := b.Commit(pebbledb.Sync)
		_ = b.Close()
		return err
	})
	if err != nil {
		return Row{}, err
	}
	row := Row{Case: name, Group: "append", Subject: "raw pebble", Kind: KindLimit, Synced: ptr(true), Batch: batch, Writers: writers}
	res.fill(&row, batch)
	return row, nil
}

// rawMemory is the floor under an in-memory store: copy each event's
// bytes into one slice under a mutex and index it by stream.
type rawMemory struct {
	mu      sync.Mutex
	log     [][]byte
	streams map[string][]uint64
}

// rawMemoryAppend measures rawMemory with the same batches and writers.
func (r *runner) rawMemoryAppend(ctx context.Context, name string, batch, writers int, maxOps int64) (Row, error) {
	m := &rawMemory{streams: make(map[string][]uint64)}
	data := samplePayload()
	ids := make([]string, writers)
	for w := range ids {
		ids[w] = fmt.Sprintf("writer-%d", w)
	}
	res, err := drive(ctx, r.cfg.Progress, name+" raw memory", writers, maxOps, r.lim.appendTime, func(_ context.Context, w int) error {
		copies := make([][]byte, batch)
		for i := range copies {
			copies[i] = append([]byte(nil), data...)
		}
		m.mu.Lock()
		idx := m.streams[ids[w]]
		for _, c := range copies {
			m.log = append(m.log, c)
			idx = append(idx, uint64(len(m.log)))
		}
		m.streams[ids[w]] = idx
		m.mu.Unlock()
		return nil
	})
	if err != nil {
		return Row{}, err
	}
	row := Row{Case: name, Group: "append", Subject: "raw memory (mutex + slice)", Kind: KindLimit, Batch: batch, Writers: writers}
	res.fill(&row, batch)
	return row, nil
}
