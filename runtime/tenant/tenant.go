// Package tenant gives each tenant of a multi-tenant service its own view of
// one shared store. Scope returns a runtime.Store in which one tenant's
// streams, global log, subscriptions, snapshots, checkpoints and idempotency
// keys are the only ones that exist: no stream id, tenant name or key, however
// it is built, reaches another tenant's data. All returns a read-only view of
// every tenant's log at once, for projections that run across tenants.
//
//	acme, err := tenant.Scope(store, "acme")
//	accounts := NewAccountRepository(acme) // acme's accounts only
//
// # How it is stored
//
// A scoped name is the tenant's prefix followed by the name: "@" + the
// tenant's length in bytes + ":" + the tenant + "/". The prefix is
// length-delimited, so (tenant, name) pairs map to distinct stored names
// whatever bytes they hold ("a" with "b/c" is "@1:a/b/c", "a/b" with "c" is
// "@3:a/b/c"). Stream types, idempotency keys and checkpoint names are scoped
// so; stream ids, event names and bodies are stored as they are. The store
// underneath is the administrator's view: it shows every tenant's data under
// scoped names, and whoever writes to it directly can write anywhere.
//
// Scoped names count against the store's limits: a tenant's stream types are
// limited to runtime.MaxTypeLength less the prefix, and its keys and
// checkpoint names to runtime.MaxIDLength less the prefix.
//
// # Positions
//
// A scoped view keeps the store's global positions: a tenant's records are
// strictly increasing in position, in commit order, but not consecutive
// (other tenants' records fill the gaps). Head and Wait speak of the tenant's
// own records: Head is the position of the tenant's last durable record, so
// a projection's lag and WaitFor mean what they do on a store of its own.
//
// # Loads
//
// A scoped view is a runtime.StreamVisitor (Store.VisitStream), so a
// repository over it loads through the shared store's VisitStream, as fast
// as over the store itself, visiting only the tenant's scoped stream.
//
// # Cost
//
// The stores have no per-tenant index of the global log: a scoped ReadAll
// reads every tenant's records and keeps its own, and Head scans the records
// appended since its previous call (the whole log on a view's first call).
// Streams, snapshots, checkpoints and idempotency keys are direct lookups.
package tenant

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"strconv"
	"sync"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// MaxNameLength is the longest tenant name, in bytes.
const MaxNameLength = 128

// MetadataKey is the metadata entry that All sets on every record written
// through a scoped view, to the name of its tenant. Scoped views reserve it:
// an event written with it fails with runtime.ErrInvalid.
const MetadataKey = "cqrs.tenant"

// prefix is the stored prefix of the tenant name's scoped names.
func prefix(name string) string {
	return "@" + strconv.Itoa(len(name)) + ":" + name + "/"
}

// Split returns the tenant and the unscoped name of a scoped stream type,
// idempotency key or checkpoint name as stored in the store underneath, and
// whether s is scoped at all.
func Split(s string) (tenant, name string, ok bool) {
	if len(s) < 5 || s[0] != '@' || s[1] < '1' || s[1] > '9' {
		return "", "", false
	}
	n, i := 0, 1
	for ; i < len(s) && i <= 4 && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
	}
	if i >= len(s) || s[i] != ':' || n > MaxNameLength {
		return "", "", false
	}
	end := i + 1 + n
	if end >= len(s) || s[end] != '/' {
		return "", "", false
	}
	return s[i+1 : end], s[end+1:], true
}

// ValidateName reports whether name can name a tenant: 1 to MaxNameLength
// bytes, any bytes.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty tenant name", runtime.ErrInvalid)
	case len(name) > MaxNameLength:
		return fmt.Errorf("%w: tenant name is %d bytes, limit %d", runtime.ErrTooLarge, len(name), MaxNameLength)
	}
	return nil
}

