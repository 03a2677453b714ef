// Package prometheus exports the calls of an instrumented cqrsgen store
// (instrument.New) as Prometheus metrics. It is a separate package so
// that programs that do not use Prometheus do not link its client.
//
//	m := prometheus.New()
//	prom.MustRegister(m)                        // github.com/prometheus/client_golang/prometheus
//	store := instrument.New(pebbleStore, m)
//
// Metrics (the namespace defaults to "cqrsgen"):
//
//	cqrsgen_store_calls_total{op, stream_type, outcome}        counter
//	cqrsgen_store_records_total{op, stream_type}               counter: events appended or read
//	cqrsgen_store_conflicts_total{stream_type}                 counter: appends that lost on their expected version
//	cqrsgen_store_call_duration_seconds{op, stream_type}       histogram: time spent in the store
//
// and, for the read side (projection.Metrics: projection and saga
// runners over the instrumented store):
//
//	cqrsgen_lease_changes_total{lease, change}                 counter: leases acquired, lost, released by this process
//	cqrsgen_lease_held{lease}                                  gauge: 1 while this process holds the lease
//	cqrsgen_lease_epoch{lease}                                 gauge: the epoch of the lease as this process last held it
//	cqrsgen_projection_position{projection}                    gauge: last position processed
//	cqrsgen_projection_lag{projection}                         gauge: head - position as last seen
//	cqrsgen_projection_state{projection, state}                gauge: 1 for the current state
//	cqrsgen_projection_last_event_timestamp_seconds{projection} gauge: append time of the last event processed (Unix)
//
// and, for the write side (telemetry.CommandMetrics: repositories and saga
// runners over the instrumented store):
//
//	cqrsgen_commands_total{stream_type, outcome}               counter: Execute calls by telemetry.CommandOutcome
//	cqrsgen_command_retries_total{stream_type}                 counter: appends retried after a version conflict
//	cqrsgen_command_duration_seconds{stream_type}              histogram: Execute latency, retries included
//	cqrsgen_saga_steps_total{saga, kind, outcome}              counter: steps (kind="step") and compensations (kind="compensation") by saga.StepOutcome
//
// op is a instrument.Op ("append", "read_stream", "read_all", "wait", …) and
// outcome a instrument.Outcome ("ok", "conflict", "error", …). stream_type is
// the aggregate's stream type, empty for calls on the whole log; stream
// ids are never used as labels. Subscriptions show as op="read_all"
// (catch-up) and op="wait" (live: how long subscribers waited for the next
// event).
package prometheus

import (
	"github.com/cqrsgen/cqrsgen/runtime/instrument"
	"github.com/cqrsgen/cqrsgen/runtime/lease"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
	"github.com/cqrsgen/cqrsgen/runtime/telemetry"
	prom "github.com/prometheus/client_golang/prometheus"
)

// DefaultBuckets are the latency buckets of the duration histogram, in
// seconds: 50 µs to about 13 s, doubling.
var DefaultBuckets = prom.ExponentialBuckets(50e-6, 2, 19)

// Option configures New.
type Option func(*options)

type options struct {
	namespace  string
	buckets    []float64
	constant   prom.Labels
	streamType bool
}

// WithNamespace sets the metric name prefix (default "cqrsgen").
func WithNamespace(ns string) Option {
	return func(o *options) { o.namespace = ns }
}

// WithBuckets sets the duration histogram's buckets in seconds (default
// DefaultBuckets).
func WithBuckets(b []float64) Option {
	return func(o *options) {
		if len(b) > 0 {
			o.buckets = b
		}
	}
}

// WithConstLabels adds labels with fixed values to every metric, for
// example the store's name when a process has several.
func WithConstLabels(l prom.Labels) Option {
	return func(o *options) { o.constant = l }
}

// WithoutStreamType drops the stream_type label (its value is then always
// empty), for applications with very many stream types.
func WithoutStreamType() Option {
	return func(o *options) { o.streamType = false }
}

// Metrics is a instrument.Metrics that records calls into Prometheus
// collectors. It is itself a prometheus.Collector: register it once.
type Metrics struct {
	calls     *prom.CounterVec
	records   *prom.CounterVec
	conflicts *prom.CounterVec
	duration  *prom.HistogramVec
	withType  bool

	leaseChanges *prom.CounterVec
	leaseHeld    *prom.GaugeVec
	leaseEpoch   *prom.GaugeVec
	position     *prom.GaugeVec
	lag          *prom.GaugeVec
	state        *prom.GaugeVec
	eventTime    *prom.GaugeVec

	commands        *prom.CounterVec
	commandRetries  *prom.CounterVec
	commandDuration *prom.HistogramVec
	sagaSteps       *prom.CounterVec
}

