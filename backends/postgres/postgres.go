// Package postgres is a cqrsgen event store on PostgreSQL: one event log
// shared by many processes on many machines.
//
// [Open] connects (through a github.com/jackc/pgx/v5 pool), creates or
// migrates its tables in one schema (default "cqrsgen", see [WithSchema])
// under an advisory lock, and returns a [Store] that satisfies
// runtime.Store.
//
// Guarantees, all enforced by the database rather than by this process:
//
//   - An append is one transaction (one call of the schema's append_events
//     function, or of append_group_packed for a group of appends; an unkeyed
//     append alone in its process is one statement doing the same). The
//     expected version is checked against the stream's row,
//     locked for the transaction, and a unique index on (stream type,
//     stream id, version) backs it up, so of two writers on two machines
//     appending at the same version exactly one wins; the other gets a
//     *runtime.ConflictError with the version it lost to.
//   - Global positions are taken from a single-row counter updated in the
//     append's transaction. The row lock is held until commit, so positions
//     are gap-free and in commit order: a reader of the whole log never
//     skips an event that commits later with a lower position.
//   - Concurrent appends of a process without an idempotency key are
//     combined into groups (see [WithGroups]): one transaction, one counter
//     update and one flush for all the appends that queued while the
//     previous group ran; each append is checked on its own.
//   - The append's transaction commits with synchronous_commit = off, so
//     the counter is locked for microseconds rather than for a WAL flush,
//     and Append then waits for a flush: a synchronous transaction, shared
//     by the appends of a process that wait at the same time (and merged
//     with other processes' flushes by the server's group commit), whose
//     commit covers every earlier commit. Append returns only then, so an
//     acknowledged append is durable under the server's synchronous_commit.
//   - Readers of the whole log (Head, ReadAll, Wait) follow the durable
//     head that flushes record in the log_durable table, never the
//     counter, so they only see durable positions. A long transaction
//     elsewhere in the database delays nothing: the store takes no horizon
//     from transaction ids.
//   - An idempotency key is recorded in the append's transaction.
//   - After each flush a NOTIFY (its own asynchronous transaction) wakes
//     Wait in every process; polling (see [WithPollInterval]) is the
//     fallback when notifications are lost or disabled, and a poll also
//     flushes positions whose appender died between commit and flush.
//
// docs/storage.md (PostgreSQL section) has the reasoning, the settings and
// their costs, and the measurements.
//
// Stream types, stream ids, event names, keys and metadata are stored as
// bytea, so they may hold any bytes.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultSchema is the schema Open uses unless WithSchema says otherwise.
const DefaultSchema = "cqrsgen"

// DefaultMaxConns is the pool size Open uses unless WithMaxConns or the
// DSN's pool_max_conns says otherwise. An append holds a connection for
// one round trip (its commit does not wait for the disk), so a few
// connections carry many concurrent appends; docs/storage.md has the
// measurements. Open uses two more connections: one for LISTEN, one for
// flushes.
const DefaultMaxConns = 16

// DefaultPollInterval is how often Wait re-reads the head when no
// notification arrives.
const DefaultPollInterval = time.Second

// pageSize is how many rows a read fetches per query. Reads fetch a page,
// return the connection to the pool, then yield it, so a slow consumer
// never holds a connection.
const pageSize = 1000

// Option configures Open.
type Option func(*options)

type options struct {
	schema   string
	poll     time.Duration
	maxConns int32
	groups   int
	notify   bool
	now      func() time.Time
	keyTTL   time.Duration // WithIdempotencyTTL (retention.go)
}

// WithSchema puts the store's tables in the named PostgreSQL schema
// (created if missing; default DefaultSchema). Stores in different schemas
// of one database are independent.
func WithSchema(name string) Option {
	return func(o *options) { o.schema = name }
}

// WithPollInterval sets how often Wait re-reads the head when no
// notification wakes it (default DefaultPollInterval). It bounds how late
// a waiter learns of an append when notifications are lost.
func WithPollInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.poll = d
		}
	}
}

// WithMaxConns sets the size of the connection pool (default
// DefaultMaxConns, or pool_max_conns from the DSN). The store uses up to
// three more, dedicated connections: the flusher's, the notifier's and
// LISTEN's.
func WithMaxConns(n int32) Option {
	return func(o *options) { o.maxConns = n }
}

// WithGroups sets how many groups of appends the store runs at once
// (default DefaultGroups). Concurrent appends without an idempotency key
// are combined into groups: one transaction, one position update and one
// flush for all the appends that queued while other groups ran. 0 turns
// grouping off: every append is a transaction of its own.
func WithGroups(n int) Option {
	return func(o *options) {
		if n >= 0 {
			o.groups = n
		}
	}
}

// WithNotify turns LISTEN/NOTIFY on or off (default on). Off, appends send
// no notification and Wait only polls.
func WithNotify(on bool) Option {
	return func(o *options) { o.notify = on }
}

