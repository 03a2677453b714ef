// Package projection feeds read models from the whole log of a store:
// events of any stream, in global position order, from a persisted
// checkpoint, then live.
//
// A Projection describes one read model (cqrsgen generates its
// Projection() method for each //cqrs:projection type: On and NewHandlers
// decode each record straight into the event its handler takes). Run runs
// one; a Group runs several, each in its own goroutine, reports their
// Status, waits for a position (WaitFor, for read-your-writes with
// runtime.ReportAppend) and rebuilds them exactly. Delivery is
// at-least-once, or exactly-once when the read model commits its position
// with its writes (Projection.Position).
//
// On a store shared by several processes (one that implements
// lease.Leaser, such as PostgreSQL) each projection takes a fenced lease,
// so that N replicas run the same read side with one active per
// projection; Partitions splits a projection by stream across them.
// Errors matching runtime.ErrUnavailable are waited out.
package projection
