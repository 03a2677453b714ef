package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/jackc/pgx/v5"
)

// flusher makes appends durable in shared rounds: the process's group
// commit. An append commits with synchronous_commit = off (visible, not yet
// durable), then waits for a round that starts after its commit. A round is
// one synchronous transaction that writes a row (see queries.flush), so its
// commit waits for the WAL flush, and any synchronous standby, up to its
// own commit record, which follows the commit record of every append
// visible when it ran. Rounds run one at a time on a dedicated connection;
// the appends that queue while one runs share the next. The flushes of
// rounds from many processes, and of appends that flush themselves, share WAL
// flushes in the server as any concurrent commits do.
type flusher struct {
	s    *Store
	kick chan struct{} // buffered: a round is wanted

	mu      sync.Mutex
	waiting []chan flushResult
	stopped bool
}

type flushResult struct {
	head uint64
	err  error
}

func newFlusher(s *Store) *flusher {
	return &flusher{s: s, kick: make(chan struct{}, 1)}
}

// await waits for a round that starts after the call and returns the
// durable head it recorded. On ctx's end it returns ctx's error; the round
// still runs.
func (f *flusher) await(ctx context.Context) (uint64, error) {
	ch := make(chan flushResult, 1)
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return 0, runtime.ErrClosed
	}
	f.waiting = append(f.waiting, ch)
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
	select {
	case r := <-ch:
		return r.head, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run serves rounds until ctx ends, then answers every waiter with
// runtime.ErrClosed. Close stops it only after in-flight calls have
// returned, so no append is left waiting.
func (f *flusher) run(ctx context.Context, done func()) {
	defer done()
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
		f.mu.Lock()
		f.stopped = true
		rest := f.waiting
		f.waiting = nil
		f.mu.Unlock()
		for _, ch := range rest {
			ch <- flushResult{err: runtime.ErrClosed}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
		}
		f.mu.Lock()
		batch := f.waiting
		f.waiting = nil
		f.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		var r flushResult
		if conn == nil {
			conn, r.err = pgx.ConnectConfig(ctx, f.s.connCfg.Copy())
			if r.err != nil {
				conn = nil
				r.err = fmt.Errorf("connecting for a flush: %w", r.err)
			}
		}
		if conn != nil {
			r.head, r.err = f.s.flushOn(ctx, conn)
			if r.err != nil {
				// Reconnect for the next round: the connection may be
				// broken or left in a transaction.
				conn.Close(context.Background())
				conn = nil
			}
		}
		if r.err == nil {
			f.s.grouper.durable.advance(r.head)
			f.s.signal()
		}
		for _, ch := range batch {
			ch <- r
		}
	}
}

// queueFlush queues a flush. It follows a COMMIT, so it runs in an
// implicit transaction of its own, committed at the batch's end under the
// session's synchronous_commit.
func (s *Store) queueFlush(b *pgx.Batch) {
	b.Queue(s.q.flush)
}

// readFlush reads what queueFlush queued and returns the durable head.
func (s *Store) readFlush(br pgx.BatchResults) (uint64, error) {
	var head int64
	if err := br.QueryRow().Scan(&head); err != nil {
		return 0, err
	}
	return uint64(head), nil
}

// flushOn runs one round on conn.
func (s *Store) flushOn(ctx context.Context, conn *pgx.Conn) (uint64, error) {
	var head int64
	if err := conn.QueryRow(ctx, s.q.flush).Scan(&head); err != nil {
		return 0, err
	}
	s.notifier.kick()
	return uint64(head), nil
}

// notifier sends the store's NOTIFY after flushes, on a dedicated
// connection, one at a time and at most one per notifyEvery: the flushes
// that end meanwhile share the next. Each NOTIFY is its own transaction, committed asynchronously:
// PostgreSQL holds a database-wide lock from a notifying transaction's
// commit until the commit ends, which with a synchronous commit would
// serialise the flushes of every process on it.
type notifier struct {
	s     *Store
	wake  chan struct{} // buffered: a NOTIFY is wanted
	quiet bool          // notifications off
}

func newNotifier(s *Store) *notifier {
	return &notifier{s: s, wake: make(chan struct{}, 1), quiet: !s.opt.notify}
}

// kick asks for a NOTIFY after everything durable so far.
func (n *notifier) kick() {
	if n.quiet {
		return
	}
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// run sends notifications until ctx ends. A failed NOTIFY is dropped:
// waiters in other processes then learn of the append by polling.
func (n *notifier) run(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
		var err error
		if conn == nil {
			if conn, err = pgx.ConnectConfig(ctx, n.s.connCfg.Copy()); err != nil {
				conn = nil
				continue
			}
		}
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue(n.s.q.notify, n.s.channel)
		b.Queue("COMMIT")
		if err := conn.SendBatch(ctx, b).Close(); err != nil {
			conn.Close(context.Background())
			conn = nil
		}
		// At most one NOTIFY per notifyEvery: each wakes every listening
		// connection of every process (this one's included), which costs
		// the server and the listeners more than the append itself when
		// appends come one at a time.
		select {
		case <-ctx.Done():
			return
		case <-time.After(notifyEvery):
		}
	}
}

// notifyEvery is the notifier's pace: how much later than now a waiter in
// another process may learn of a flush.
const notifyEvery = 2 * time.Millisecond
