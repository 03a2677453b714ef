package bench

import (
	"context"
	"fmt"
	"iter"

	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/runtime"
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
// codecs in place of the generated ones (Deposited events only): the same
// repository path as the generated codec, so the two rows differ only in
// the codec.
func reflectionAggregate() *runtime.Aggregate[account.Account, account.AccountEvent, runtime.NoCommand] {
	return &runtime.Aggregate[account.Account, account.AccountEvent, runtime.NoCommand]{
		Type:  account.AccountStreamType,
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

// repoCodec returns encode and decode through a repository over a stub
// store holding payload.
func repoCodec(subject, kind, note string, payload []byte, newRepo func(runtime.Store) interface {
	Append(context.Context, string, uint64, ...account.AccountEvent) (uint64, error)
	Events(context.Context, string, uint64) iter.Seq2[runtime.Envelope[account.AccountEvent], error]
}) codecImpl {
	ctx := context.Background()
	stub := &stubStore{rec: runtime.Record{
		Stream: runtime.StreamID{Type: account.AccountStreamType, ID: "codec"}, Version: 1, Position: 1,
		Name: account.DepositedEventName, Schema: account.DepositedSchemaVersion, Data: payload,
	}}
	repo := newRepo(stub)
	return codecImpl{
		subject: subject, kind: kind, note: note,
		encode: func() error {
			_, err := repo.Append(ctx, "codec", runtime.AnyVersion, sampleDeposit)
			return err
		},
		decode: func() error {
			for env, err := range repo.Events(ctx, "codec", 0) {
				if err != nil {
					return err
				}
				if env.Event != sampleDeposit {
					return fmt.Errorf("decoded %+v, want %+v", env.Event, sampleDeposit)
				}
			}
			return nil
		},
	}
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
		type repoAPI = interface {
			Append(context.Context, string, uint64, ...account.AccountEvent) (uint64, error)
			Events(context.Context, string, uint64) iter.Seq2[runtime.Envelope[account.AccountEvent], error]
		}
		same := samplePayload() // the bytes the reflection row decodes
		events := account.AccountEvents()
		return []codecImpl{
			{
				subject: "generated AccountEvents().Decode (codec alone)", kind: KindCqrsgen,
				note: "the generated event table's Decode of the bytes msgpack.Unmarshal decodes in the row above",
				decode: func() error {
					e, err := events.Decode(account.DepositedEventName, account.DepositedSchemaVersion, same)
					if d, ok := e.(account.Deposited); err == nil && (!ok || d != sampleDeposit) {
						err = fmt.Errorf("decoded %+v, want %+v", e, sampleDeposit)
					}
					return err
				},
			},
			repoCodec("reflection msgpack through runtime.Repository", KindLimit,
				"the generated repository's path with msgpack.Marshal/Unmarshal as the codec (stub store)",
				payload, func(s runtime.Store) repoAPI { return runtime.NewRepository(s, reflectionAggregate()) }),
			repoCodec("generated (AccountRepository)", KindCqrsgen,
				"generated AccountRepository Append/Events on a stub store: codec plus repository per-call work",
				payload, func(s runtime.Store) repoAPI {
					return account.NewAccountRepository(s, runtime.WithSnapshotEvery(0))
				}),
		}, nil
	}
}