// WithClock sets the clock that stamps events appended with a zero time
// (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// Store is a runtime.Store on PostgreSQL. It is safe for concurrent use;
// open one per process and share it.
type Store struct {
	pool    *pgxpool.Pool
	connCfg *pgx.ConnConfig
	opt     options
	q       queries
	channel string // NOTIFY channel

	mu       sync.RWMutex
	closed   bool
	inflight sync.WaitGroup
	done     chan struct{} // closed by Close

	sigMu   sync.Mutex
	changed chan struct{} // closed and replaced when the head may have moved

	leases leaseState
	keys   keyState // crypto-shredding's data keys (keys.go)

	stopListen context.CancelFunc
	listenDone chan struct{}

	appending    atomic.Int32 // appends in flight in this process
	selfFlushMax int32        // up to this many in flight, an append pipelines its own flush (the pool size)
	groupMax     int          // groups of unkeyed appends run at once (0: none)
	grouper      grouper
	lone         loneState
	flusher      *flusher
	notifier     *notifier
	stopFlush    context.CancelFunc
	flushers     sync.WaitGroup // the flusher's goroutine
	notifyDone   chan struct{}

	// testHookBeforeCommit, when set, runs after an append has taken its
	// positions and before it commits.
	testHookBeforeCommit func()
}

var _ runtime.Store = (*Store)(nil)

// Open connects to the PostgreSQL server named by dsn (a URL or keyword/value
// string, as pgx accepts), creates or migrates the store's schema, and
// returns the store. It fails fast, naming the host and the cause but never
// the password, when the server is unreachable or refuses the login, and
// with a *SchemaVersionError when the schema is newer than this code.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := options{schema: DefaultSchema, poll: DefaultPollInterval, notify: true, now: time.Now, groups: DefaultGroups}
	for _, f := range opts {
		f(&o)
	}
	if o.schema == "" {
		return nil, fmt.Errorf("cqrsgen: postgres: %w: empty schema name", runtime.ErrInvalid)
	}
	if err := storekit.ContextErr(ctx, "postgres: open"); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx redacts the password in parse errors.
		return nil, fmt.Errorf("cqrsgen: postgres: %w: bad DSN: %v", runtime.ErrInvalid, err)
	}
	switch {
	case o.maxConns > 0:
		cfg.MaxConns = o.maxConns
	case !strings.Contains(dsn, "pool_max_conns"):
		cfg.MaxConns = DefaultMaxConns
	}
	where := describe(cfg.ConnConfig)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("cqrsgen: postgres: connecting to %s: %w", where, err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("cqrsgen: postgres: connecting to %s: %w", where, err)
	}
	_, err = migrate(ctx, conn.Conn(), o.schema)
	if err == nil {
		err = pruneDurable(ctx, conn.Conn(), o.schema)
	}
	conn.Release()
	if err != nil {
		pool.Close()
		var sv *SchemaVersionError
		if errors.As(err, &sv) {
			return nil, err
		}
		return nil, fmt.Errorf("cqrsgen: postgres: preparing schema %q on %s: %w", o.schema, where, err)
	}
	s := &Store{
		pool:       pool,
		connCfg:    cfg.ConnConfig,
		opt:        o,
		q:          newQueries(pgx.Identifier{o.schema}.Sanitize()),
		channel:    "cqrsgen:" + o.schema,
		done:       make(chan struct{}),
		changed:    make(chan struct{}),
		listenDone: make(chan struct{}),
		notifyDone: make(chan struct{}),
	}
	s.selfFlushMax = cfg.MaxConns
	s.groupMax = o.groups
	s.flusher = newFlusher(s)
	s.notifier = newNotifier(s)
	if len(s.channel) > 63 { // NAMEDATALEN-1: longer channel names are truncated
		s.channel = s.channel[:63]
	}
	fctx, fcancel := context.WithCancel(context.Background())
	s.stopFlush = fcancel
	s.flushers.Add(1)
	go s.flusher.run(fctx, s.flushers.Done)
	go s.notifier.run(fctx, s.notifyDone)
	lctx, cancel := context.WithCancel(context.Background())
	s.stopListen = cancel
	if o.notify {
		go s.listen(lctx)
	} else {
		close(s.listenDone)
	}
	return s, nil
}

// describe names the server for error messages: host and port (or socket
// directory), user and database, never the password.
func describe(c *pgx.ConnConfig) string {
	return fmt.Sprintf("host=%s port=%d user=%s database=%s", c.Host, c.Port, c.User, c.Database)
}

// enter registers an in-flight call; it fails with ErrClosed after Close.
func (s *Store) enter(op string) (func(), error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, fmt.Errorf("cqrsgen: postgres: %s: %w", op, runtime.ErrClosed)
	}
	s.inflight.Add(1)
	return s.inflight.Done, nil
}

