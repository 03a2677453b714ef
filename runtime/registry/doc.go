// Package registry holds the event and command tables that cqrsgen's
// generated code builds for each aggregate (NewEvents, Event or
// StableEvent, UpcastFrom, NewCommands, Command): the dispatch by Go type and by wire name, the
// codecs and the upcasts of older stored forms, written once here instead
// of in every generated file. The tables feed runtime.Repository
// (Aggregate.Events), typed projections (projection.On) and sagas
// (saga.React). Application code rarely calls it except through generated
// code; it can also describe a hand-written aggregate.
package registry
