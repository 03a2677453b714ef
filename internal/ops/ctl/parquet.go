package ctl

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// parquetEvent is one row of a Parquet export. Its fields, in this order,
// and their tags are the file's schema (docs/operations.md shows it); the
// tests read exports back into it with parquet-go's reader.
type parquetEvent struct {
	// Position is the event's global position.
	Position int64 `parquet:"position"`
	// StreamType and StreamID name the event's stream.
	StreamType string `parquet:"stream_type,dict"`
	StreamID   string `parquet:"stream_id"`
	// Version is the event's version in its stream.
	Version int64 `parquet:"version"`
	// Name is the event's wire name.
	Name string `parquet:"name,dict"`
	// Schema is the event body's schema version.
	Schema int64 `parquet:"schema"`
	// Time is the event's time, TIMESTAMP(NANOS) adjusted to UTC.
	Time time.Time `parquet:"time,timestamp(nanosecond:utc)"`
	// Metadata is the event's metadata, an empty map when it has none.
	Metadata map[string]string `parquet:"metadata"`
	// Data is the body decoded from MessagePack as JSON text (as in the
	// JSON Lines export), null when it does not decode.
	Data *string `parquet:"data,optional,json"`
	// DataError says why Data is null.
	DataError *string `parquet:"data_error,optional"`
	// Raw is the exact stored body.
	Raw []byte `parquet:"raw"`
	// EventID is the event's id (UUID), null for events stored before
	// event ids existed. Last, so that the columns before it keep their
	// places; exports made before it have no such column.
	EventID [16]byte `parquet:"event_id,optional,uuid"`
}

// parquetSchema is the schema of every Parquet export.
var parquetSchema = parquet.NewSchema("cqrsgen_event", parquet.SchemaOf(parquetEvent{}))

// Leaf column indexes of parquetSchema, in its order.
const (
	colPosition = iota
	colStreamType
	colStreamID
	colVersion
	colName
	colSchema
	colTime
	colMetadataKey
	colMetadataValue
	colData
	colDataError
	colRaw
	colEventID
	numParquetColumns
)

// Row groups of a Parquet export end after this many events or once the
// event bytes buffered reach this size, whichever comes first: the writer
// holds one row group in memory.
const (
	parquetRowGroupRows  = 1 << 20
	parquetRowGroupBytes = 64 << 20
)

// Timestamps a Parquet TIMESTAMP(NANOS) can hold (int64 nanoseconds since
// the Unix epoch).
var (
	minParquetTime = time.Unix(0, math.MinInt64).UTC()
	maxParquetTime = time.Unix(0, math.MaxInt64).UTC()
)

// validUTF8 returns s with every byte that is not part of valid UTF-8
// replaced by U+FFFD, as encoding/json does when it prints a string: the
// Parquet STRING columns hold the same text as the JSON Lines export.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return string(b)
}

