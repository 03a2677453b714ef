package projection

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/readside"
	"github.com/cqrsgen/cqrsgen/runtime/lease"
)

// Partition identifies one partition of a projection split with
// Partitions: the records of the streams s with PartitionOf(s, Count) ==
// Index.
type Partition struct {
	Index, Count int
}

// PartitionOf returns the partition, out of count, of the records of
// stream: a hash of its type and id, so all records of a stream go to one
// partition, in order.
func PartitionOf(stream runtime.StreamID, count int) int {
	if count <= 1 {
		return 0
	}
	h := fnv.New64a()
	var n [8]byte
	l := uint64(len(stream.Type))
	for i := range n {
		n[i] = byte(l >> (8 * i))
	}
	_, _ = h.Write(n[:]) // length prefix: ("ab","c") and ("a","bc") differ
	_, _ = h.Write([]byte(stream.Type))
	_, _ = h.Write([]byte(stream.ID))
	return int(h.Sum64() % uint64(count))
}

// PartitionName is the name of partition p of the projection named name:
// its checkpoint, its lease and its name in a group's status.
func PartitionName(name string, p Partition) string {
	return name + "#" + strconv.Itoa(p.Index) + "/" + strconv.Itoa(p.Count)
}

// Partitions splits a projection added to a Group into n
// partitions by stream (PartitionOf): n projections named PartitionName,
// each with its own checkpoint and, on a store with leases, its own lease,
// so the replicas of a service share the work. Handle, Reset and Position
// receive the partition in their context (PartitionFrom): an exactly-once
// read model keeps one position per partition, and Reset empties only the
// partition's part. Each process running the group takes at most its fair
// share of the partitions, n divided by the number of processes running
// them (rounded up), and gives partitions up when more processes join, so
// the partitions spread over the replicas; a process counts the others
// through the store's leases. n ≤ 1 means no split. Only Group.Add
// accepts it.
func Partitions(n int) Option {
	return func(c *readside.Config) { c.Partitions = max(n, 1) }
}

type partitionKey struct{}

// WithPartition returns ctx carrying p (the runner does it for the
// partitions of a split projection).
func WithPartition(ctx context.Context, p Partition) context.Context {
	return context.WithValue(ctx, partitionKey{}, p)
}

// PartitionFrom returns the partition ctx carries, ok=false for a
// projection that is not split.
func PartitionFrom(ctx context.Context) (Partition, bool) {
	p, ok := ctx.Value(partitionKey{}).(Partition)
	return p, ok
}

// partitioned returns the n partitions of p as projections.
func partitioned(p Projection, n int) []Projection {
	out := make([]Projection, n)
	for i := range out {
		part := Partition{Index: i, Count: n}
		q := p
		q.Name = PartitionName(p.Name, part)
		q.Handle = func(ctx context.Context, rec runtime.Record) error { return p.Handle(WithPartition(ctx, part), rec) }
		if p.Reset != nil {
			q.Reset = func(ctx context.Context) error { return p.Reset(WithPartition(ctx, part)) }
		}
		if p.Position != nil {
			q.Position = func(ctx context.Context) (uint64, error) { return p.Position(WithPartition(ctx, part)) }
		}
		out[i] = q
	}
	return out
}

// memberPrefix starts the names of the leases by which the processes
// running a split projection count each other.
const memberPrefix = reservedPrefix + "members:"

// partitionSet is what the runners of one split projection in one group
// share: how many partitions this process holds, and its membership lease.
type partitionSet struct {
	base   string
	n      int
	leaser lease.Leaser
	holder string
	ttl    time.Duration

	held atomic.Int32 // partitions this process holds now

	mu      sync.Mutex
	member  lease.Lease // this process's membership lease, as last renewed
	fair    int
	checked time.Time
}

func (s *partitionSet) memberName() string { return memberPrefix + s.base + ":" + s.holder }

// join takes the membership lease at the start of a group's run; the
// fair-share checks of the runners renew it from then on (at least every
// third of the TTL: a holder's renewals or a standby's attempts).
func (s *partitionSet) join(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checked = time.Time{}
	l, err := s.leaser.AcquireLease(ctx, s.memberName(), s.holder, s.ttl)
	if err == nil {
		s.member = l
	}
	return err
}

// leave releases the membership lease when the group stops.
func (s *partitionSet) leave() {
	s.mu.Lock()
	m := s.member
	s.member, s.fair = lease.Lease{}, 0
	s.mu.Unlock()
	if m.Epoch != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), s.ttl)
		defer cancel()
		_ = s.leaser.ReleaseLease(ctx, m)
	}
}

// fairShare returns ceil(n / members), members counted from the store's
// unexpired membership leases (this process always among them), renewing
// this process's own; it re-reads them at most every standby poll.
func (s *partitionSet) fairShare(ctx context.Context) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fair > 0 && time.Since(s.checked) < readside.PollEvery(s.ttl) {
		return s.fair
	}
	if l, err := s.leaser.AcquireLease(ctx, s.memberName(), s.holder, s.ttl); err == nil {
		s.member = l
	}
	leases, err := s.leaser.Leases(ctx)
	if err != nil {
		if s.fair == 0 {
			return s.n // cannot tell: do not hold back
		}
		return s.fair
	}
	members := 1 // this process
	prefix := memberPrefix + s.base + ":"
	now := time.Now()
	for _, l := range leases {
		if strings.HasPrefix(l.Name, prefix) && l.Name != s.memberName() && l.Holder != "" && l.Expires.After(now) {
			members++
		}
	}
	s.fair, s.checked = (s.n+members-1)/members, now
	return s.fair
}

// MayTake reports whether this process may take one more partition.
func (s *partitionSet) MayTake(ctx context.Context) bool {
	return int(s.held.Load()) < s.fairShare(ctx)
}

// TryYield gives up one held partition when this process holds more than
// its fair share; it reports whether the caller is to give its up.
func (s *partitionSet) TryYield(ctx context.Context) bool {
	fair := s.fairShare(ctx)
	for {
		h := s.held.Load()
		if int(h) <= fair {
			return false
		}
		if s.held.CompareAndSwap(h, h-1) {
			return true
		}
	}
}

// Hold counts delta partitions more (or fewer) held by this process.
func (s *partitionSet) Hold(delta int32) { s.held.Add(delta) }

func (s *partitionSet) String() string {
	return fmt.Sprintf("%s in %d partitions", s.base, s.n)
}