// Store is one tenant's view of a shared store (see Scope). It satisfies
// runtime.Store; all methods are safe for concurrent use.
type Store struct {
	inner  runtime.Store
	name   string
	prefix string

	done      chan struct{} // closed by Close
	closeOnce sync.Once

	// The tenant's head (see Head): last is the position of the tenant's
	// last record among the store's records up to scanned.
	headMu  sync.Mutex
	scanned uint64
	last    uint64
}

var (
	_ runtime.Store         = (*Store)(nil)
	_ runtime.StreamVisitor = (*Store)(nil)
)

// Scope returns tenant name's view of store. Closing the view does not close
// store, which its owner closes once every view is done with it.
func Scope(store runtime.Store, name string) (*Store, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, fmt.Errorf("%w: tenant.Scope of a nil store", runtime.ErrInvalid)
	}
	return &Store{inner: store, name: name, prefix: prefix(name), done: make(chan struct{})}, nil
}

// Name returns the view's tenant.
func (s *Store) Name() string { return s.name }

// Unwrap returns the shared store underneath.
func (s *Store) Unwrap() runtime.Store { return s.inner }

func (s *Store) closed(what string) error {
	select {
	case <-s.done:
		return fmt.Errorf("cqrsgen/tenant: %s: %w", what, runtime.ErrClosed)
	default:
		return nil
	}
}

// scope validates stream as the caller named it and returns it as stored.
func (s *Store) scope(stream runtime.StreamID) (runtime.StreamID, error) {
	if err := runtime.ValidateStream(stream); err != nil {
		return stream, err
	}
	t := s.prefix + stream.Type
	if len(t) > runtime.MaxTypeLength {
		return stream, fmt.Errorf("%w: stream type is %d bytes, limit %d for tenant %q (%d less the tenant's %d-byte prefix)",
			runtime.ErrTooLarge, len(stream.Type), runtime.MaxTypeLength-len(s.prefix), s.name, runtime.MaxTypeLength, len(s.prefix))
	}
	return runtime.StreamID{Type: t, ID: stream.ID}, nil
}

// scopeKey validates an idempotency key or checkpoint name and returns it as
// stored.
func (s *Store) scopeKey(what, key string) (string, error) {
	if err := runtime.ValidateKey(what, key); err != nil {
		return key, err
	}
	k := s.prefix + key
	if len(k) > runtime.MaxIDLength {
		return key, fmt.Errorf("%w: %s is %d bytes, limit %d for tenant %q (%d less the tenant's %d-byte prefix)",
			runtime.ErrTooLarge, what, len(key), runtime.MaxIDLength-len(s.prefix), s.name, runtime.MaxIDLength, len(s.prefix))
	}
	return k, nil
}

// unscope returns a stored stream as the tenant names it, and whether it
// is the tenant's.
func (s *Store) unscope(stream runtime.StreamID) (runtime.StreamID, bool) {
	t, name, ok := Split(stream.Type)
	if !ok || t != s.name {
		return stream, false
	}
	return runtime.StreamID{Type: name, ID: stream.ID}, true
}

func (s *Store) unscopeIdem(rec runtime.IdempotencyRecord) runtime.IdempotencyRecord {
	if _, k, ok := Split(rec.Key); ok {
		rec.Key = k
	}
	rec.Stream, _ = s.unscope(rec.Stream)
	return rec
}

// unscopeErr rewrites the errors whose fields name stored streams or keys.
func (s *Store) unscopeErr(err error) error {
	var del *runtime.DeletedError
	if errors.As(err, &del) {
		out := *del
		out.Tombstone.Stream, _ = s.unscope(del.Tombstone.Stream)
		return &out
	}
	var ce *runtime.ConflictError
	if errors.As(err, &ce) {
		out := *ce
		out.Stream, _ = s.unscope(ce.Stream)
		return &out
	}
	var de *runtime.DuplicateError
	if errors.As(err, &de) {
		return &runtime.DuplicateError{Existing: s.unscopeIdem(de.Existing)}
	}
	var te *runtime.TruncatedError
	if errors.As(err, &te) {
		out := *te
		out.Stream, _ = s.unscope(te.Stream)
		return &out
	}
	var dec *runtime.DecodeError
	if errors.As(err, &dec) {
		out := *dec
		out.Stream, _ = s.unscope(dec.Stream)
		return &out
	}
	return err
}

