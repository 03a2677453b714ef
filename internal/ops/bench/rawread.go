package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	pebbledb "github.com/cockroachdb/pebble/v2"
)

// rawStreamRead reads one stream's events on the Pebble store's key layout
// the least costly way a reader of that layout can: a bounded iterator
// over the stream's index keys (lower to upper) and, per entry, a second
// iterator moved to the record, by a Next when it follows the previous
// record (the records of one append have consecutive positions) and by a
// seek otherwise, as the store does; each value is copied into buf, one
// buffer reused, and n counts the records. It is the limit of the load
// rows: the same keys and bytes as the store reads, without the store's
// checks, decoding or copies. With seekOnly every record is sought, as the
// limit of issue 18 was defined (and as the store read before it used
// Next): a weaker limit, kept beside the real one for comparison.
func rawStreamRead(db *pebbledb.DB, lower, upper, buf []byte, seekOnly bool) (n int, out []byte, err error) {
	idx, err := db.NewIter(&pebbledb.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, buf, err
	}
	var recs *pebbledb.Iterator
	defer func() {
		err = errors.Join(err, idx.Close())
		if recs != nil {
			err = errors.Join(err, recs.Close())
		}
	}()
	var pk [9]byte
	pk[0] = 'p'
	for ok := idx.First(); ok; ok = idx.Next() {
		v, err := idx.ValueAndErr()
		if err != nil {
			return n, buf, err
		}
		if len(v) != 8 {
			return n, buf, fmt.Errorf("index entry %x holds %d bytes", idx.Key(), len(v))
		}
		if recs == nil {
			if recs, err = db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{'p'}, UpperBound: []byte{'q'}}); err != nil {
				return n, buf, err
			}
		}
		prev := binary.BigEndian.Uint64(pk[1:])
		copy(pk[1:], v)
		if seekOnly || prev == 0 || prev+1 != binary.BigEndian.Uint64(v) || !recs.Next() || !bytes.Equal(recs.Key(), pk[:]) {
			if !recs.SeekGE(pk[:]) || !bytes.Equal(recs.Key(), pk[:]) {
				return n, buf, fmt.Errorf("record %x missing", pk)
			}
		}
		rv, err := recs.ValueAndErr()
		if err != nil {
			return n, buf, err
		}
		buf = append(buf[:0], rv...)
		n++
	}
	return n, buf, nil
}
