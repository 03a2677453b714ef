package runtime

import (
	"context"
	"maps"
	"time"
)

// DefaultRetries is how many times Execute retries a conflicting append.
const DefaultRetries = 10

// Option configures a Repository (generated New<A>Repository functions
// take them).
type Option func(*repoOptions)

type repoOptions struct {
	retries       int
	snapshotEvery uint64
	snapshotSet   bool
	now           func() time.Time
	onError       func(error)
}

// WithRetries sets how many times Execute retries after a version conflict
// (default DefaultRetries). 0 disables retries.
func WithRetries(n int) Option {
	return func(o *repoOptions) {
		if n >= 0 {
			o.retries = n
		}
	}
}

// WithSnapshotEvery overrides the aggregate's snapshot=N directive: a
// snapshot is saved whenever a stream's version crosses a multiple of n.
// 0 disables snapshots.
func WithSnapshotEvery(n uint64) Option {
	return func(o *repoOptions) { o.snapshotEvery, o.snapshotSet = n, true }
}

// WithClock sets the clock that stamps appended events (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(o *repoOptions) {
		if now != nil {
			o.now = now
		}
	}
}

// WithErrorHandler receives errors that do not fail the call that met them:
// a snapshot that could not be saved, or a stored snapshot that could not be
// decoded and was ignored. By default they are dropped.
func WithErrorHandler(f func(error)) Option {
	return func(o *repoOptions) { o.onError = f }
}

// ExecOption configures one Repository.Execute call.
type ExecOption func(*execOptions)

type execOptions struct {
	key      string
	metadata map[string]string
	report   *AppendResult
}

// IdempotencyKey makes Execute idempotent under key, across restarts and
// processes: a key that succeeded returns its first version without deciding
// again; a rejected command records nothing (see docs/guide.md, "Idempotency").
func IdempotencyKey(key string) ExecOption {
	return func(o *execOptions) { o.key = key }
}

// Metadata attaches md to every event the command appends, on top of any
// metadata in the context (see ContextWithMetadata).
func Metadata(md map[string]string) ExecOption {
	return func(o *execOptions) {
		if o.metadata == nil {
			o.metadata = make(map[string]string, len(md))
		}
		maps.Copy(o.metadata, md)
	}
}

// ReportAppend makes Execute store in *res, when it returns nil, where its
// events landed: pass res.LastPosition to projection.Group.WaitFor. See
// docs/guide.md, "Read your writes", for a call that appended nothing.
func ReportAppend(res *AppendResult) ExecOption {
	return func(o *execOptions) { o.report = res }
}

type appendReportKey struct{}

// ContextWithAppendReport returns a context that makes Repository.Append
// (whose signature takes no options) store its result in *res, as
// ReportAppend does for Execute. *res is written only when Append returns
// nil; Execute ignores it.
func ContextWithAppendReport(ctx context.Context, res *AppendResult) context.Context {
	return context.WithValue(ctx, appendReportKey{}, res)
}

// appendReport returns the *AppendResult set by ContextWithAppendReport.
func appendReport(ctx context.Context) *AppendResult {
	res, _ := ctx.Value(appendReportKey{}).(*AppendResult)
	return res
}