var (
	_ instrument.Metrics       = (*Metrics)(nil)
	_ projection.Metrics       = (*Metrics)(nil)
	_ telemetry.CommandMetrics = (*Metrics)(nil)
	_ prom.Collector           = (*Metrics)(nil)
)

// New returns Metrics with its collectors created (not registered).
func New(opts ...Option) *Metrics {
	o := options{namespace: "cqrsgen", buckets: DefaultBuckets, streamType: true}
	for _, f := range opts {
		f(&o)
	}
	return &Metrics{
		calls: prom.NewCounterVec(prom.CounterOpts{
			Namespace: o.namespace, Subsystem: "store", Name: "calls_total", ConstLabels: o.constant,
			Help: "Calls on the event store, by operation, stream type and outcome.",
		}, []string{"op", "stream_type", "outcome"}),
		records: prom.NewCounterVec(prom.CounterOpts{
			Namespace: o.namespace, Subsystem: "store", Name: "records_total", ConstLabels: o.constant,
			Help: "Events appended (op=append) or read (op=read_stream, op=read_all).",
		}, []string{"op", "stream_type"}),
		conflicts: prom.NewCounterVec(prom.CounterOpts{
			Namespace: o.namespace, Subsystem: "store", Name: "conflicts_total", ConstLabels: o.constant,
			Help: "Appends rejected because the stream was not at the expected version.",
		}, []string{"stream_type"}),
		duration: prom.NewHistogramVec(prom.HistogramOpts{
			Namespace: o.namespace, Subsystem: "store", Name: "call_duration_seconds", ConstLabels: o.constant,
			Help:    "Time spent in the event store per call (reads exclude the consumer's loop body).",
			Buckets: o.buckets,
		}, []string{"op", "stream_type"}),
		withType: o.streamType,
		leaseChanges: prom.NewCounterVec(prom.CounterOpts{
			Namespace: o.namespace, Subsystem: "lease", Name: "changes_total", ConstLabels: o.constant,
			Help: "Leases acquired, lost or released by this process, by lease and change.",
		}, []string{"lease", "change"}),
		leaseHeld: prom.NewGaugeVec(prom.GaugeOpts{
			Namespace: o.namespace, Subsystem: "lease", Name: "held", ConstLabels: o.constant,
			Help: "1 while this process holds the lease, else 0.",
		}, []string{"lease"}),
		leaseEpoch: prom.NewGaugeVec(prom.GaugeOpts{
			Namespace: o.namespace, Subsystem: "lease", Name: "epoch", ConstLabels: o.constant,
			Help: "Epoch of the lease when this process last acquired, lost or released it.",
		}, []string{"lease"}),
		position: prom.NewGaugeVec(prom.GaugeOpts{
			Namespace: o.namespace, Subsystem: "projection", Name: "position", ConstLabels: o.constant,
			Help: "Last global position processed by the projection (or saga) in this process.",
		}, []string{"projection"}),
		lag: prom.NewGaugeVec(prom.GaugeOpts{
			Namespace: o.namespace, Subsystem: "projection", Name: "lag", ConstLabels: o.constant,
			Help: "Head of the log minus the projection's position, as last seen.",
		}, []string{"projection"}),
		state: prom.NewGaugeVec(prom.GaugeOpts{
			Namespace: o.namespace, Subsystem: "projection", Name: "state", ConstLabels: o.constant,
			Help: "1 for the projection's current state (running, standby, waiting, failed, stopped).",
		}, []string{"projection", "state"}),
		eventTime: prom.NewGaugeVec(prom.GaugeOpts{
			Namespace: o.namespace, Subsystem: "projection", Name: "last_event_timestamp_seconds", ConstLabels: o.constant,
			Help: "When the last event the projection processed in this process was appended, in Unix seconds.",
		}, []string{"projection"}),
		commands: prom.NewCounterVec(prom.CounterOpts{
			Namespace: o.namespace, Name: "commands_total", ConstLabels: o.constant,
			Help: "Commands executed, by stream type and outcome (ok, rejected, conflict, duplicate, error).",
		}, []string{"stream_type", "outcome"}),
		commandRetries: prom.NewCounterVec(prom.CounterOpts{
			Namespace: o.namespace, Subsystem: "command", Name: "retries_total", ConstLabels: o.constant,
			Help: "Appends of commands retried after losing on their expected version.",
		}, []string{"stream_type"}),
		commandDuration: prom.NewHistogramVec(prom.HistogramOpts{
			Namespace: o.namespace, Subsystem: "command", Name: "duration_seconds", ConstLabels: o.constant,
			Help:    "Time to execute a command: load, decide, append, retries.",
			Buckets: o.buckets,
		}, []string{"stream_type"}),
		sagaSteps: prom.NewCounterVec(prom.CounterOpts{
			Namespace: o.namespace, Subsystem: "saga", Name: "steps_total", ConstLabels: o.constant,
			Help: "Saga steps and compensations carried out, by saga, kind (step, compensation) and outcome (completed, failed, error).",
		}, []string{"saga", "kind", "outcome"}),
	}
}

