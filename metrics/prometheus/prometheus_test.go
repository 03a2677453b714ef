package prometheus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	cqrsprom "github.com/cqrsgen/cqrsgen/metrics/prometheus"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/instrument"
	"github.com/cqrsgen/cqrsgen/runtime/lease"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

var acct = runtime.StreamID{Type: "account", ID: "a1"}

func ev() runtime.EventData { return runtime.EventData{Name: "E", Schema: 1, Data: []byte{0x80}} }

// TestThroughInstrumentedStore drives a real store through Instrument and
// reads the exported values back from a registry.
func TestThroughInstrumentedStore(t *testing.T) {
	ctx := context.Background()
	m := cqrsprom.New(cqrsprom.WithConstLabels(prom.Labels{"store": "test"}))
	reg := prom.NewPedanticRegistry()
	reg.MustRegister(m)
	var tick time.Time
	clock := func() time.Time { tick = tick.Add(time.Millisecond); return tick }
	s := instrument.New(memory.New(), m, instrument.WithClock(clock))

	if _, err := s.Append(ctx, runtime.AppendRequest{Stream: acct, Events: []runtime.EventData{ev(), ev(), ev()}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, err := s.Append(ctx, runtime.AppendRequest{Stream: acct, Expected: 1, Events: []runtime.EventData{ev()}})
		if !errors.Is(err, runtime.ErrConflict) {
			t.Fatalf("want conflict, got %v", err)
		}
	}
	for _, err := range s.ReadStream(ctx, acct, 1) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Wait(ctx, 0); err != nil {
		t.Fatal(err)
	}

	want := `
# HELP cqrsgen_store_calls_total Calls on the event store, by operation, stream type and outcome.
# TYPE cqrsgen_store_calls_total counter
cqrsgen_store_calls_total{op="append",outcome="conflict",store="test",stream_type="account"} 2
cqrsgen_store_calls_total{op="append",outcome="ok",store="test",stream_type="account"} 1
cqrsgen_store_calls_total{op="read_stream",outcome="ok",store="test",stream_type="account"} 1
cqrsgen_store_calls_total{op="wait",outcome="ok",store="test",stream_type=""} 1
# HELP cqrsgen_store_conflicts_total Appends rejected because the stream was not at the expected version.
# TYPE cqrsgen_store_conflicts_total counter
cqrsgen_store_conflicts_total{store="test",stream_type="account"} 2
# HELP cqrsgen_store_records_total Events appended (op=append) or read (op=read_stream, op=read_all).
# TYPE cqrsgen_store_records_total counter
cqrsgen_store_records_total{op="append",store="test",stream_type="account"} 3
cqrsgen_store_records_total{op="read_stream",store="test",stream_type="account"} 2
`
	if err := gatherAndCompare(reg, strings.NewReader(want),
		"cqrsgen_store_calls_total", "cqrsgen_store_conflicts_total", "cqrsgen_store_records_total"); err != nil {
		t.Error(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := 0
	for _, mf := range mfs {
		if mf.GetName() != "cqrsgen_store_call_duration_seconds" {
			continue
		}
		series += len(mf.GetMetric())
		for _, mt := range mf.GetMetric() {
			h := mt.GetHistogram()
			var op string
			for _, l := range mt.GetLabel() {
				if l.GetName() == "op" {
					op = l.GetValue()
				}
			}
			wantCount := map[string]uint64{"append": 3, "read_stream": 1, "wait": 1}[op]
			if h.GetSampleCount() != wantCount {
				t.Errorf("op %s: %d samples, want %d", op, h.GetSampleCount(), wantCount)
			}
			// One clock step per reading: 1 ms per call, and a read of n
			// records spans n+1 steps inside the store.
			wantSum := map[string]float64{"append": 0.003, "read_stream": 0.003, "wait": 0.001}[op]
			if sum, want := h.GetSampleSum(), wantSum; sum < want*0.999 || sum > want*1.001 {
				t.Errorf("op %s: sum %v s, want %v", op, sum, want)
			}
		}
	}
	if series != 3 {
		t.Errorf("%d duration series, want 3 (append, read_stream, wait)", series)
	}
}

// gatherAndCompare renders the named metric families of g in the text
// exposition format and compares them with want.
func gatherAndCompare(g prom.Gatherer, want *strings.Reader, names ...string) error {
	mfs, err := g.Gather()
	if err != nil {
		return err
	}
	var got bytes.Buffer
	for _, mf := range mfs {
		for _, n := range names {
			if mf.GetName() == n {
				if _, err := expfmt.MetricFamilyToText(&got, mf); err != nil {
					return err
				}
			}
		}
	}
	var w bytes.Buffer
	if _, err := w.ReadFrom(want); err != nil {
		return err
	}
	if g, w := strings.TrimSpace(got.String()), strings.TrimSpace(w.String()); g != w {
		return fmt.Errorf("metrics differ:\n--- got\n%s\n--- want\n%s", g, w)
	}
	return nil
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []cqrsprom.Option
		want string
	}{
		{"namespace", []cqrsprom.Option{cqrsprom.WithNamespace("shop")},
			`shop_store_calls_total{op="head",outcome="ok",stream_type="order"} 1`},
		{"without stream type", []cqrsprom.Option{cqrsprom.WithoutStreamType()},
			`cqrsgen_store_calls_total{op="head",outcome="ok",stream_type=""} 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := cqrsprom.New(tt.opts...)
			m.ObserveCall(instrument.Call{Op: instrument.OpHead, StreamType: "order", Outcome: instrument.OutcomeOK})
			reg := prom.NewRegistry()
			reg.MustRegister(m)
			name := strings.SplitN(tt.want, "{", 2)[0]
			in := "# HELP " + name + " Calls on the event store, by operation, stream type and outcome.\n# TYPE " + name + " counter\n" + tt.want + "\n"
			if err := gatherAndCompare(reg, strings.NewReader(in), name); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestBuckets(t *testing.T) {
	m := cqrsprom.New(cqrsprom.WithBuckets([]float64{0.001, 0.01}))
	for _, d := range []time.Duration{500 * time.Microsecond, 5 * time.Millisecond, time.Second} {
		m.ObserveCall(instrument.Call{Op: instrument.OpAppend, Outcome: instrument.OutcomeOK, Duration: d})
	}
	reg := prom.NewRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, mf := range mfs {
		if mf.GetName() == "cqrsgen_store_call_duration_seconds" {
			for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
				got = append(got, b.GetCumulativeCount())
			}
		}
	}
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("cumulative bucket counts %v, want [1 2]", got)
	}
}

// TestConcurrentObserve: the adapter is safe for many goroutines.
func TestConcurrentObserve(t *testing.T) {
	m := cqrsprom.New()
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				m.ObserveCall(instrument.Call{Op: instrument.OpAppend, StreamType: "a", Outcome: instrument.OutcomeConflict, Duration: time.Microsecond})
			}
		}()
	}
	wg.Wait()
	reg := prom.NewRegistry()
	reg.MustRegister(m)
	want := "# HELP cqrsgen_store_conflicts_total Appends rejected because the stream was not at the expected version.\n# TYPE cqrsgen_store_conflicts_total counter\ncqrsgen_store_conflicts_total{stream_type=\"a\"} 3200\n"
	if err := gatherAndCompare(reg, strings.NewReader(want), "cqrsgen_store_conflicts_total"); err != nil {
		t.Error(err)
	}
}

// TestReadSide feeds lease changes and projection progress as the runners
// report them and checks the exported series.
func TestReadSide(t *testing.T) {
	m := cqrsprom.New()
	reg := prom.NewPedanticRegistry()
	reg.MustRegister(m)
	l := lease.Lease{Name: "bank.balances", Holder: "host/1/ab", Epoch: 3}
	m.ObserveLease(lease.Event{Lease: l, Change: lease.Acquired})
	m.ObserveLease(lease.Event{Lease: l, Change: lease.Lost})
	l.Epoch = 5
	m.ObserveLease(lease.Event{Lease: l, Change: lease.Acquired})
	m.ObserveProjection(projection.Progress{Name: "bank.balances", Position: 90, Head: 100, Lag: 10, State: projection.Running,
		EventTime: time.Unix(1_700_000_000, 250_000_000)})
	want := `
# HELP cqrsgen_lease_changes_total Leases acquired, lost or released by this process, by lease and change.
# TYPE cqrsgen_lease_changes_total counter
cqrsgen_lease_changes_total{change="acquired",lease="bank.balances"} 2
cqrsgen_lease_changes_total{change="lost",lease="bank.balances"} 1
# HELP cqrsgen_lease_epoch Epoch of the lease when this process last acquired, lost or released it.
# TYPE cqrsgen_lease_epoch gauge
cqrsgen_lease_epoch{lease="bank.balances"} 5
# HELP cqrsgen_lease_held 1 while this process holds the lease, else 0.
# TYPE cqrsgen_lease_held gauge
cqrsgen_lease_held{lease="bank.balances"} 1
# HELP cqrsgen_projection_lag Head of the log minus the projection's position, as last seen.
# TYPE cqrsgen_projection_lag gauge
cqrsgen_projection_lag{projection="bank.balances"} 10
# HELP cqrsgen_projection_last_event_timestamp_seconds When the last event the projection processed in this process was appended, in Unix seconds.
# TYPE cqrsgen_projection_last_event_timestamp_seconds gauge
cqrsgen_projection_last_event_timestamp_seconds{projection="bank.balances"} 1.70000000025e+09
# HELP cqrsgen_projection_state 1 for the projection's current state (running, standby, waiting, failed, stopped).
# TYPE cqrsgen_projection_state gauge
cqrsgen_projection_state{projection="bank.balances",state="failed"} 0
cqrsgen_projection_state{projection="bank.balances",state="running"} 1
cqrsgen_projection_state{projection="bank.balances",state="standby"} 0
cqrsgen_projection_state{projection="bank.balances",state="stopped"} 0
cqrsgen_projection_state{projection="bank.balances",state="waiting"} 0
`
	if err := gatherAndCompare(reg, strings.NewReader(want), "cqrsgen_lease_changes_total", "cqrsgen_lease_epoch",
		"cqrsgen_lease_held", "cqrsgen_projection_lag", "cqrsgen_projection_state", "cqrsgen_projection_last_event_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
}

// TestWriteSide feeds command and saga step reports through a real
// repository over an instrumented store.
func TestWriteSide(t *testing.T) {
	m := cqrsprom.New()
	reg := prom.NewPedanticRegistry()
	reg.MustRegister(m)
	store := instrument.New(memory.New(), m)
	defer store.Close()
	repo := runtime.NewRepository(store, &runtime.Aggregate[int, int, int]{
		Type:  "counter",
		Apply: func(s *int, e int) { *s += e },
		Decide: func(s *int, c int) ([]int, error) {
			if c < 0 {
				return nil, errors.New("negative")
			}
			return []int{c}, nil
		},
		EncodeEvent: func(e int) (runtime.EventData, error) {
			return runtime.EventData{Name: "added", Schema: 1, Data: []byte(fmt.Sprint(e))}, nil
		},
		DecodeEvent: func(_ string, _ uint32, b []byte) (int, error) {
			var n int
			_, err := fmt.Sscan(string(b), &n)
			return n, err
		},
	})
	ctx := context.Background()
	for _, c := range []int{1, 2, -1} {
		repo.Execute(ctx, "c1", c)
	}
	m.ObserveSagaStep(saga.StepCall{Saga: "transfer", Outcome: saga.OutcomeFailed, Tries: 1})
	m.ObserveSagaStep(saga.StepCall{Saga: "transfer", Compensation: true, Outcome: saga.OutcomeCompleted, Tries: 2})
	want := `
# HELP cqrsgen_commands_total Commands executed, by stream type and outcome (ok, rejected, conflict, duplicate, error).
# TYPE cqrsgen_commands_total counter
cqrsgen_commands_total{outcome="ok",stream_type="counter"} 2
cqrsgen_commands_total{outcome="rejected",stream_type="counter"} 1
# HELP cqrsgen_saga_steps_total Saga steps and compensations carried out, by saga, kind (step, compensation) and outcome (completed, failed, error).
# TYPE cqrsgen_saga_steps_total counter
cqrsgen_saga_steps_total{kind="compensation",outcome="completed",saga="transfer"} 1
cqrsgen_saga_steps_total{kind="step",outcome="failed",saga="transfer"} 1
`
	if err := gatherAndCompare(reg, strings.NewReader(want), "cqrsgen_commands_total", "cqrsgen_saga_steps_total"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "cqrsgen_command_duration_seconds" {
			if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n != 3 {
				t.Errorf("command duration samples %d, want 3", n)
			}
			return
		}
	}
	t.Error("no cqrsgen_command_duration_seconds")
}
