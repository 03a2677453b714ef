package saga

import (
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/readside"
)

// StepOutcome says how a saga step or compensation ended.
type StepOutcome string

// The outcomes of a saga step.
const (
	// OutcomeCompleted: the command succeeded.
	OutcomeCompleted StepOutcome = "completed"
	// OutcomeFailed: the command was rejected (a Business error): the
	// step failed and the saga compensates, or the compensation failed.
	OutcomeFailed StepOutcome = "failed"
	// OutcomeError: a transient or fatal error stopped the runner; the
	// step is tried again when it runs again.
	OutcomeError StepOutcome = "error"
)

// StepCall reports one saga step or compensation carried out.
type StepCall struct {
	Saga string
	// Compensation is true for a compensation, false for a step.
	Compensation bool
	Outcome      StepOutcome
	// Tries is how many times the command ran.
	Tries int
}

// Metrics is an optional extension of instrument.Metrics: when the metrics
// given to instrument.New implement it, saga runners over that
// instrumented store report each step and compensation to it.
// metrics/prometheus implements it.
type Metrics interface {
	ObserveSagaStep(s StepCall)
}

// metricsOf finds Metrics behind store's wrappers, or nil.
func metricsOf(store runtime.Store) Metrics { return readside.MetricsOf[Metrics](store) }
