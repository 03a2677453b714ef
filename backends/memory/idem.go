package memory

import "github.com/cqrsgen/cqrsgen/runtime"

// The idempotency keys are kept by key (s.idempotency) and indexed by the
// stream their record names (s.idemByStream), so that a hard delete finds
// its stream's keys without reading every key of the store. Every change
// of s.idempotency goes through putKey and dropKey, which keep both; the
// caller holds s.mu for writing.

// putKey records rec under its key, replacing any record the key had.
func (s *Store) putKey(rec runtime.IdempotencyRecord) {
	if old, ok := s.idempotency[rec.Key]; ok && old.Stream != rec.Stream {
		s.unindexKey(old)
	}
	s.idempotency[rec.Key] = rec
	keys := s.idemByStream[rec.Stream]
	if keys == nil {
		if s.idemByStream == nil {
			s.idemByStream = make(map[runtime.StreamID]map[string]struct{})
		}
		keys = make(map[string]struct{}, 1)
		s.idemByStream[rec.Stream] = keys
	}
	keys[rec.Key] = struct{}{}
}

// dropKey removes key's record, if any.
func (s *Store) dropKey(key string) {
	if rec, ok := s.idempotency[key]; ok {
		delete(s.idempotency, key)
		s.unindexKey(rec)
	}
}

func (s *Store) unindexKey(rec runtime.IdempotencyRecord) {
	keys := s.idemByStream[rec.Stream]
	delete(keys, rec.Key)
	if len(keys) == 0 {
		delete(s.idemByStream, rec.Stream)
	}
}
