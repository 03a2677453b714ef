package postgres

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Metadata is stored as bytes, not jsonb: keys and values may hold any
// bytes (JSON would mangle invalid UTF-8 and PostgreSQL text refuses NUL).
// The format is uvarint(count) then, per pair in key order,
// uvarint(len(key)) key uvarint(len(value)) value. An empty map is NULL.

func encodeMetadata(md map[string]string) []byte {
	if len(md) == 0 {
		return nil
	}
	n := binary.MaxVarintLen64
	for k, v := range md {
		n += len(k) + len(v) + 2*binary.MaxVarintLen64
	}
	b := make([]byte, 0, n)
	b = binary.AppendUvarint(b, uint64(len(md)))
	for _, k := range slices.Sorted(maps.Keys(md)) {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		v := md[k]
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

var errTruncated = errors.New("truncated")

func decodeMetadata(b []byte) (map[string]string, error) {
	if b == nil {
		return nil, nil
	}
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, fmt.Errorf("metadata: bad pair count: %w", errTruncated)
	}
	b = b[n:]
	if count == 0 || count > uint64(len(b))/2 {
		return nil, fmt.Errorf("metadata: pair count %d does not fit in %d bytes", count, len(b))
	}
	md := make(map[string]string, count)
	next := func() (string, error) {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return "", errTruncated
		}
		s := string(b[n : n+int(l)])
		b = b[n+int(l):]
		return s, nil
	}
	for i := range count {
		k, err := next()
		if err != nil {
			return nil, fmt.Errorf("metadata: key %d: %w", i, err)
		}
		v, err := next()
		if err != nil {
			return nil, fmt.Errorf("metadata: value of %q: %w", k, err)
		}
		if _, dup := md[k]; dup {
			return nil, fmt.Errorf("metadata: duplicate key %q", k)
		}
		md[k] = v
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("metadata: %d trailing bytes", len(b))
	}
	return md, nil
}
