package saga

import (
	"fmt"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime/wire"
)

// The records of a saga instance stream and of a saga's deadline index, and
// their msgpack encoding (positional arrays written with package wire).
// They are the runtime's own events: stores see them as ordinary records.

// Wire names of the saga instance records.
const (
	sagaReacted            = "cqrsgen.saga.reacted"
	sagaStepCompleted      = "cqrsgen.saga.step-completed"
	sagaStepFailed         = "cqrsgen.saga.step-failed"
	sagaCompensated        = "cqrsgen.saga.compensated"
	sagaCompensationFailed = "cqrsgen.saga.compensation-failed"
	sagaEnded              = "cqrsgen.saga.ended"
	sagaDeadlineIndexed    = "cqrsgen.saga.deadline-set"
)

// sagaTrigger is what a reaction reacted to: a log record (Position) or a
// deadline of the instance (Deadline, At).
type sagaTrigger struct {
	Position uint64
	Deadline string
	At       time.Time
}

func (t sagaTrigger) String() string {
	if t.Deadline != "" {
		return fmt.Sprintf("deadline %q at %s", t.Deadline, t.At.Format(time.RFC3339Nano))
	}
	return fmt.Sprintf("event at position %d", t.Position)
}

// reactedRec is one reaction: the trigger, the state after it, the steps
// it sent (numbered from FirstSeq), the deadlines it set and cancelled, and
// whether it completed or failed the saga.
type reactedRec struct {
	Trigger sagaTrigger
	Event   string    // the trigger's wire name, "" for a deadline
	Now     time.Time // the saga clock when the reaction was decided
	State   []byte
	// StateSchema is the schema version State was encoded with
	// (Saga.StateVersion); records without it hold version 1.
	StateSchema uint32
	FirstSeq    uint64
	Steps       []stepRec
	Set         []Deadline
	Cancelled   []string
	Complete    bool
	Fail        string
}

// stepRec describes a step in a reaction record.
type stepRec struct {
	Target      string // the aggregate id the command was sent to
	Command     string // the command's Go type, for people
	Compensable bool
	CompCommand string
	CompTarget  string
}

// outcomeRec is step-completed, step-failed, compensated or
// compensation-failed.
type outcomeRec struct {
	Seq     uint64
	Version uint64
	Error   string
	Tries   int
}

// endedRec ends an instance.
type endedRec struct {
	Status Status
	Reason string
}

// indexRec is one entry of the deadline index: instance's deadline Name is
// due at At, set by the reaction that will be the instance's version
// Version.
type indexRec struct {
	Instance string
	Name     string
	At       time.Time
	Version  uint64
}

// reactedFields is the length of a reacted record's array. A record whose
// state is at schema version 1 leaves out the trailing StateSchema
// (reactedFields-1 elements), so that it is byte for byte what runtimes
// before schema versions wrote and read.
const reactedFields = 12

func encodeReacted(r *reactedRec) []byte {
	fields := reactedFields
	if r.StateSchema <= 1 {
		fields--
	}
	b := wire.AppendArrayHeader(nil, fields)
	b = wire.AppendArrayHeader(b, 3)
	b = wire.AppendUint(b, r.Trigger.Position)
	b = wire.AppendString(b, r.Trigger.Deadline)
	b = wire.AppendTime(b, r.Trigger.At)
	b = wire.AppendString(b, r.Event)
	b = wire.AppendTime(b, r.Now)
	b = wire.AppendBytes(b, r.State)
	b = wire.AppendUint(b, r.FirstSeq)
	b = wire.AppendArrayHeader(b, len(r.Steps))
	for _, s := range r.Steps {
		b = wire.AppendArrayHeader(b, 5)
		b = wire.AppendString(b, s.Target)
		b = wire.AppendString(b, s.Command)
		b = wire.AppendBool(b, s.Compensable)
		b = wire.AppendString(b, s.CompTarget)
		b = wire.AppendString(b, s.CompCommand)
	}
	b = wire.AppendArrayHeader(b, len(r.Set))
	for _, d := range r.Set {
		b = wire.AppendArrayHeader(b, 2)
		b = wire.AppendString(b, d.Name)
		b = wire.AppendTime(b, d.At)
	}
	b = wire.AppendArrayHeader(b, len(r.Cancelled))
	for _, n := range r.Cancelled {
		b = wire.AppendString(b, n)
	}
	b = wire.AppendBool(b, r.Complete)
	b = wire.AppendString(b, r.Fail)
	if fields == reactedFields {
		b = wire.AppendUint(b, uint64(r.StateSchema))
	}
	return b
}

// reader reads positional fields with a sticky error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) array(want int) int {
	if r.err != nil {
		return 0
	}
	n, rest, err := wire.ReadArrayHeader(r.b)
	if err == nil && want >= 0 && n != want {
		err = wire.LengthError(want, n)
	}
	if err == nil && n < 0 {
		n = 0
	}
	r.b, r.err = rest, err
	return n
}

func (r *reader) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, rest, err := wire.ReadUint64(r.b)
	r.b, r.err = rest, err
	return v
}

