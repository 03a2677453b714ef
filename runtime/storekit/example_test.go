package storekit_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// The core of a store's Append, for a toy store that keeps one stream's
// version and the recorded idempotency keys: validate, stamp, check under
// the lock, write, record the key. The stores of this module do the same
// steps under their lock or in their writer.
func Example() {
	version, head := uint64(0), uint64(0)
	keys := map[string]runtime.IdempotencyRecord{}
	appendEvents := func(req runtime.AppendRequest) (runtime.AppendResult, error) {
		if err := storekit.ValidateAppend(req); err != nil {
			return runtime.AppendResult{}, err
		}
		stamp := storekit.NewStamp(req, time.Now) // before the lock
		existing, found := keys[req.IdempotencyKey]
		res, err := storekit.Check(req, version, head, existing, found)
		if err != nil {
			return runtime.AppendResult{}, err
		}
		for i := range req.Events {
			_, _ = stamp.Event(i) // the id and time each event is stored with
		}
		version += uint64(len(req.Events))
		head += uint64(len(req.Events))
		if req.IdempotencyKey != "" {
			keys[req.IdempotencyKey] = storekit.KeyRecord(req, res, stamp.Now())
		}
		return res, nil
	}

	stream := runtime.StreamID{Type: "Account", ID: "a-1"}
	req := runtime.AppendRequest{Stream: stream, Expected: runtime.NoStream, IdempotencyKey: "k-1",
		Events: []runtime.EventData{{Name: "Opened", Data: []byte{0x80}}}}
	res, err := appendEvents(req)
	fmt.Println(res.FirstVersion, res.FirstPosition, err)

	_, err = appendEvents(req) // the retry of a request that succeeded
	var dup *runtime.DuplicateError
	fmt.Println("duplicate:", errors.As(err, &dup), "first version:", dup.Existing.Version)

	req.IdempotencyKey = "k-2" // a new request on a stale version
	_, err = appendEvents(req)
	fmt.Println("conflict:", errors.Is(err, runtime.ErrConflict))
	// Output:
	// 1 1 <nil>
	// duplicate: true first version: 1
	// conflict: true
}
