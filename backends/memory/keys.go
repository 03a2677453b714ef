package memory

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// keyRing holds the data keys of crypto-shredded subjects (see
// runtime.KeyStore). Forgetting a subject drops its key from the map; the
// bytes stay in the process's memory until the garbage collector reuses
// them, which no test of a memory store can observe or needs to.
type keyRing struct {
	mu   sync.Mutex
	keys map[string]*subjectEntry
}

type subjectEntry struct {
	key     runtime.DataKey
	streams map[runtime.StreamID]struct{}
}

var _ runtime.KeyStore = (*Store)(nil)

func (s *Store) enterKeys(ctx context.Context, op, subject string) error {
	if err := storekit.ContextErr(ctx, op); err != nil {
		return err
	}
	if err := runtime.ValidateKey("subject", subject); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return closedErr(op)
	}
	return nil
}

// SubjectKey returns subject's data key, keeping fresh as it when the
// subject has none, and records stream for it (runtime.KeyStore).
func (s *Store) SubjectKey(ctx context.Context, subject string, stream runtime.StreamID, fresh runtime.DataKey) (runtime.DataKey, error) {
	if err := s.enterKeys(ctx, "subject key", subject); err != nil {
		return runtime.DataKey{}, err
	}
	if err := runtime.ValidateStream(stream); err != nil {
		return runtime.DataKey{}, fmt.Errorf("memory: %w", err)
	}
	s.keyRing.mu.Lock()
	defer s.keyRing.mu.Unlock()
	if s.keyRing.keys == nil {
		s.keyRing.keys = map[string]*subjectEntry{}
	}
	e := s.keyRing.keys[subject]
	if e == nil {
		e = &subjectEntry{key: fresh, streams: map[runtime.StreamID]struct{}{}}
		s.keyRing.keys[subject] = e
	}
	e.streams[stream] = struct{}{}
	return e.key, nil
}

// LoadSubjectKey returns subject's data key or runtime.ErrNotFound.
func (s *Store) LoadSubjectKey(ctx context.Context, subject string) (runtime.DataKey, error) {
	if err := s.enterKeys(ctx, "load subject key", subject); err != nil {
		return runtime.DataKey{}, err
	}
	s.keyRing.mu.Lock()
	defer s.keyRing.mu.Unlock()
	if e := s.keyRing.keys[subject]; e != nil {
		return e.key, nil
	}
	return runtime.DataKey{}, fmt.Errorf("memory: subject key: %w", runtime.ErrNotFound)
}

// SubjectStreams returns the streams recorded for subject's key.
func (s *Store) SubjectStreams(ctx context.Context, subject string) ([]runtime.StreamID, bool, error) {
	if err := s.enterKeys(ctx, "subject streams", subject); err != nil {
		return nil, false, err
	}
	s.keyRing.mu.Lock()
	defer s.keyRing.mu.Unlock()
	e := s.keyRing.keys[subject]
	if e == nil {
		return nil, false, nil
	}
	return s.liveStreams(e.streams), true, nil
}

// ForgetSubject deletes subject's data key and returns its streams.
func (s *Store) ForgetSubject(ctx context.Context, subject string) ([]runtime.StreamID, bool, error) {
	if err := s.enterKeys(ctx, "forget subject", subject); err != nil {
		return nil, false, err
	}
	s.keyRing.mu.Lock()
	defer s.keyRing.mu.Unlock()
	e := s.keyRing.keys[subject]
	if e == nil {
		return nil, false, nil
	}
	delete(s.keyRing.keys, subject)
	clear(e.key.Key[:])
	return s.liveStreams(e.streams), true, nil
}

// liveStreams returns the streams of m that are not hard-deleted, sorted:
// a hard-deleted stream holds no sealed data any more (runtime.KeyStore).
// The caller holds keyRing.mu (nothing takes keyRing.mu under s.mu).
func (s *Store) liveStreams(m map[runtime.StreamID]struct{}) []runtime.StreamID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := sortedStreams(m)
	return slices.DeleteFunc(out, func(st runtime.StreamID) bool {
		e := s.streams[st]
		return e != nil && e.tomb != nil && e.tomb.Mode == runtime.HardDelete
	})
}

func sortedStreams(m map[runtime.StreamID]struct{}) []runtime.StreamID {
	return slices.SortedFunc(maps.Keys(m), func(a, b runtime.StreamID) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.ID, b.ID))
	})
}