func (r *reader) int() int {
	if r.err != nil {
		return 0
	}
	v, rest, err := wire.ReadInt(r.b)
	r.b, r.err = rest, err
	return v
}

func (r *reader) str() string {
	if r.err != nil {
		return ""
	}
	v, rest, err := wire.ReadString(r.b)
	r.b, r.err = rest, err
	return v
}

func (r *reader) bytes() []byte {
	if r.err != nil {
		return nil
	}
	v, rest, err := wire.ReadBytes(r.b)
	r.b, r.err = rest, err
	return v
}

func (r *reader) bool() bool {
	if r.err != nil {
		return false
	}
	v, rest, err := wire.ReadBool(r.b)
	r.b, r.err = rest, err
	return v
}

func (r *reader) time() time.Time {
	if r.err != nil {
		return time.Time{}
	}
	v, rest, err := wire.ReadTime(r.b)
	r.b, r.err = rest, err
	return v
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) > 0 {
		r.err = wire.TrailingError(len(r.b))
	}
	return r.err
}

func decodeReacted(data []byte) (*reactedRec, error) {
	r := &reader{b: data}
	rec := &reactedRec{StateSchema: 1}
	fields := r.array(-1)
	if r.err == nil && fields != reactedFields && fields != reactedFields-1 {
		r.err = wire.LengthError(reactedFields, fields)
	}
	r.array(3)
	rec.Trigger.Position = r.uint()
	rec.Trigger.Deadline = r.str()
	rec.Trigger.At = r.time()
	rec.Event = r.str()
	rec.Now = r.time()
	rec.State = r.bytes()
	rec.FirstSeq = r.uint()
	n := r.array(-1)
	for i := 0; i < n && r.err == nil; i++ {
		r.array(5)
		rec.Steps = append(rec.Steps, stepRec{Target: r.str(), Command: r.str(), Compensable: r.bool(), CompTarget: r.str(), CompCommand: r.str()})
	}
	n = r.array(-1)
	for i := 0; i < n && r.err == nil; i++ {
		r.array(2)
		rec.Set = append(rec.Set, Deadline{Name: r.str(), At: r.time()})
	}
	n = r.array(-1)
	for i := 0; i < n && r.err == nil; i++ {
		rec.Cancelled = append(rec.Cancelled, r.str())
	}
	rec.Complete = r.bool()
	rec.Fail = r.str()
	if fields == reactedFields {
		v := r.uint()
		if r.err == nil && (v == 0 || v > 1<<32-1) {
			r.err = fmt.Errorf("saga state schema version %d out of range", v)
		}
		rec.StateSchema = uint32(v)
	}
	return rec, r.done()
}

func encodeOutcome(o outcomeRec) []byte {
	b := wire.AppendArrayHeader(nil, 4)
	b = wire.AppendUint(b, o.Seq)
	b = wire.AppendUint(b, o.Version)
	b = wire.AppendString(b, o.Error)
	return wire.AppendInt(b, int64(o.Tries))
}

func decodeOutcome(data []byte) (outcomeRec, error) {
	r := &reader{b: data}
	r.array(4)
	o := outcomeRec{Seq: r.uint(), Version: r.uint(), Error: r.str(), Tries: r.int()}
	return o, r.done()
}

func encodeEnded(e endedRec) []byte {
	b := wire.AppendArrayHeader(nil, 2)
	b = wire.AppendString(b, e.Status.String())
	return wire.AppendString(b, e.Reason)
}

func decodeEnded(data []byte) (endedRec, error) {
	r := &reader{b: data}
	r.array(2)
	s := r.str()
	e := endedRec{Reason: r.str()}
	if err := r.done(); err != nil {
		return e, err
	}
	for st := Running; st <= Failed; st++ {
		if st.String() == s {
			e.Status = st
			return e, nil
		}
	}
	return e, fmt.Errorf("unknown saga status %q", s)
}

func encodeIndex(x indexRec) []byte {
	b := wire.AppendArrayHeader(nil, 4)
	b = wire.AppendString(b, x.Instance)
	b = wire.AppendString(b, x.Name)
	b = wire.AppendTime(b, x.At)
	return wire.AppendUint(b, x.Version)
}

func decodeIndex(data []byte) (indexRec, error) {
	r := &reader{b: data}
	r.array(4)
	x := indexRec{Instance: r.str(), Name: r.str(), At: r.time(), Version: r.uint()}
	return x, r.done()
}

// encodeIndexSet encodes the pending deadline index for a snapshot.
func encodeIndexSet(xs []indexRec) []byte {
	b := wire.AppendArrayHeader(nil, len(xs))
	for _, x := range xs {
		b = append(b, encodeIndex(x)...)
	}
	return b
}

func decodeIndexSet(data []byte) ([]indexRec, error) {
	r := &reader{b: data}
	n := r.array(-1)
	var out []indexRec
	for i := 0; i < n && r.err == nil; i++ {
		r.array(4)
		out = append(out, indexRec{Instance: r.str(), Name: r.str(), At: r.time(), Version: r.uint()})
	}
	return out, r.done()
}