// parquetRow appends r to row as one Parquet row of parquetSchema and
// returns it with the number of body bytes it carries. Metadata keys are
// written in sorted order so that an export is deterministic. The values
// alias r's bytes: write the row before r changes.
func parquetRow(row parquet.Row, r runtime.Record) (parquet.Row, int, error) {
	if r.Position > math.MaxInt64 || r.Version > math.MaxInt64 {
		return row, 0, fmt.Errorf("stream %s version %d position %d: beyond the int64 columns of a Parquet export", r.Stream, r.Version, r.Position)
	}
	t := r.Time.UTC()
	if t.Before(minParquetTime) || t.After(maxParquetTime) {
		return row, 0, fmt.Errorf("stream %s version %d position %d: time %s is outside what a Parquet TIMESTAMP(NANOS) holds (%s to %s); export JSON Lines instead",
			r.Stream, r.Version, r.Position, t.Format(time.RFC3339Nano), minParquetTime.Format(time.RFC3339), maxParquetTime.Format(time.RFC3339))
	}
	str := func(s string, col int) parquet.Value {
		return parquet.ByteArrayValue([]byte(validUTF8(s))).Level(0, 0, col)
	}
	row = append(row,
		parquet.Int64Value(int64(r.Position)).Level(0, 0, colPosition),
		str(r.Stream.Type, colStreamType),
		str(r.Stream.ID, colStreamID),
		parquet.Int64Value(int64(r.Version)).Level(0, 0, colVersion),
		str(r.Name, colName),
		parquet.Int64Value(int64(r.Schema)).Level(0, 0, colSchema),
		parquet.Int64Value(t.UnixNano()).Level(0, 0, colTime),
	)
	size := len(r.Data) + len(r.Stream.Type) + len(r.Stream.ID) + len(r.Name)
	// A map is a repeated group of (key, value): the first entry starts
	// the row (repetition level 0), the next ones repeat it (level 1);
	// an empty map is one null at definition level 0.
	keys := slices.Sorted(maps.Keys(r.Metadata))
	if len(keys) == 0 {
		row = append(row, parquet.NullValue().Level(0, 0, colMetadataKey), parquet.NullValue().Level(0, 0, colMetadataValue))
	} else {
		for i, k := range keys {
			row = append(row, parquet.ByteArrayValue([]byte(validUTF8(k))).Level(min(i, 1), 1, colMetadataKey))
			size += len(k)
		}
		for i, k := range keys {
			v := r.Metadata[k]
			row = append(row, parquet.ByteArrayValue([]byte(validUTF8(v))).Level(min(i, 1), 1, colMetadataValue))
			size += len(v)
		}
	}
	data, err := msgpackToJSON(r.Data)
	if err != nil {
		row = append(row, parquet.NullValue().Level(0, 0, colData),
			parquet.ByteArrayValue([]byte(err.Error())).Level(0, 1, colDataError))
	} else {
		row = append(row, parquet.ByteArrayValue(data).Level(0, 1, colData),
			parquet.NullValue().Level(0, 0, colDataError))
		size += len(data)
	}
	raw := r.Data
	if raw == nil {
		raw = []byte{}
	}
	row = append(row, parquet.ByteArrayValue(raw).Level(0, 0, colRaw))
	if r.EventID.IsZero() {
		row = append(row, parquet.NullValue().Level(0, 0, colEventID))
	} else {
		row = append(row, parquet.FixedLenByteArrayValue(r.EventID[:]).Level(0, 1, colEventID))
	}
	return row, size, nil
}

// parquetLimits bounds the row groups of one export.
type parquetLimits struct {
	rows  int
	bytes int
}

// writeParquet writes the events at positions from..last of t to w as a
// Parquet file of parquetSchema, zstd-compressed, flushing a row group
// whenever lim is reached. total is the number of events expected (for the
// progress bar).
func (c *command) writeParquet(ctx context.Context, t runtime.Store, w io.Writer, from, last, total uint64, lim parquetLimits) error {
	pw := parquet.NewGenericWriter[parquetEvent](w, parquetSchema,
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedDefault}),
		parquet.CreatedBy("cqrsctl", "", ""),
		// The column index keeps every page's min and max value until the
		// footer: for event bodies that is memory growing with the log,
		// and the bounds of blobs are of no use to a query.
		parquet.SkipPageBounds("data"),
		parquet.SkipPageBounds("data_error"),
		parquet.SkipPageBounds("raw"),
		parquet.SkipPageBounds("metadata", "key_value", "value"),
		parquet.KeyValueMetadata("cqrsgen.from", strconv.FormatUint(from, 10)),
		parquet.KeyValueMetadata("cqrsgen.to", strconv.FormatUint(max(last, from-1), 10)),
	)
	bar := c.newProgress("export", total)
	defer bar.finish()
	if total > 0 {
		if err := c.parquetRows(ctx, t, pw, from, last, lim, bar); err != nil {
			return err
		}
	}
	return pw.Close()
}

func (c *command) parquetRows(ctx context.Context, t runtime.Store, pw *parquet.GenericWriter[parquetEvent], from, last uint64, lim parquetLimits, bar *progress) error {
	rows := []parquet.Row{make(parquet.Row, 0, numParquetColumns+4)}
	groupRows, groupBytes := 0, 0
	next := from
	for rec, err := range t.ReadAll(ctx, from-1) {
		if err != nil {
			return err
		}
		if rec.Position > last {
			break
		}
		// Positions increase; hard deletes leave holes (lifecycle.DeleteStream).
		if rec.Position < next {
			return fmt.Errorf("export: the store yielded position %d where %d was expected: run verify", rec.Position, next)
		}
		row, size, err := parquetRow(rows[0][:0], rec)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		rows[0] = row
		if _, err := pw.WriteRows(rows); err != nil {
			return fmt.Errorf("export: position %d: %w", rec.Position, err)
		}
		groupRows++
		groupBytes += size
		if groupRows >= lim.rows || groupBytes >= lim.bytes {
			if err := pw.Flush(); err != nil {
				return fmt.Errorf("export: position %d: %w", rec.Position, err)
			}
			groupRows, groupBytes = 0, 0
		}
		bar.add(rec.Position - next + 1)
		next = rec.Position + 1
		if rec.Position == last {
			break
		}
	}
	return nil
}
