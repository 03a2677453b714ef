package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// ReadStream yields the stream's events with version > after in version
// order, a page of rows per query.
func (s *Store) ReadStream(ctx context.Context, stream runtime.StreamID, after uint64) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) {
		op := "read stream " + stream.String()
		if err := runtime.ValidateStream(stream); err != nil {
			yield(runtime.Record{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, err))
			return
		}
		if after >= math.MaxInt64 {
			after = math.MaxInt64
		}
		for {
			page, perr := s.readStreamPage(ctx, op, stream, int64(after))
			for _, r := range page {
				if err := storekit.ContextErr(ctx, "postgres: "+op); err != nil {
					yield(runtime.Record{}, err)
					return
				}
				if !yield(r, nil) {
					return
				}
				after = r.Version
			}
			if perr != nil {
				yield(runtime.Record{}, perr)
				return
			}
			if len(page) < pageSize {
				return
			}
		}
	}
}

// ReadAll yields the events of all streams with position > after, in
// position order, up to the head read when iteration starts. Positions
// are committed in order, so every position up to that head is visible.
func (s *Store) ReadAll(ctx context.Context, after uint64) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) {
		op := fmt.Sprintf("read all after position %d", after)
		leave, err := s.begin(ctx, op)
		if err != nil {
			yield(runtime.Record{}, err)
			return
		}
		head, err := s.head(ctx)
		leave()
		if err != nil {
			yield(runtime.Record{}, err)
			return
		}
		started := false
		// from is where the next window starts; after, the last position
		// yielded. They differ after a hole.
		from := after
		for from < head {
			to := min(from+pageSize, head)
			page, perr := s.readAllPage(ctx, op, from, to)
			for _, r := range page {
				if err := storekit.ContextErr(ctx, "postgres: "+op); err != nil {
					yield(runtime.Record{}, err)
					return
				}
				if started && r.Position != after+1 {
					if err := s.overtaken(ctx, op, after+1); err != nil {
						yield(runtime.Record{}, err)
						return
					}
				}
				started = true
				if !yield(r, nil) {
					return
				}
				after = r.Position
			}
			if perr != nil {
				yield(runtime.Record{}, perr)
				return
			}
			from = to
			if len(page) == 0 && from < head {
				next, err := s.nextPosition(ctx, op, from, head)
				if err != nil {
					yield(runtime.Record{}, err)
					return
				}
				if next == 0 {
					return
				}
				from = next - 1
			}
		}
	}
}

// nextPosition returns the first event's position in (after, head], or 0
// when that range holds none.
func (s *Store) nextPosition(ctx context.Context, op string, after, head uint64) (uint64, error) {
	leave, err := s.begin(ctx, op)
	if err != nil {
		return 0, err
	}
	defer leave()
	var p int64
	if err := s.pool.QueryRow(ctx, s.q.nextPosition, int64(after), int64(head)).Scan(&p); err != nil {
		return 0, s.fail(ctx, op, err)
	}
	return uint64(p), nil
}

// readAllPage reads the window of positions (from, to] in position
// order. The server yields it ordered by commit only (readAllSQL), so a
// row that does not decode may come before good rows at lower positions:
// every row is read, and the page stops before the lowest bad position,
// returning the good records below it and that row's error. On a broken
// connection it returns no records: those read may not be the lowest.
func (s *Store) readAllPage(ctx context.Context, op string, from, to uint64) ([]runtime.Record, error) {
	leave, err := s.begin(ctx, op)
	if err != nil {
		return nil, err
	}
	defer leave()
	rows, err := s.pool.Query(ctx, s.q.readAll, int64(from), int64(to), int64(to-from))
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	defer rows.Close()
	var (
		out []runtime.Record
		bad *runtime.DecodeError
	)
	for rows.Next() {
		r, err := scanRecord(rows)
		if err == nil {
			out = append(out, r)
			continue
		}
		var de *runtime.DecodeError
		if !errors.As(err, &de) || de.Position == 0 {
			// A row that cannot be placed: nothing of the page is
			// known to precede it.
			return nil, fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
		}
		if bad == nil || de.Position < bad.Position {
			bad = de
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err)
	}
	inPositionOrder(out)
	if bad != nil {
		n, _ := slices.BinarySearchFunc(out, bad.Position, func(r runtime.Record, p uint64) int { return cmp.Compare(r.Position, p) })
		return out[:n], fmt.Errorf("cqrsgen: postgres: %s: %w", op, bad)
	}
	return out, nil
}

