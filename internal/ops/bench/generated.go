package bench

import (
	"context"
	"fmt"
	"hash/fnv"
	"iter"
	"strconv"

	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/registry"
	"github.com/vmihailenco/msgpack/v5"
)

// The generated side of the benchmarks: the fixture domain's generated code.
// Decoding is measured twice: codec against codec (the generated event
// table's Decode against msgpack.Unmarshal of the same bytes) and
// path against path (the generated AccountRepository against a repository
// whose aggregate uses reflection msgpack, both over stubStore, a store
// that keeps nothing), so that neither hides the other. Encoding has only
// the path rows: the generated encoder is unexported.

var sampleDeposit account.AccountEvent = account.Deposited{Amount: sampleEvent.Amount, Reference: sampleEvent.Reference}

// realisticDeposit returns the k-th deposit of aggregate id as the load,
// spread and mixed workloads store it: amounts and references that differ
// from event to event, as a real log's do (amounts from 1 cent to
// $100,000, a quarter each encoded as MessagePack's 1-byte fixint, and up
// to its uint16 and uint32; references of 7 to 15 bytes). One repeated
// value flatters a decoder: a value that boxes without allocating or a
// string the runtime shares hides allocations a real load pays (issue 18).
func realisticDeposit(id string, k int) account.Deposited {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	x := h.Sum64() ^ uint64(k)*0x9e3779b97f4a7c15
	x ^= x >> 29
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 32
	amount := int64(x % 10_000_000) // cents
	switch (x >> 60) % 4 {
	case 0:
		amount %= 127
	case 1:
		amount %= 1 << 16
	}
	amount++
	digits := strconv.FormatUint(x>>8|1<<55, 36) // 11 digits
	return account.Deposited{Amount: amount, Reference: "inv-" + digits[:3+(x>>4)%9]}
}

// stubStore is a runtime.Store for codec measurements: Append keeps the
// last request's encoded bytes, ReadStream yields one fixed record, and
// LoadSnapshot finds nothing. Other methods are not used (the embedded nil
// interface would panic).
type stubStore struct {
	runtime.Store
	last []byte
	rec  runtime.Record
}

func (s *stubStore) Append(_ context.Context, req runtime.AppendRequest) (runtime.AppendResult, error) {
	s.last = req.Events[len(req.Events)-1].Data
	return runtime.AppendResult{FirstVersion: 1, LastVersion: uint64(len(req.Events)), FirstPosition: 1, LastPosition: uint64(len(req.Events))}, nil
}

func (s *stubStore) ReadStream(context.Context, runtime.StreamID, uint64) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) { yield(s.rec, nil) }
}

// VisitStream shows the fixed record loadPathEvents times, at versions 1
// to loadPathEvents: the Load path rows read a stream of that length.
func (s *stubStore) VisitStream(_ context.Context, _ runtime.StreamID, after uint64, fn func(*runtime.EventView) error) error {
	v := runtime.EventView{Name: s.rec.Name, Schema: s.rec.Schema, Data: s.rec.Data}
	for i := after + 1; i <= loadPathEvents; i++ {
		v.Version, v.Position = i, i
		if err := fn(&v); err != nil {
			return err
		}
	}
	return nil
}

// loadPathEvents is the length of the stream the Load path rows load.
const loadPathEvents = 100

func (s *stubStore) LoadSnapshot(context.Context, runtime.StreamID) (runtime.Snapshot, error) {
	return runtime.Snapshot{}, runtime.ErrNotFound
}

// generatedPayload returns the generated encoding of the sample event.
func generatedPayload() ([]byte, error) {
	stub := &stubStore{}
	repo := account.NewAccountRepository(stub, runtime.WithSnapshotEvery(0))
	if _, err := repo.Append(context.Background(), "codec", runtime.AnyVersion, sampleDeposit); err != nil {
		return nil, err
	}
	return stub.last, nil
}

// reflectionAggregate is the Account aggregate with reflection msgpack
// codecs in place of the generated ones: its event table has the
// generated table's rows, in the same order, with msgpack.Marshal and
// msgpack.Unmarshal as each row's codec, so that Load takes the generated
// repository's path (StreamVisitor, table, decode into the state) and the
// two rows differ only in the codec. Events and Append go through
// EncodeEvent and DecodeEvent, which handle Deposited events only.
func reflectionAggregate() *runtime.Aggregate[account.Account, account.AccountEvent, runtime.NoCommand] {
	kind := func(e account.AccountEvent) int {
		switch e.(type) {
		case account.Opened:
			return 0
		case account.Deposited:
			return 1
		case account.Withdrawn:
			return 2
		}
		return 3
	}
	return &runtime.Aggregate[account.Account, account.AccountEvent, runtime.NoCommand]{
		Type: account.AccountStreamType,
		Events: registry.NewEvents(account.AccountStreamType, kind,
			reflectionRow(account.OpenedEventName, account.OpenedSchemaVersion, (*account.Account).ApplyOpened),
			reflectionRow(account.DepositedEventName, account.DepositedSchemaVersion, (*account.Account).ApplyDeposited),
			reflectionRow(account.WithdrawnEventName, account.WithdrawnSchemaVersion, (*account.Account).ApplyWithdrawn),
			reflectionRow(account.AccountClosedEventName, account.AccountClosedSchemaVersion, (*account.Account).ApplyAccountClosed),
		),
		Apply: (*account.Account).Apply,
		EncodeEvent: func(e account.AccountEvent) (runtime.EventData, error) {
			data, err := msgpack.Marshal(e)
			return runtime.EventData{Name: account.DepositedEventName, Schema: account.DepositedSchemaVersion, Data: data}, err
		},
		DecodeEvent: func(name string, schema uint32, data []byte) (account.AccountEvent, error) {
			if name != account.DepositedEventName {
				return nil, &runtime.UnknownEventError{Name: name, Schema: schema}
			}
			var d account.Deposited
			err := msgpack.Unmarshal(data, &d)
			return d, err
		},
	}
}

