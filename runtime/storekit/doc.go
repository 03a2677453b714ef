// Package storekit is for the authors of stores: the rules every
// runtime.Store applies, implemented once, so that a third-party store
// behaves like backends/memory, backends/pebble and backends/postgres, and
// the optional capabilities tools look for (Verifier, StreamLister).
//
// An append, as every store carries it out:
//
//	if err := storekit.ValidateAppend(req); err != nil {
//		return runtime.AppendResult{}, err // nothing touched
//	}
//	stamp := storekit.NewStamp(req, now) // ids and times: one clock reading
//	// ... lock the stream (a mutex, a transaction, a row lock) ...
//	existing, found := lookup(req.IdempotencyKey) // only when the key is set
//	res, err := storekit.Check(req, version, head, existing, found)
//	if err != nil {
//		return runtime.AppendResult{}, err // duplicate, conflict or over the limit
//	}
//	for i := range req.Events {
//		id, t := stamp.Event(i)
//		// write event i at version res.FirstVersion+i, position res.FirstPosition+i
//	}
//	if req.IdempotencyKey != "" {
//		// write storekit.KeyRecord(req, res, stamp.Now()) in the same commit
//	}
//
// A store that decides in its database (PostgreSQL's append function)
// passes what the database found to Check, so that the errors are the same.
// Reads and the other writes check their input with runtime.ValidateStream,
// runtime.ValidateKey and ValidateSnapshot, and report a done context with
// ContextErr. backends/storetest runs the whole contract against a store.
//
// # The runtime.Store contract
//
// runtime's doc comments say what a caller relies on; the rules below are the
// whole contract a store implements. backends/storetest checks them.
//
// All methods are safe for concurrent use. Every method that takes a
// context returns promptly with an error wrapping ctx.Err() when the context
// is done before the call takes effect, and a method called after Close
// returns an error wrapping runtime.ErrClosed.
//
// Input rules shared by reads and writes: a method naming an invalid stream
// (empty type or id, over the length limits), an empty checkpoint name or an
// empty idempotency key fails with runtime.ErrInvalid or runtime.ErrTooLarge,
// whether it reads or writes. A read sequence on a done context or a closed
// store yields that error first, before any record.
//
// Transient failures: an error that means the backend cannot be reached
// for now (a lost connection, a server restarting) wraps
// runtime.ErrUnavailable, so that runtime.Subscribe and the projection and
// saga runners wait it out; every other error is final for the call. Stores
// shared by several processes may also implement lease.Leaser.
//
// Durability and visibility: Append returns only once the events are
// durable (unless the backend was explicitly opened with relaxed syncing),
// and ReadAll, Head and Wait never expose a position that is not yet durable.
// Subscribers are therefore only ever told about persisted events.
//
// The methods, one by one:
//   - Append atomically appends req.Events to req.Stream if req.Expected
//     matches, assigning consecutive versions and consecutive global
//     positions. Each event keeps its EventData.ID, or gets
//     runtime.NewEventID when that is zero. A mismatch is a
//     *runtime.ConflictError; bad input is ErrInvalid or ErrTooLarge; in
//     every failure case nothing is written.
//   - ReadStream yields the events of stream with version > after, in
//     version order. A missing stream yields nothing. The Records are the
//     caller's, who may keep them: the store never writes a yielded
//     Record's Data (or anything it points to) again.
//   - ReadAll yields events of all streams with position > after, in
//     position order, up to the durable head at the time of the call.
//   - StreamVersion returns the stream's current version, 0 when missing.
//   - Head returns the last durable global position, 0 for an empty store.
//   - Wait blocks until the durable head is greater than after, then
//     returns it. It returns ctx's error when ctx is done first and
//     ErrClosed when the store closes.
//   - SaveSnapshot stores s as the stream's latest snapshot unless one at a
//     higher version is already stored, in which case it returns nil and
//     keeps the newer one (snapshots never go backwards). A snapshot at the
//     stored version replaces it. LoadSnapshot returns the stream's latest
//     snapshot or ErrNotFound.
//   - SaveCheckpoint records position under name (a projection or saga).
//     Checkpoints may move backwards (a rebuild resets them to 0).
//     LoadCheckpoint returns the position recorded under name or
//     ErrNotFound.
//   - SaveIdempotency records rec if its key is new; otherwise it writes
//     nothing and returns a *runtime.DuplicateError with the first record.
//     LoadIdempotency returns the record for key or ErrNotFound.
//   - Stats returns the store's counters.
//   - Flush makes everything appended so far durable (a no-op for stores
//     that sync every append) and returns when it is.
//   - Close releases the store. It waits for in-flight appends; every call
//     after it returns ErrClosed, including a second Close.
//
// # runtime.StreamVisitor
//
// StreamVisitor is the optional capability behind runtime.Repository.Load:
// a store that can show a stream's events to a callback without copying
// them into Records implements it, and Load (for aggregates with an event
// table, Aggregate.Events) reads through it instead of ReadStream. A Load
// consumes each event at once (decodes it into the state), so the copy
// ReadStream must make, that the caller may keep its Records, is work for
// nothing there, as are the event's time, id and metadata, which Load
// never reads.
//
// VisitStream calls fn with each event of stream with version > after, in
// version order: the events ReadStream(ctx, stream, after) would yield,
// under the same validation and errors. The view (runtime.EventView) and
// what it points to are valid only during the call to fn; Name and Data may
// alias the store's own buffers and must be neither modified nor kept,
// unless the store marks the view Stable: then Data's bytes (not the view,
// not Name) may be kept, and Load's generated decoders slice strings from
// them instead of copying each body (one allocation per event fewer). Mark
// a view Stable only when no path of the store, or of anyone it hands the
// bytes to, ever writes them again, as long as anything refers to them:
// not after a hard delete, a truncation, a crypto-shredding, a compaction
// or Close (drop references instead of clearing or reusing bytes). A Go
// string aliasing bytes that change breaks the language's guarantee that
// strings are immutable. Iterator or page memory that a store reuses (as
// Pebble's is) is not stable: Pebble's VisitStream copies the bodies into
// chunks of its own, written once, and marks those views Stable. The
// memory store lends its arena, which it never writes again.
// VisitStream returns fn's first error, ending the visit, or the store's own
// (a *runtime.DecodeError for a damaged record, ctx's error, ErrClosed). fn
// must not call the store: a store may hold a lock of the read while fn
// runs (Pebble's Close waits for the call in progress).
//
// Only the store the repository was given is asked, never the store behind
// a wrapper's Unwrap: a wrapper changes what a read means (tenant.Scope
// rewrites the stream, instrument.Store counts the read), so it hides
// the capability unless it implements it itself, and Load then uses the
// wrapper's ReadStream. instrument.Store and tenant.Store implement it,
// with their ReadStream's accounting and scoping, through VisitStream (this
// package's function): the wrapped store's own VisitStream when it has one,
// else its ReadStream with each Record shown as a Stable view (Records are
// the caller's; see ReadStream above). A wrapper of your own does the same.
//
// # runtime.KeyStore
//
// A store that keeps the data keys of crypto-shredding implements
// runtime.KeyStore (runtime.KeysOf finds it behind wrappers; a wrapper that
// scopes names, such as a tenant's view, implements KeyStore itself so that
// it is found first). The runtime generates the keys; the KeyStore only
// keeps them. All methods are safe for concurrent use.
//   - SubjectKey returns subject's data key, storing fresh as that key first
//     when the subject has none, and records that stream holds data sealed
//     under it. Both are durable when it returns.
//   - LoadSubjectKey returns subject's data key, or ErrNotFound when it has
//     none (it never had one, or it was forgotten).
//   - SubjectStreams returns the streams recorded for subject's key, sorted
//     by type then id, leaving out those hard-deleted since (they hold no
//     sealed data any more); found is false when the subject has no key.
//   - ForgetSubject deletes subject's data key and its streams, durably, and
//     returns the streams as SubjectStreams would have (hard-deleted ones
//     left out); a subject with no key is (nil, false, nil).
package storekit
