package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// rawPostgresBinaryAppend is rawPostgresAppend with a cheaper client: the
// same INSERT per transaction of the same rows from a connection per
// writer, its statement prepared once per connection and its parameters
// written straight in PostgreSQL's binary format (the data array once, the
// ids per append), where the pgbench-style limit encodes them through pgx
// on every append. The PostgreSQL store sends its events pre-encoded in
// binary (docs/storage.md, Group parameters), and at one writer beat the
// pgbench-style limit in some runs: this row is the limit without that
// client cost. Only for batches of more than one event (one row's
// parameters cost pgx little).
func (r *runner) rawPostgresBinaryAppend(ctx context.Context, name string, batch, writers int) (*appendSide, error) {
	conns := min(writers, rawConnsMax)
	pool, schema, closeAll, err := r.openRawPostgres(ctx, "cqrsbench_rawb", conns)
	if err != nil {
		return nil, err
	}
	table := schema + ".events"
	const stmt = "cqrsbench_raw_binary"
	sql := "INSERT INTO " + table + ` (stream_type, stream_id, version, name, schema, time_s, time_ns, data, event_id)
SELECT $1, $2, $3 + x.i, $4, 1, $5, $6, x.data, x.eid
FROM unnest($7::bytea[], $8::uuid[]) WITH ORDINALITY AS x(data, eid, i)`
	data := samplePayload()
	datas := binaryArray(17, batch) // bytea
	for range batch {
		datas = binary.BigEndian.AppendUint32(datas, uint32(len(data)))
		datas = append(datas, data...)
	}
	blank, ids, versions := rawWriters(writers, batch)
	eids := make([][]byte, writers)
	for w := range eids {
		eids[w] = make([]byte, 0, 20+20*batch)
	}
	formats := []int16{1, 1, 1, 1, 1, 1, 1, 1}
	row := Row{Case: name, Group: "append", Subject: "raw postgres binary (the store's event rows, one INSERT per transaction, a connection per writer, parameters in binary encoded once)",
		Kind: KindLimit, Synced: ptr(true), Batch: batch, Writers: writers}
	if conns < writers {
		row.Subject = fmt.Sprintf("raw postgres binary (the store's event rows, one INSERT per transaction, %d writers sharing %d connections, parameters in binary encoded once)", writers, conns)
	}
	be8 := func(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }
	return &appendSide{
		label: name + " raw postgres binary",
		row:   row,
		op: func(ctx context.Context, w int) error {
			stamp := storekit.NewStamp(runtime.AppendRequest{Events: blank[w]}, time.Now)
			now := stamp.Now()
			e := append(eids[w][:0], binaryArray(2950, batch)...) // uuid
			for i := range batch {
				id, _ := stamp.Event(i)
				e = binary.BigEndian.AppendUint32(e, 16)
				e = append(e, id[:]...)
			}
			eids[w] = e
			c, err := pool.Acquire(ctx)
			if err != nil {
				return err
			}
			defer c.Release()
			if _, err := c.Conn().Prepare(ctx, stmt, sql); err != nil {
				return err
			}
			params := [][]byte{[]byte(streamType), ids[w], be8(versions[w]), []byte(eventName), be8(now.Unix()),
				binary.BigEndian.AppendUint32(nil, uint32(now.Nanosecond())), datas, e}
			if _, err := c.Conn().PgConn().ExecPrepared(ctx, stmt, params, formats, nil).Close(); err != nil {
				return err
			}
			versions[w] += int64(batch)
			return nil
		},
		close: closeAll,
	}, nil
}

// binaryArray starts a one-dimensional array of n elements of type oid,
// without NULLs, in PostgreSQL's binary format.
func binaryArray(oid uint32, n int) []byte {
	b := make([]byte, 0, 20)
	for _, v := range []uint32{1, 0, oid, uint32(n), 1} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}
