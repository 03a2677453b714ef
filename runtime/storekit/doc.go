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
package storekit
