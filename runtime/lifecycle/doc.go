// Package lifecycle is for operators and store authors: what happens to
// stored data after it is written. Each operation is a function over any
// runtime.Store; the store does the work through an optional capability
// (an interface the memory, Pebble and PostgreSQL stores implement; a
// tenant's view deletes and forgets within its tenant), so a store without
// it fails with a typed error instead of doing half the job.
// docs/guide.md#data-lifecycle tells the whole story; cqrsctl delete,
// forget-subject, archive and purge-keys call these.
//
// Deleting a stream: [DeleteStream] (capability [StreamDeleter]).
//   - runtime.SoftDelete hides the stream: the repository's Load and
//     Execute fail with runtime.ErrStreamDeleted; its events stay in the
//     log for audit and rebuilds (projection.SkipDeletedStreams skips them).
//   - runtime.HardDelete also removes the stream's events, snapshot,
//     stream index and idempotency keys.
//
// Either way the store appends a tombstone record (runtime.IsTombstone) at
// the stream's next version and a new global position, durably and in one
// atomic step, so readers of the log are told; every later append to the
// stream fails, so a deleted id is never reused. A hard delete leaves holes
// in the global log; positions stay strictly increasing. [PlanDelete]
// reports the same without writing; [StreamTombstone] reads a deleted
// stream's tombstone on any store.
//
// Crypto-shredding: [ForgetSubject]. Fields tagged pii are sealed under a
// per-subject key in the store's runtime.KeyStore; forgetting the subject
// destroys that key and the snapshot keys of its streams, after which
// loads, projections, sagas and exports read its sealed values as
// runtime.ForgottenString and never fail. Events are not rewritten; each
// step is idempotent. [PlanForget] reports the same without changing
// anything.
//
// Retention (capability [Retention]): idempotency keys expire after the
// store's TTL ([IdempotencyExpired] is the rule, PurgeExpiredKeys removes
// them), and TruncateLog removes the oldest events, atomically, never
// renumbering positions; a stream read from before its first kept version
// fails with a *runtime.TruncatedError unless a snapshot covers it.
// [PlanTruncation] lists what a truncation would leave unreadable: streams
// without a covering snapshot, and checkpoints ([CheckpointLister]) that
// have not processed the range. Truncate only what is archived and
// planned.
package lifecycle