// Append appends to the tenant's stream req.Stream (see runtime.Store).
func (s *Store) Append(ctx context.Context, req runtime.AppendRequest) (runtime.AppendResult, error) {
	if err := s.closed("append to " + req.Stream.String()); err != nil {
		return runtime.AppendResult{}, err
	}
	if err := storekit.ValidateAppend(req); err != nil {
		return runtime.AppendResult{}, err
	}
	for i, e := range req.Events {
		if _, ok := e.Metadata[MetadataKey]; ok {
			return runtime.AppendResult{}, fmt.Errorf("%w: event %d of append to %s: metadata key %q is reserved for the tenant",
				runtime.ErrInvalid, i, req.Stream, MetadataKey)
		}
	}
	stream, err := s.scope(req.Stream)
	if err != nil {
		return runtime.AppendResult{}, err
	}
	req.Stream = stream
	if req.IdempotencyKey != "" {
		if req.IdempotencyKey, err = s.scopeKey("idempotency key", req.IdempotencyKey); err != nil {
			return runtime.AppendResult{}, err
		}
	}
	res, err := s.inner.Append(ctx, req)
	return res, s.unscopeErr(err)
}

// records yields the tenant's records among seq, as the tenant names them.
func (s *Store) records(seq iter.Seq2[runtime.Record, error]) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) {
		for rec, err := range seq {
			if err != nil {
				yield(runtime.Record{}, s.unscopeErr(err))
				return
			}
			var mine bool
			if rec.Stream, mine = s.unscope(rec.Stream); !mine {
				continue
			}
			if !yield(rec, nil) {
				return
			}
		}
	}
}

func fail(err error) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) { yield(runtime.Record{}, err) }
}

// ReadStream yields the events of the tenant's stream with version > after.
func (s *Store) ReadStream(ctx context.Context, stream runtime.StreamID, after uint64) iter.Seq2[runtime.Record, error] {
	if err := s.closed("read " + stream.String()); err != nil {
		return fail(err)
	}
	scoped, err := s.scope(stream)
	if err != nil {
		return fail(err)
	}
	return s.records(s.inner.ReadStream(ctx, scoped, after))
}

// VisitStream visits the events of the tenant's stream with version >
// after (runtime.StreamVisitor): the events ReadStream yields, under its
// validation and errors, through the store underneath's own VisitStream
// when it has one, else its ReadStream (storekit.VisitStream). Only the
// tenant's scoped stream is visited, and each view passes through as the
// store shows it, Stable included. fn's error is returned unchanged.
func (s *Store) VisitStream(ctx context.Context, stream runtime.StreamID, after uint64, fn func(*runtime.EventView) error) error {
	if err := s.closed("read " + stream.String()); err != nil {
		return err
	}
	scoped, err := s.scope(stream)
	if err != nil {
		return err
	}
	stopped := false
	err = storekit.VisitStream(ctx, s.inner, scoped, after, func(e *runtime.EventView) error {
		if err := fn(e); err != nil {
			stopped = true
			return err
		}
		return nil
	})
	if err != nil && !stopped {
		return s.unscopeErr(err)
	}
	return err
}

// ReadAll yields the tenant's records with position > after, in position
// order, up to the store's durable head at the time of the call. It reads
// every tenant's records to find them (see the package doc).
func (s *Store) ReadAll(ctx context.Context, after uint64) iter.Seq2[runtime.Record, error] {
	if err := s.closed("read all"); err != nil {
		return fail(err)
	}
	return s.records(s.inner.ReadAll(ctx, after))
}

// StreamVersion returns the version of the tenant's stream.
func (s *Store) StreamVersion(ctx context.Context, stream runtime.StreamID) (uint64, error) {
	if err := s.closed("version of " + stream.String()); err != nil {
		return 0, err
	}
	scoped, err := s.scope(stream)
	if err != nil {
		return 0, err
	}
	return s.inner.StreamVersion(ctx, scoped)
}

