package postgres

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
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
		// When the caller took longer over the last window's records than
		// reading the window took, the next window is read while it works
		// on this one (a projection that decodes and applies each event):
		// 15-25% more events/s at 2 µs of work an event. A caller quicker
		// than the reads is not given one: the hand-over between
		// goroutines cost it 15-30% (docs/benchmarks-history.md, seventh
		// pass). A caller that stops early cancels the read ahead and
		// waits for it.
		pctx, cancel := context.WithCancel(ctx)
		var (
			next     <-chan fetched
			consumed time.Duration // over the last window's records
		)
		defer func() {
			cancel()
			if next != nil {
				<-next
			}
		}()
		for from < head {
			to := min(from+pageSize, head)
			var f fetched
			if next != nil {
				f = <-next
				next = nil
			} else {
				f = s.fetchAll(ctx, op, from, to)
			}
			if f.err == nil && len(f.page) > 0 && to < head && consumed > f.took {
				next = s.prefetchAll(pctx, op, to, min(to+pageSize, head))
			}
			start := time.Now()
			for _, r := range f.page {
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
			consumed = time.Since(start)
			if f.err != nil {
				yield(runtime.Record{}, f.err)
				return
			}
			from = to
			if len(f.page) == 0 && from < head {
				p, err := s.nextPosition(ctx, op, from, head)
				if err != nil {
					yield(runtime.Record{}, err)
					return
				}
				if p == 0 {
					return
				}
				from = p - 1
			}
		}
	}
}

// fetched is a ReadAll window: its records, the error that ended it
// (readAllPage) and how long reading it took.
type fetched struct {
	page []runtime.Record
	err  error
	took time.Duration
}

// fetchAll reads the window (from, to].
func (s *Store) fetchAll(ctx context.Context, op string, from, to uint64) fetched {
	start := time.Now()
	page, err := s.readAllPage(ctx, op, from, to)
	return fetched{page: page, err: err, took: time.Since(start)}
}

// prefetchAll reads the window (from, to] in a goroutine of its own and
// sends the result on the channel it returns.
func (s *Store) prefetchAll(ctx context.Context, op string, from, to uint64) <-chan fetched {
	ch := make(chan fetched, 1)
	go func() { ch <- s.fetchAll(ctx, op, from, to) }()
	return ch
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

// bigEndian decodes PostgreSQL's binary integers.
var bigEndian = binary.BigEndian

// eventColTypes are the types of eventCols, in order (see eventCols).
var eventColTypes = [...]uint32{oidInt8, oidBytea, oidBytea, oidInt8, oidBytea, oidInt8, oidInt8, oidInt4, oidBytea, oidBytea, oidUUID}

// eventRow is one row of eventCols. Read from the raw values, its byte
// fields point into the connection's buffer until the next row.
type eventRow struct {
	pos, ver, schema, secs  int64
	nsec                    int32
	typ, id, name, md, data []byte
	eid                     [16]byte // zero when NULL (rows written before schema version 3)
	raw                     bool     // data points into the connection's buffer
}

// read reads the current row of rows. When the server sent every column
// in binary with the expected types (pgx asks for binary results in the
// extended protocol it uses unless the DSN sets another
// default_query_exec_mode), the values are taken from the wire bytes
// directly: rows.Scan through the type map cost more than half of a
// ReadAll page's client time (docs/benchmarks-history.md, seventh pass).
func (e *eventRow) read(rows pgx.Rows) error {
	fds := rows.FieldDescriptions()
	binary := len(fds) == len(eventColTypes)
	for i := 0; binary && i < len(fds); i++ {
		binary = fds[i].Format == pgtype.BinaryFormatCode && fds[i].DataTypeOID == eventColTypes[i]
	}
	if !binary {
		var err error
		*e, err = scanEventRow(rows)
		return err
	}
	v := rows.RawValues()
	var err error
	int8At := func(i int) int64 {
		if len(v[i]) != 8 {
			err = cmp.Or(err, fmt.Errorf("column %d: %d bytes for a bigint", i+1, len(v[i])))
			return 0
		}
		return int64(bigEndian.Uint64(v[i]))
	}
	bytesAt := func(i int) []byte {
		if v[i] == nil {
			err = cmp.Or(err, fmt.Errorf("column %d: NULL", i+1))
		}
		return v[i]
	}
	e.pos, e.typ, e.id, e.ver, e.name = int8At(0), bytesAt(1), bytesAt(2), int8At(3), bytesAt(4)
	e.schema, e.secs = int8At(5), int8At(6)
	if len(v[7]) != 4 {
		err = cmp.Or(err, fmt.Errorf("column 8: %d bytes for an integer", len(v[7])))
	} else {
		e.nsec = int32(bigEndian.Uint32(v[7]))
	}
	e.md, e.data, e.raw = v[8], v[9], true
	switch len(v[10]) {
	case 16:
		e.eid = [16]byte(v[10])
	case 0:
		if v[10] != nil {
			err = cmp.Or(err, fmt.Errorf("column 11: 0 bytes for a uuid"))
		}
	default:
		err = cmp.Or(err, fmt.Errorf("column 11: %d bytes for a uuid", len(v[10])))
	}
	return err
}

// scanEventRow reads the current row of rows through rows.Scan (its
// locals escape to the heap: kept out of eventRow.read's binary path).
func scanEventRow(rows pgx.Rows) (eventRow, error) {
	var (
		e   eventRow
		eid pgtype.UUID
	)
	err := rows.Scan(&e.pos, &e.typ, &e.id, &e.ver, &e.name, &e.schema, &e.secs, &e.nsec, &e.md, &e.data, &eid)
	e.eid = eid.Bytes
	return e, err
}

// scanRecord decodes one events row. Bytes that do not decode become a
// *runtime.DecodeError naming the stream, version and position.
func scanRecord(rows pgx.Rows) (runtime.Record, error) {
	var e eventRow
	if err := e.read(rows); err != nil {
		return runtime.Record{}, &runtime.DecodeError{What: "envelope", Err: err}
	}
	pos, ver, schema, secs, nsec, typ, id, name, md, data := e.pos, e.ver, e.schema, e.secs, e.nsec, e.typ, e.id, e.name, e.md, e.data
	if e.raw && data != nil {
		data = bytes.Clone(data)
	}
	r := runtime.Record{
		EventID:  e.eid,
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
