package tenant

import (
	"context"
	"fmt"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// A tenant's view keeps its subjects' data keys in the store underneath
// under scoped subject ids (the tenant's prefix and the subject), so that
// two tenants' subjects of the same id have distinct keys and forgetting
// one forgets only that tenant's. It implements runtime.KeyStore itself:
// runtime.KeysOf finds it before the store underneath, whose KeyStore is
// the administrator's view of every tenant's keys.

var _ runtime.KeyStore = (*Store)(nil)

// keys returns the KeyStore underneath.
func (s *Store) keys(what string) (runtime.KeyStore, error) {
	if err := s.closed(what); err != nil {
		return nil, err
	}
	k, ok := runtime.KeysOf(s.inner)
	if !ok {
		return nil, fmt.Errorf("cqrsgen/tenant: %s: %w", what, runtime.ErrNoKeyStore)
	}
	return k, nil
}

// SubjectKey returns the tenant's subject's data key (see runtime.KeyStore).
func (s *Store) SubjectKey(ctx context.Context, subject string, stream runtime.StreamID, fresh runtime.DataKey) (runtime.DataKey, error) {
	k, err := s.keys("subject key")
	if err != nil {
		return runtime.DataKey{}, err
	}
	sub, err := s.scopeKey("subject", subject)
	if err != nil {
		return runtime.DataKey{}, err
	}
	st, err := s.scope(stream)
	if err != nil {
		return runtime.DataKey{}, err
	}
	return k.SubjectKey(ctx, sub, st, fresh)
}

// LoadSubjectKey returns the tenant's subject's data key or
// runtime.ErrNotFound.
func (s *Store) LoadSubjectKey(ctx context.Context, subject string) (runtime.DataKey, error) {
	k, err := s.keys("load subject key")
	if err != nil {
		return runtime.DataKey{}, err
	}
	sub, err := s.scopeKey("subject", subject)
	if err != nil {
		return runtime.DataKey{}, err
	}
	return k.LoadSubjectKey(ctx, sub)
}

// SubjectStreams returns the tenant's streams recorded for its subject.
func (s *Store) SubjectStreams(ctx context.Context, subject string) ([]runtime.StreamID, bool, error) {
	k, err := s.keys("subject streams")
	if err != nil {
		return nil, false, err
	}
	sub, err := s.scopeKey("subject", subject)
	if err != nil {
		return nil, false, err
	}
	streams, found, err := k.SubjectStreams(ctx, sub)
	return s.unscopeStreams(streams), found, err
}

// ForgetSubject deletes the tenant's subject's data key.
func (s *Store) ForgetSubject(ctx context.Context, subject string) ([]runtime.StreamID, bool, error) {
	k, err := s.keys("forget subject")
	if err != nil {
		return nil, false, err
	}
	sub, err := s.scopeKey("subject", subject)
	if err != nil {
		return nil, false, err
	}
	streams, found, err := k.ForgetSubject(ctx, sub)
	return s.unscopeStreams(streams), found, err
}

// unscopeStreams keeps the tenant's streams (a scoped subject only ever
// records the tenant's own), as the tenant names them.
func (s *Store) unscopeStreams(streams []runtime.StreamID) []runtime.StreamID {
	out := streams[:0:0]
	for _, st := range streams {
		if u, ok := s.unscope(st); ok {
			out = append(out, u)
		}
	}
	return out
}

var _ runtime.RecordKeys = (*AllStore)(nil)

// KeysFor returns the KeyStore that opens rec, a record All's ReadAll
// yielded: its tenant's (named by Metadata[MetadataKey]) for a tenant's
// record, the store's own for a record written outside any tenant. So a
// projection across tenants reads each tenant's sealed fields as that
// tenant's repositories do.
func (a *AllStore) KeysFor(rec runtime.Record) (runtime.KeyStore, bool) {
	name, ok := rec.Metadata[MetadataKey]
	if !ok || ValidateName(name) != nil {
		return runtime.KeysOf(a.inner)
	}
	return &Store{inner: a.inner, name: name, prefix: prefix(name), done: a.done}, true
}