// Head returns the position of the tenant's last durable record, 0 when it
// has none. It scans the records appended since its previous call.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := s.closed("head"); err != nil {
		return 0, err
	}
	s.headMu.Lock()
	defer s.headMu.Unlock()
	head, err := s.inner.Head(ctx)
	if err != nil || head <= s.scanned {
		return s.last, err
	}
	for rec, err := range s.inner.ReadAll(ctx, s.scanned) {
		if err != nil {
			return s.last, err
		}
		if rec.Position > head {
			break
		}
		if t, _, ok := Split(rec.Stream.Type); ok && t == s.name {
			s.last = rec.Position
		}
		s.scanned = rec.Position
	}
	s.scanned = max(s.scanned, head)
	return s.last, nil
}

// Wait blocks until the tenant has a durable record with position > after,
// then returns the tenant's head. Other tenants' appends do not wake it.
func (s *Store) Wait(ctx context.Context, after uint64) (uint64, error) {
	ctx, stop := untilClosed(ctx, s.done)
	defer stop()
	for {
		head, err := s.Head(ctx)
		if err != nil {
			return 0, s.waitErr(err)
		}
		if head > after {
			return head, nil
		}
		// Another caller's Head may have scanned past this tenant's new
		// record since the Head above: read last with scanned, or the
		// wait below would start after that record and never return.
		s.headMu.Lock()
		scanned, last := s.scanned, s.last
		s.headMu.Unlock()
		if last > after {
			return last, nil
		}
		if _, err := s.inner.Wait(ctx, scanned); err != nil {
			return 0, s.waitErr(err)
		}
	}
}

// waitErr reports a Wait ended by Close as ErrClosed.
func (s *Store) waitErr(err error) error {
	if cerr := s.closed("wait"); cerr != nil {
		return cerr
	}
	return err
}

// SaveSnapshot saves a snapshot of the tenant's stream.
func (s *Store) SaveSnapshot(ctx context.Context, snap runtime.Snapshot) error {
	if err := s.closed("save snapshot of " + snap.Stream.String()); err != nil {
		return err
	}
	scoped, err := s.scope(snap.Stream)
	if err != nil {
		return err
	}
	snap.Stream = scoped
	return s.inner.SaveSnapshot(ctx, snap)
}

// LoadSnapshot loads the latest snapshot of the tenant's stream.
func (s *Store) LoadSnapshot(ctx context.Context, stream runtime.StreamID) (runtime.Snapshot, error) {
	if err := s.closed("load snapshot of " + stream.String()); err != nil {
		return runtime.Snapshot{}, err
	}
	scoped, err := s.scope(stream)
	if err != nil {
		return runtime.Snapshot{}, err
	}
	snap, err := s.inner.LoadSnapshot(ctx, scoped)
	if err == nil {
		snap.Stream = stream
	}
	return snap, err
}

// SaveCheckpoint records the tenant's checkpoint name.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, position uint64) error {
	if err := s.closed(fmt.Sprintf("save checkpoint %q", name)); err != nil {
		return err
	}
	k, err := s.scopeKey("checkpoint name", name)
	if err != nil {
		return err
	}
	return s.inner.SaveCheckpoint(ctx, k, position)
}

// LoadCheckpoint returns the tenant's checkpoint name.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (uint64, error) {
	if err := s.closed(fmt.Sprintf("load checkpoint %q", name)); err != nil {
		return 0, err
	}
	k, err := s.scopeKey("checkpoint name", name)
	if err != nil {
		return 0, err
	}
	return s.inner.LoadCheckpoint(ctx, k)
}

