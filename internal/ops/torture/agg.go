package torture

import (
	"fmt"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// Stream types and names used by the campaign.
const (
	// RawType is the stream type of streams written with Store.Append.
	RawType = "T.raw"
	// AccountType is the stream type of the counter aggregates written
	// with Repository.Execute.
	AccountType = "T.acct"
	// ProjectionName is the checkpoint name of the child's projection.
	ProjectionName = "torture.positions"
	// eventName is the wire name of every event the campaign writes.
	eventName = "torture.added"
	// stateSchema identifies the counter's snapshot encoding.
	stateSchema = "torture.counter/1"
)

// counter is the state of a torture account: how many events it has seen
// and the tag of the last one. Its version must equal Count after any
// load, through a snapshot or not.
type counter struct {
	Count uint64
	Last  string
}

// added is the only event: a tag that identifies the operation that wrote
// it (the idempotency key of its Execute).
type added struct{ Tag string }

// add is the only command.
type add struct{ Tag string }

func counterAggregate() *runtime.Aggregate[counter, added, add] {
	return &runtime.Aggregate[counter, added, add]{
		Type:          AccountType,
		StateSchema:   stateSchema,
		SnapshotEvery: 16,
		Apply: func(s *counter, e added) {
			s.Count++
			s.Last = e.Tag
		},
		Decide: func(_ *counter, c add) ([]added, error) {
			return []added{{Tag: c.Tag}}, nil
		},
		EncodeEvent: func(e added) (runtime.EventData, error) {
			return runtime.EventData{Name: eventName, Schema: 1, Data: []byte(execPrefix + e.Tag)}, nil
		},
		DecodeEvent: func(name string, schema uint32, data []byte) (added, error) {
			if name != eventName || schema != 1 || len(data) < len(execPrefix) || string(data[:len(execPrefix)]) != execPrefix {
				return added{}, &runtime.UnknownEventError{Name: name, Schema: schema}
			}
			return added{Tag: string(data[len(execPrefix):])}, nil
		},
		EncodeState: func(s *counter) ([]byte, error) {
			return fmt.Appendf(nil, "%d %s", s.Count, s.Last), nil
		},
		DecodeState: func(data []byte, s *counter) error {
			var c counter
			if _, err := fmt.Sscanf(string(data), "%d %s", &c.Count, &c.Last); err != nil {
				return fmt.Errorf("torture: snapshot %q: %w", data, err)
			}
			*s = c
			return nil
		},
	}
}

// Data prefixes of the two kinds of event.
const (
	rawPrefix  = "a:" // a:<batch id>/<index>/<size>
	execPrefix = "x:" // x:<idempotency key>
)