// inPositionOrder sorts a ReadAll page by position unless it already is
// in that order, as the plan of readAllSQL yields it on large tables.
func inPositionOrder(page []runtime.Record) {
	byPosition := func(a, b runtime.Record) int { return cmp.Compare(a.Position, b.Position) }
	if !slices.IsSortedFunc(page, byPosition) {
		slices.SortFunc(page, byPosition)
	}
}

// scanRecords decodes the rows of a read query (err is the query's) into
// records. On an error it returns the records decoded before it.
func (s *Store) scanRecords(ctx context.Context, op string, rows pgx.Rows, err error) ([]runtime.Record, error) {
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	defer rows.Close()
	var out []runtime.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return out, fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return out, s.fail(ctx, op, err)
	}
	return out, nil
}

// scanRecord decodes one events row. Bytes that do not decode become a
// *runtime.DecodeError naming the stream, version and position.
func scanRecord(rows pgx.Rows) (runtime.Record, error) {
	var (
		pos, ver, schema, secs int64
		nsec                   int32
		typ, id, name, md      []byte
		data                   []byte
		eid                    pgtype.UUID // NULL for rows written before schema version 3
	)
	if err := rows.Scan(&pos, &typ, &id, &ver, &name, &schema, &secs, &nsec, &md, &data, &eid); err != nil {
		return runtime.Record{}, &runtime.DecodeError{What: "envelope", Err: err}
	}
	r := runtime.Record{
		EventID:  eid.Bytes, // zero when NULL
		Stream:   runtime.StreamID{Type: string(typ), ID: string(id)},
		Version:  uint64(ver),
		Position: uint64(pos),
		Name:     string(name),
		Schema:   uint32(schema),
		Data:     data,
	}
	bad := func(format string, a ...any) (runtime.Record, error) {
		return runtime.Record{}, &runtime.DecodeError{Stream: r.Stream, Version: r.Version, Position: r.Position,
			What: "envelope", Err: fmt.Errorf(format, a...)}
	}
	switch {
	case pos <= 0:
		return bad("position %d out of range", pos)
	case ver <= 0 || uint64(ver) > runtime.MaxVersion:
		return bad("version %d out of range", ver)
	case schema < 0 || schema > math.MaxUint32:
		return bad("schema version %d out of range", schema)
	case nsec < 0 || nsec >= 1e9:
		return bad("time nanoseconds %d out of range", nsec)
	case len(name) == 0:
		return bad("empty event name")
	}
	m, err := decodeMetadata(md)
	if err != nil {
		return bad("%w", err)
	}
	r.Metadata = m
	r.Time = time.Unix(secs, int64(nsec)).UTC()
	if r.Data == nil {
		r.Data = []byte{}
	}
	return r, nil
}

// StreamVersion returns the stream's committed version, 0 when it has none.
func (s *Store) StreamVersion(ctx context.Context, stream runtime.StreamID) (uint64, error) {
	op := "stream version of " + stream.String()
	leave, err := s.begin(ctx, op)
	if err != nil {
		return 0, err
	}
	defer leave()
	if err := runtime.ValidateStream(stream); err != nil {
		return 0, fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
	}
	var v int64
	err = s.pool.QueryRow(ctx, s.q.streamVersion, []byte(stream.Type), []byte(stream.ID)).Scan(&v)
	if isNoRows(err) {
		return 0, nil
	}
	if err != nil {
		return 0, s.fail(ctx, op, err)
	}
	if v < 0 {
		return 0, fmt.Errorf("cqrsgen: postgres: %s: %w", op,
			&runtime.DecodeError{Stream: stream, What: "stream head", Err: fmt.Errorf("negative version %d", v)})
	}
	if uint64(v) >= deletedBase {
		return uint64(v) - deletedBase, nil // a deleted stream (delete.go)
	}
	return uint64(v), nil
}
