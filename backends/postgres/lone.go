package postgres

import "sync/atomic"

// loneState tells whether other processes are appending to the schema, as
// far as this store can see: an append alone in its process commits
// synchronously (appendSync) and so holds the log_head row through a WAL
// flush, which appends of other processes would queue behind, one flush
// each (4 processes with one writer each measured half the appends/s of
// asynchronous commits with shared flushes). So a lone append commits
// synchronously only while this store's previous append found no positions
// taken by others since the one before it; every append's positions tell.
type loneState struct {
	end    atomic.Uint64 // the last position of this store's latest append (0: none yet)
	others atomic.Bool   // the latest append found others' positions before its own
}

// note records an append (or a group) that took the positions after base
// up to end.
func (l *loneState) note(base, end uint64) {
	prev := l.end.Swap(end)
	l.others.Store(prev != 0 && base != prev)
}

// alone reports whether no other process was seen appending lately.
func (l *loneState) alone() bool { return !l.others.Load() }
