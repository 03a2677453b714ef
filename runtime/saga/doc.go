// Package saga runs process managers: a Saga correlates events of any
// aggregates to its instances, and each instance reacts by sending
// commands (Actions), with compensations and deadlines.
//
// cqrsgen generates the Saga of each //cqrs:saga type (New<S>Saga; React
// and NewReactions decode each record straight into the event its reaction
// takes). Run runs it over a store, Load reads an instance and WaitFor
// waits for one to get somewhere (read-your-writes). Each instance is an
// event stream of its own; every step executes under an idempotency key
// derived from instance and step (StepKey), a failed step compensates the
// completed ones newest first, and deadlines are persisted and fire after a
// restart, on a Clock that tests replace (ManualClock).
// On a store that implements lease.Leaser one process runs each saga while
// the others stand by.
package saga