// reflectionRow is an event table row with reflection msgpack as its
// codec.
func reflectionRow[E any](name string, schema uint32, apply func(*account.Account, E)) *registry.EventType[account.Account, account.AccountEvent] {
	return registry.Event[account.AccountEvent](name, schema, apply,
		func(e E) ([]byte, error) { return msgpack.Marshal(&e) },
		func(data []byte) (e E, err error) { err = msgpack.Unmarshal(data, &e); return e, err })
}

// repoAPI is what the path rows call: the generated AccountRepository's
// methods, which runtime.Repository has too.
type repoAPI = interface {
	Append(context.Context, string, uint64, ...account.AccountEvent) (uint64, error)
	Events(context.Context, string, uint64) iter.Seq2[runtime.Envelope[account.AccountEvent], error]
	Load(context.Context, string) (*account.Account, uint64, error)
}

// repoCodec returns encode and decode through a repository over a stub
// store holding payload: decode is Events of one event, or with load a
// Load of a stream of loadPathEvents events (the figures per event).
func repoCodec(subject, kind, note string, payload []byte, load bool, newRepo func(runtime.Store) repoAPI) codecImpl {
	ctx := context.Background()
	stub := &stubStore{rec: runtime.Record{
		Stream: runtime.StreamID{Type: account.AccountStreamType, ID: "codec"}, Version: 1, Position: 1,
		Name: account.DepositedEventName, Schema: account.DepositedSchemaVersion, Data: payload,
	}}
	repo := newRepo(stub)
	c := codecImpl{subject: subject, kind: kind, note: note}
	if load {
		c.events = loadPathEvents
		c.decode = func() error {
			a, v, err := repo.Load(ctx, "codec")
			if err == nil && (v != loadPathEvents || a.Balance != loadPathEvents*sampleEvent.Amount) {
				err = fmt.Errorf("loaded version %d balance %d, want %d and %d", v, a.Balance, loadPathEvents, loadPathEvents*sampleEvent.Amount)
			}
			return err
		}
		return c
	}
	c.encode = func() error {
		_, err := repo.Append(ctx, "codec", runtime.AnyVersion, sampleDeposit)
		return err
	}
	c.decode = func() error {
		for env, err := range repo.Events(ctx, "codec", 0) {
			if err != nil {
				return err
			}
			if env.Event != sampleDeposit {
				return fmt.Errorf("decoded %+v, want %+v", env.Event, sampleDeposit)
			}
		}
		return nil
	}
	return c
}

func init() {
	generatedCodec = func() ([]codecImpl, error) {
		payload, err := generatedPayload()
		if err != nil {
			return nil, fmt.Errorf("bench: generated encoding: %w", err)
		}
		// Both encodings are MessagePack maps keyed by field name: check
		// that they agree, so the two rows measure the same work.
		var back account.Deposited
		if err := msgpack.Unmarshal(payload, &back); err != nil || back != sampleDeposit {
			return nil, fmt.Errorf("bench: reflection msgpack cannot read the generated encoding: %v (%+v)", err, back)
		}
		same := samplePayload() // the bytes the reflection row decodes
		events := account.AccountEvents()
		decodeDeposited, err := registry.Decoder[account.Deposited](events)
		if err != nil {
			return nil, err
		}
		reflection := func(s runtime.Store) repoAPI { return runtime.NewRepository(s, reflectionAggregate()) }
		generated := func(s runtime.Store) repoAPI { return account.NewAccountRepository(s, runtime.WithSnapshotEvery(0)) }
		return []codecImpl{
			{
				subject: "generated decode (registry.Decoder of AccountEvents, codec alone)", kind: KindCqrsgen,
				note: "the generated decoder of Deposited, through the event table without the interface box, of the bytes msgpack.Unmarshal decodes in the limit row",
				decode: func() error {
					d, err := decodeDeposited(account.DepositedEventName, account.DepositedSchemaVersion, same)
					if err == nil && d != sampleDeposit {
						err = fmt.Errorf("decoded %+v, want %+v", d, sampleDeposit)
					}
					return err
				},
			},
			{
				subject: "generated AccountEvents().Decode (boxed in AccountEvent)", kind: KindCqrsgen,
				note: "the same decoder through Events.Decode, which returns the event in its interface (one more allocation)",
				decode: func() error {
					e, err := events.Decode(account.DepositedEventName, account.DepositedSchemaVersion, same)
					if d, ok := e.(account.Deposited); err == nil && (!ok || d != sampleDeposit) {
						err = fmt.Errorf("decoded %+v, want %+v", e, sampleDeposit)
					}
					return err
				},
			},
			repoCodec("reflection msgpack through runtime.Repository Load", KindLimit,
				fmt.Sprintf("Load of a %d-event stream, per event: the generated path (StreamVisitor, event table, decode into the state) with msgpack.Unmarshal as the table's codec (stub store)", loadPathEvents),
				payload, true, reflection),
			repoCodec("generated AccountRepository Load", KindCqrsgen,
				fmt.Sprintf("Load of a %d-event stream, per event, on the same stub store", loadPathEvents),
				payload, true, generated),
			repoCodec("reflection msgpack through runtime.Repository", KindLimit,
				"Append / Events of one event: the generated repository's path with msgpack.Marshal/Unmarshal as the codec (stub store)",
				payload, false, reflection),
			repoCodec("generated (AccountRepository)", KindCqrsgen,
				"generated AccountRepository Append / Events of one event on a stub store: codec plus repository per-call work",
				payload, false, generated),
		}, nil
	}
}