// SaveIdempotency records the tenant's idempotency key.
func (s *Store) SaveIdempotency(ctx context.Context, rec runtime.IdempotencyRecord) error {
	if err := s.closed(fmt.Sprintf("save idempotency key %q", rec.Key)); err != nil {
		return err
	}
	k, err := s.scopeKey("idempotency key", rec.Key)
	if err != nil {
		return err
	}
	rec.Key = k
	if rec.Stream != (runtime.StreamID{}) {
		if rec.Stream, err = s.scope(rec.Stream); err != nil {
			return err
		}
	}
	return s.unscopeErr(s.inner.SaveIdempotency(ctx, rec))
}

// LoadIdempotency returns the record of the tenant's idempotency key.
func (s *Store) LoadIdempotency(ctx context.Context, key string) (runtime.IdempotencyRecord, error) {
	if err := s.closed(fmt.Sprintf("load idempotency key %q", key)); err != nil {
		return runtime.IdempotencyRecord{}, err
	}
	k, err := s.scopeKey("idempotency key", key)
	if err != nil {
		return runtime.IdempotencyRecord{}, err
	}
	rec, err := s.inner.LoadIdempotency(ctx, k)
	if err != nil {
		return rec, err
	}
	return s.unscopeIdem(rec), nil
}

// Stats returns the tenant's head. The counters are not kept per tenant and
// are zero; the store underneath has the totals of all tenants.
func (s *Store) Stats(ctx context.Context) (runtime.Stats, error) {
	head, err := s.Head(ctx)
	return runtime.Stats{Head: head}, err
}

// Flush flushes the store underneath.
func (s *Store) Flush(ctx context.Context) error {
	if err := s.closed("flush"); err != nil {
		return err
	}
	return s.inner.Flush(ctx)
}

// Close closes the view, not the store underneath: later calls on the view
// fail with runtime.ErrClosed, and so does a second Close.
func (s *Store) Close() error {
	err := fmt.Errorf("cqrsgen/tenant: close: %w", runtime.ErrClosed)
	s.closeOnce.Do(func() {
		close(s.done)
		err = nil
	})
	return err
}

// AllStore is a read-only view of every tenant's log (see All).
type AllStore struct {
	inner     runtime.Store
	done      chan struct{}
	closeOnce sync.Once
}

var _ runtime.Store = (*AllStore)(nil)

// All returns a read-only view of store across tenants, for projections that
// run over every tenant: ReadAll yields each tenant's records with their
// stream types unscoped and the tenant's name in Metadata[MetadataKey]
// (records written outside any tenant carry no such entry). Head, Wait and
// checkpoints are the store's own. Writes and per-stream reads fail with
// runtime.ErrInvalid: a stream belongs to one tenant, so use its Scope.
// Closing the view does not close store.
func All(store runtime.Store) *AllStore {
	return &AllStore{inner: store, done: make(chan struct{})}
}

func (a *AllStore) closed(what string) error {
	select {
	case <-a.done:
		return fmt.Errorf("cqrsgen/tenant: %s: %w", what, runtime.ErrClosed)
	default:
		return nil
	}
}

func (a *AllStore) refuse(what string) error {
	if err := a.closed(what); err != nil {
		return err
	}
	return fmt.Errorf("%w: %s through tenant.All, a read-only view of every tenant: use the tenant's tenant.Scope",
		runtime.ErrInvalid, what)
}

// Append fails: see All.
func (a *AllStore) Append(_ context.Context, req runtime.AppendRequest) (runtime.AppendResult, error) {
	return runtime.AppendResult{}, a.refuse("append to " + req.Stream.String())
}

// ReadStream fails: see All.
func (a *AllStore) ReadStream(_ context.Context, stream runtime.StreamID, _ uint64) iter.Seq2[runtime.Record, error] {
	return fail(a.refuse("read " + stream.String()))
}