// ObserveCommand records one executed command.
func (m *Metrics) ObserveCommand(c telemetry.CommandCall) {
	typ := c.StreamType
	if !m.withType {
		typ = ""
	}
	m.commands.WithLabelValues(typ, string(c.Outcome)).Inc()
	if c.Retries > 0 {
		m.commandRetries.WithLabelValues(typ).Add(float64(c.Retries))
	}
	m.commandDuration.WithLabelValues(typ).Observe(c.Duration.Seconds())
}

// ObserveSagaStep records one saga step or compensation.
func (m *Metrics) ObserveSagaStep(s saga.StepCall) {
	kind := "step"
	if s.Compensation {
		kind = "compensation"
	}
	m.sagaSteps.WithLabelValues(s.Saga, kind, string(s.Outcome)).Inc()
}

// projectionStates are the states exported by cqrsgen_projection_state.
var projectionStates = []projection.State{projection.Stopped, projection.Running,
	projection.Failed, projection.Standby, projection.Waiting}

// ObserveLease records a lease change of this process.
func (m *Metrics) ObserveLease(e lease.Event) {
	m.leaseChanges.WithLabelValues(e.Lease.Name, string(e.Change)).Inc()
	held := 0.0
	if e.Change == lease.Acquired {
		held = 1
	}
	m.leaseHeld.WithLabelValues(e.Lease.Name).Set(held)
	m.leaseEpoch.WithLabelValues(e.Lease.Name).Set(float64(e.Lease.Epoch))
}

// ObserveProjection records a projection's progress.
func (m *Metrics) ObserveProjection(p projection.Progress) {
	m.position.WithLabelValues(p.Name).Set(float64(p.Position))
	m.lag.WithLabelValues(p.Name).Set(float64(p.Lag))
	if !p.EventTime.IsZero() {
		m.eventTime.WithLabelValues(p.Name).Set(float64(p.EventTime.Unix()) + float64(p.EventTime.Nanosecond())/1e9)
	}
	for _, s := range projectionStates {
		v := 0.0
		if s == p.State {
			v = 1
		}
		m.state.WithLabelValues(p.Name, s.String()).Set(v)
	}
}

// ObserveCall records c.
func (m *Metrics) ObserveCall(c instrument.Call) {
	typ := c.StreamType
	if !m.withType {
		typ = ""
	}
	op := string(c.Op)
	m.calls.WithLabelValues(op, typ, string(c.Outcome)).Inc()
	if c.Records > 0 {
		m.records.WithLabelValues(op, typ).Add(float64(c.Records))
	}
	if c.Outcome == instrument.OutcomeConflict {
		m.conflicts.WithLabelValues(typ).Inc()
	}
	m.duration.WithLabelValues(op, typ).Observe(c.Duration.Seconds())
}

// Describe sends the descriptors of every metric.
func (m *Metrics) Describe(ch chan<- *prom.Desc) {
	m.calls.Describe(ch)
	m.records.Describe(ch)
	m.conflicts.Describe(ch)
	m.duration.Describe(ch)
	m.leaseChanges.Describe(ch)
	m.leaseHeld.Describe(ch)
	m.leaseEpoch.Describe(ch)
	m.position.Describe(ch)
	m.lag.Describe(ch)
	m.state.Describe(ch)
	m.eventTime.Describe(ch)
	m.commands.Describe(ch)
	m.commandRetries.Describe(ch)
	m.commandDuration.Describe(ch)
	m.sagaSteps.Describe(ch)
}

// Collect sends the current values of every metric.
func (m *Metrics) Collect(ch chan<- prom.Metric) {
	m.calls.Collect(ch)
	m.records.Collect(ch)
	m.conflicts.Collect(ch)
	m.duration.Collect(ch)
	m.leaseChanges.Collect(ch)
	m.leaseHeld.Collect(ch)
	m.leaseEpoch.Collect(ch)
	m.position.Collect(ch)
	m.lag.Collect(ch)
	m.state.Collect(ch)
	m.eventTime.Collect(ch)
	m.commands.Collect(ch)
	m.commandRetries.Collect(ch)
	m.commandDuration.Collect(ch)
	m.sagaSteps.Collect(ch)
}
