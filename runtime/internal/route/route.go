// Package route holds the lookup table behind the runtime's event tables
// and the projection and saga dispatch tables.
package route

import "slices"

// scan is the size up to which a Table scans its keys instead of
// hashing: comparing a handful of short strings (lengths first) is faster
// than hashing one, and generated tables and projections are that small.
const scan = 8

// Table finds a value by key: a linear scan while it holds at most
// scan entries, a map beyond. Adding a key again replaces its value. The
// zero Table is empty and ready to use.
type Table[K comparable, V any] struct {
	keys []K
	vals []V
	m    map[K]V
}

// Add sets the value of k.
func (r *Table[K, V]) Add(k K, v V) {
	if i := slices.Index(r.keys, k); i >= 0 {
		r.vals[i] = v
	} else {
		r.keys, r.vals = append(r.keys, k), append(r.vals, v)
	}
	if len(r.keys) > scan {
		r.m = make(map[K]V, len(r.keys))
		for i, k := range r.keys {
			r.m[k] = r.vals[i]
		}
	}
}

// Get returns the value of k.
func (r *Table[K, V]) Get(k K) (V, bool) {
	if r.m != nil {
		v, ok := r.m[k]
		return v, ok
	}
	for i := range r.keys {
		if r.keys[i] == k {
			return r.vals[i], true
		}
	}
	var zero V
	return zero, false
}

// Records is the dispatch table of one projection or saga: a value per
// (stream type, wire name), the wire names in the order first added, and
// the first error an added entry carried (a table built from a faulty
// event table reports it when used, not when built).
type Records[V any] struct {
	names []string
	table Table[recordKey, V]
	err   error
}

// recordKey routes a record by its stream type and wire name.
type recordKey struct{ streamType, name string }

// Add routes the records of streamType named names to v, and keeps err if
// it is the first error added.
func (r *Records[V]) Add(streamType string, names []string, v V, err error) {
	if err != nil && r.err == nil {
		r.err = err
	}
	for _, name := range names {
		if !slices.Contains(r.names, name) {
			r.names = append(r.names, name)
		}
		r.table.Add(recordKey{streamType, name}, v)
	}
}

// Get returns the value routed to a record of streamType named name.
func (r *Records[V]) Get(streamType, name string) (V, bool) {
	return r.table.Get(recordKey{streamType, name})
}

// Names returns the wire names added, each once, in the order first added.
func (r *Records[V]) Names() []string { return r.names }

// Err returns the first error added, or nil.
func (r *Records[V]) Err() error { return r.err }