// ReadAll yields every tenant's records with position > after (see All).
func (a *AllStore) ReadAll(ctx context.Context, after uint64) iter.Seq2[runtime.Record, error] {
	if err := a.closed("read all"); err != nil {
		return fail(err)
	}
	return func(yield func(runtime.Record, error) bool) {
		for rec, err := range a.inner.ReadAll(ctx, after) {
			if err == nil {
				if t, name, ok := Split(rec.Stream.Type); ok {
					rec.Stream.Type = name
					md := make(map[string]string, len(rec.Metadata)+1)
					maps.Copy(md, rec.Metadata)
					md[MetadataKey] = t
					rec.Metadata = md
				}
			}
			if !yield(rec, err) || err != nil {
				return
			}
		}
	}
}

// StreamVersion fails: see All.
func (a *AllStore) StreamVersion(_ context.Context, stream runtime.StreamID) (uint64, error) {
	return 0, a.refuse("version of " + stream.String())
}

// Head returns the store's head.
func (a *AllStore) Head(ctx context.Context) (uint64, error) {
	if err := a.closed("head"); err != nil {
		return 0, err
	}
	return a.inner.Head(ctx)
}

// Wait waits on the store's head.
func (a *AllStore) Wait(ctx context.Context, after uint64) (uint64, error) {
	if err := a.closed("wait"); err != nil {
		return 0, err
	}
	ctx, stop := untilClosed(ctx, a.done)
	defer stop()
	head, err := a.inner.Wait(ctx, after)
	if cerr := a.closed("wait"); cerr != nil {
		return 0, cerr
	}
	return head, err
}

// SaveSnapshot fails: see All.
func (a *AllStore) SaveSnapshot(_ context.Context, snap runtime.Snapshot) error {
	return a.refuse("save snapshot of " + snap.Stream.String())
}

// LoadSnapshot fails: see All.
func (a *AllStore) LoadSnapshot(_ context.Context, stream runtime.StreamID) (runtime.Snapshot, error) {
	return runtime.Snapshot{}, a.refuse("load snapshot of " + stream.String())
}

// SaveCheckpoint records a checkpoint in the store itself.
func (a *AllStore) SaveCheckpoint(ctx context.Context, name string, position uint64) error {
	if err := a.closed("save checkpoint"); err != nil {
		return err
	}
	return a.inner.SaveCheckpoint(ctx, name, position)
}

// LoadCheckpoint loads a checkpoint of the store itself.
func (a *AllStore) LoadCheckpoint(ctx context.Context, name string) (uint64, error) {
	if err := a.closed("load checkpoint"); err != nil {
		return 0, err
	}
	return a.inner.LoadCheckpoint(ctx, name)
}

// SaveIdempotency fails: see All.
func (a *AllStore) SaveIdempotency(_ context.Context, rec runtime.IdempotencyRecord) error {
	return a.refuse(fmt.Sprintf("save idempotency key %q", rec.Key))
}

// LoadIdempotency fails: see All.
func (a *AllStore) LoadIdempotency(_ context.Context, key string) (runtime.IdempotencyRecord, error) {
	return runtime.IdempotencyRecord{}, a.refuse(fmt.Sprintf("load idempotency key %q", key))
}

// Stats returns the store's stats: every tenant's totals.
func (a *AllStore) Stats(ctx context.Context) (runtime.Stats, error) {
	if err := a.closed("stats"); err != nil {
		return runtime.Stats{}, err
	}
	return a.inner.Stats(ctx)
}

// Flush flushes the store.
func (a *AllStore) Flush(ctx context.Context) error {
	if err := a.closed("flush"); err != nil {
		return err
	}
	return a.inner.Flush(ctx)
}

// Close closes the view, not the store underneath.
func (a *AllStore) Close() error {
	err := fmt.Errorf("cqrsgen/tenant: close: %w", runtime.ErrClosed)
	a.closeOnce.Do(func() {
		close(a.done)
		err = nil
	})
	return err
}

// untilClosed returns a context that ends with ctx or when done is closed (a
// view's Close), and the function that releases it.
func untilClosed(ctx context.Context, done <-chan struct{}) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	quit := make(chan struct{})
	go func() {
		select {
		case <-done:
			cancel()
		case <-quit:
		}
	}()
	return ctx, func() {
		close(quit)
		cancel()
	}
}