// begin combines enter with the context check every method starts with.
func (s *Store) begin(ctx context.Context, op string) (func(), error) {
	leave, err := s.enter(op)
	if err != nil {
		return nil, err
	}
	if err := storekit.ContextErr(ctx, "postgres: "+op); err != nil {
		leave()
		return nil, err
	}
	return leave, nil
}

// fail wraps a database error with op, with runtime.ErrUnavailable when
// the server could not be reached (see MarkUnavailable), and with ctx's
// error when the context ended (pgx reports that in several ways).
func (s *Store) fail(ctx context.Context, op string, err error) error {
	err = MarkUnavailable(err)
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("cqrsgen: postgres: %s: %w (%w)", op, cerr, err)
	}
	return fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
}

// Close waits for in-flight calls, stops the notification listener and
// closes the pool. Every later call, including a second Close, returns an
// error wrapping runtime.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("cqrsgen: postgres: close: %w", runtime.ErrClosed)
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	s.inflight.Wait()
	s.stopFlush()
	s.flushers.Wait()
	<-s.notifyDone
	s.stopListen()
	<-s.listenDone
	s.pool.Close()
	return nil
}

// signal wakes every Wait so that it re-reads the head.
func (s *Store) signal() {
	s.sigMu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.sigMu.Unlock()
}

func (s *Store) changedCh() <-chan struct{} {
	s.sigMu.Lock()
	defer s.sigMu.Unlock()
	return s.changed
}

// listen holds a dedicated connection in LISTEN and wakes waiters on every
// notification. After a lost connection it reconnects and wakes them too,
// since notifications may have been missed meanwhile.
func (s *Store) listen(ctx context.Context) {
	defer close(s.listenDone)
	for {
		conn, err := pgx.ConnectConfig(ctx, s.connCfg.Copy())
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize())
			if err == nil {
				s.signal()
				for {
					if _, err = conn.WaitForNotification(ctx); err != nil {
						break
					}
					s.signal()
				}
			}
			conn.Close(context.Background())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.opt.poll):
		}
	}
}

// Head returns the durable head: the highest position a flush has made
// durable. Every position up to it is committed and durable, because
// positions are taken in commit order and the WAL is flushed in order.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	leave, err := s.begin(ctx, "head")
	if err != nil {
		return 0, err
	}
	defer leave()
	return s.head(ctx)
}

func (s *Store) head(ctx context.Context) (uint64, error) {
	var h int64
	if err := s.pool.QueryRow(ctx, s.q.head).Scan(&h); err != nil {
		return 0, s.fail(ctx, "head", err)
	}
	return uint64(h), nil
}

// Wait blocks until the durable head is past after and returns it. A
// NOTIFY sent after any process's flush wakes it; without one it re-reads
// the head every poll interval. When a poll finds committed positions
// beyond the durable head (their appender died between its commit and its
// flush, or runs an older version of this package), it runs a flush
// itself, so such positions are exposed within one poll interval.
func (s *Store) Wait(ctx context.Context, after uint64) (uint64, error) {
	leave, err := s.begin(ctx, "wait")
	if err != nil {
		return 0, err
	}
	defer leave()
	timer := time.NewTimer(s.opt.poll)
	defer timer.Stop()
	polled := false
	for {
		ch := s.changedCh()
		var durable, committed int64
		if err := s.pool.QueryRow(ctx, s.q.heads).Scan(&durable, &committed); err != nil {
			return 0, s.fail(ctx, "wait: head", err)
		}
		if uint64(durable) > after {
			return uint64(durable), nil
		}
		if polled && uint64(committed) > after {
			h, err := s.flusher.await(ctx)
			if err != nil {
				return 0, s.fail(ctx, fmt.Sprintf("wait after position %d: flush", after), err)
			}
			if h > after {
				return h, nil
			}
		}
		timer.Reset(s.opt.poll)
		polled = false
		select {
		case <-ch:
		case <-timer.C:
			polled = true
		case <-ctx.Done():
			return 0, fmt.Errorf("cqrsgen: postgres: wait after position %d: %w", after, ctx.Err())
		case <-s.done:
			return 0, fmt.Errorf("cqrsgen: postgres: wait after position %d: %w", after, runtime.ErrClosed)
		}
	}
}

// Flush returns once everything committed is durable and the durable head
// has caught up with it. Every append is durable when it returns; Flush
// also covers positions whose appender died before its flush.
func (s *Store) Flush(ctx context.Context) error {
	leave, err := s.begin(ctx, "flush")
	if err != nil {
		return err
	}
	defer leave()
	if _, err := s.flusher.await(ctx); err != nil {
		return s.fail(ctx, "flush", err)
	}
	return nil
}

// isUniqueViolation reports a unique_violation (23505).
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
