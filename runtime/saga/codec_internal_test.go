package saga

import (
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime/wire"
)

// Reaction records written before states carried a schema version (11
// fields) decode as version 1, and a version 1 state is still written so;
// other versions add a twelfth field; any other length is an error.
func TestDecodeReactedStateSchema(t *testing.T) {
	rec := &reactedRec{Trigger: sagaTrigger{Position: 7}, Event: "e", State: []byte("s"), StateSchema: 3, FirstSeq: 1,
		Steps: []stepRec{{Target: "a", Command: "C"}}, Complete: true}
	cur := encodeReacted(rec)
	// The old form: the same fields without the trailing state version.
	old := wire.AppendArrayHeader(nil, reactedFields-1)
	old = append(old, cur[1:len(cur)-1]...)
	bad := wire.AppendArrayHeader(nil, reactedFields+1)
	bad = append(append(bad, cur[1:]...), 0)

	v1 := *rec
	v1.StateSchema = 1
	if got := encodeReacted(&v1); string(got) != string(append(wire.AppendArrayHeader(nil, reactedFields-1), cur[1:len(cur)-1]...)) {
		t.Errorf("a version 1 state's record is not the 11-field form: % x", got)
	}
	for _, c := range []struct {
		name string
		data []byte
		want uint32
		ok   bool
	}{{"current", cur, 3, true}, {"before schema versions", old, 1, true}, {"too long", bad, 0, false}} {
		got, err := decodeReacted(c.data)
		if (err == nil) != c.ok {
			t.Fatalf("%s: err = %v, want ok=%v", c.name, err, c.ok)
		}
		if c.ok && (got.StateSchema != c.want || string(got.State) != "s" || got.Trigger.Position != 7 || !got.Complete || len(got.Steps) != 1) {
			t.Errorf("%s: decoded %+v, want state schema %d and the other fields intact", c.name, got, c.want)
		}
	}
}
