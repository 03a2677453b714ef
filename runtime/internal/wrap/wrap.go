// Package wrap finds capabilities behind store wrappers.
package wrap

// Find walks s and the values its wrappers' Unwrap methods return,
// recursively, and returns the first value find reports, or the zero value.
// S is the store interface (runtime.Store); a wrapper is a value with an
// Unwrap() S method.
func Find[S comparable, T any](s S, find func(S) (T, bool)) T {
	var none S
	for s != none {
		if v, ok := find(s); ok {
			return v
		}
		u, ok := any(s).(interface{ Unwrap() S })
		if !ok {
			break
		}
		s = u.Unwrap()
	}
	var zero T
	return zero
}
