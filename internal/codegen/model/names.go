package model

import (
	"sort"
	"unicode"
	"unicode/utf8"
)

// The Go identifiers generated for an aggregate A with events E… and
// commands C…. Exported names are the public API of the generated file
// (see docs/directives.md); unexported ones all start with "cqrs" or "is"
// so they stay out of the user's way.

// EventInterface is the sealed interface of A's events: "AEvent".
func EventInterface(a *Aggregate) string { return a.GoName + "Event" }

// CommandInterface is the sealed interface of A's commands: "ACommand".
func CommandInterface(a *Aggregate) string { return a.GoName + "Command" }

// EventMarker is the unexported method that seals AEvent and returns an
// event type's row in A's event table: "isAEvent".
func EventMarker(a *Aggregate) string { return "is" + a.GoName + "Event" }

// CommandMarker is the unexported method that seals ACommand and returns a
// command type's row in A's command table: "isACommand".
func CommandMarker(a *Aggregate) string { return "is" + a.GoName + "Command" }

// RepositoryType is the typed repository: "ARepository".
func RepositoryType(a *Aggregate) string { return a.GoName + "Repository" }

// NewRepositoryFunc is its constructor: "NewARepository".
func NewRepositoryFunc(a *Aggregate) string { return "New" + a.GoName + "Repository" }

// StreamTypeConst is the constant holding A's stable stream type name:
// "AStreamType".
func StreamTypeConst(a *Aggregate) string { return a.GoName + "StreamType" }

// StateSchemaConst is the constant holding the hash of A's state shape:
// "AStateSchema".
func StateSchemaConst(a *Aggregate) string { return a.GoName + "StateSchema" }

// EventNameConst is the constant holding E's stable wire name:
// "EEventName".
func EventNameConst(e *Event) string { return e.GoName + "EventName" }

// SchemaVersionConst is the constant holding E's schema version:
// "ESchemaVersion".
func SchemaVersionConst(e *Event) string { return e.GoName + "SchemaVersion" }

// EventsFunc returns A's event table, for projections and sagas of any
// package: "AEvents".
func EventsFunc(a *Aggregate) string { return EventsFuncOf(a.GoName) }

// EventsFuncOf is EventsFunc for an aggregate known by its Go name only.
func EventsFuncOf(aggregate string) string { return aggregate + "Events" }

// EventTable is the variable holding A's event table: "cqrsAEvents".
func EventTable(a *Aggregate) string { return "cqrs" + a.GoName + "Events" }

// TablesOnce is the sync.Once that builds A's tables on first use:
// "cqrsAOnce".
func TablesOnce(a *Aggregate) string { return "cqrs" + a.GoName + "Once" }

// CommandTable is the variable holding A's command table:
// "cqrsACommands".
func CommandTable(a *Aggregate) string { return "cqrs" + a.GoName + "Commands" }

// The methods generated on the aggregate's state type.
const (
	ApplyMethod  = "Apply"
	DecideMethod = "Decide"
)

// Name is an identifier the generated file declares, and the construct of
// the user's package it is generated for.
type Name struct {
	// Recv is the type a method is declared on; empty for package-level
	// names.
	Recv string
	Name string
	// For is the construct (aggregate or event) it is generated for.
	For Pos
}

// GeneratedNames lists every package-level identifier and method the
// generated file declares for pkg, sorted by receiver then name. It does
// not include codec names (CodecNames lists those).
func GeneratedNames(pkg *Package) []Name {
	var out []Name
	for _, a := range pkg.Aggregates {
		top := func(name string) { out = append(out, Name{Name: name, For: a.Pos}) }
		top(EventInterface(a))
		top(RepositoryType(a))
		top(NewRepositoryFunc(a))
		top(StreamTypeConst(a))
		top(StateSchemaConst(a))
		top(EventsFunc(a))
		top(EventTable(a))
		top(TablesOnce(a))
		out = append(out, Name{Recv: a.GoName, Name: ApplyMethod, For: a.Pos})
		if len(a.Commands) > 0 {
			top(CommandInterface(a))
			top(CommandTable(a))
			out = append(out, Name{Recv: a.GoName, Name: DecideMethod, For: a.Pos})
			for _, c := range a.Commands {
				out = append(out, Name{Recv: c.GoName, Name: CommandMarker(a), For: c.Pos})
			}
		}
		for _, e := range a.Events {
			out = append(out, Name{Name: EventNameConst(e), For: e.Pos})
			out = append(out, Name{Name: SchemaVersionConst(e), For: e.Pos})
			out = append(out, Name{Recv: e.GoName, Name: EventMarker(a), For: e.Pos})
		}
	}
	out = append(out, projectionNames(pkg)...)
	out = append(out, sagaNames(pkg)...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Recv != out[j].Recv {
			return out[i].Recv < out[j].Recv
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// The methods of a saga type S the generated code calls: On<Event>
// reactions, their Correlate<Event> rules, and OnDeadline when present.
const (
	CorrelatePrefix = "Correlate"
	DeadlineMethod  = "OnDeadline"
)

// SagaNameConst is the constant holding S's stable name: "SSagaName".
func SagaNameConst(s *Saga) string { return s.GoName + "SagaName" }

// NewSagaFunc is the function describing S to the runtime: "NewSSaga".
func NewSagaFunc(s *Saga) string { return "New" + s.GoName + "Saga" }

// SagaReposType is the struct of repositories NewSSaga takes, one named
// field per aggregate S sends commands to: "SSagaRepositories".
func SagaReposType(s *Saga) string { return s.GoName + "SagaRepositories" }

// SagaRepoField names the field of SagaReposType holding target t's
// repository: the aggregate's Go name ("Account"), prefixed by its package
// name with a capital ("BillingAccount") when two targets of s share an
// aggregate name.
func SagaRepoField(s *Saga, t *CommandTarget) string {
	for _, o := range s.Targets {
		if o != t && o.Aggregate == t.Aggregate {
			r, n := utf8.DecodeRuneInString(t.PkgName)
			return string(unicode.ToUpper(r)) + t.PkgName[n:] + t.Aggregate
		}
	}
	return t.Aggregate
}

// sagaNames lists the identifiers Saga declares.
func sagaNames(pkg *Package) []Name {
	var out []Name
	for _, s := range pkg.Sagas {
		// SagaReposType is reserved even when s sends no commands: before
		// the first run the package's targets are not known yet, and the
		// name must not change meaning when the first Send is written.
		out = append(out, Name{Name: SagaNameConst(s), For: s.Pos}, Name{Name: NewSagaFunc(s), For: s.Pos},
			Name{Name: SagaReposType(s), For: s.Pos})
	}
	return out
}

// ProjectionMethod is the method generated on each projection type P:
// func (p *P) Projection() projection.Projection.
const ProjectionMethod = "Projection"

// The methods of a projection type the generated code calls when present.
const (
	ResetMethod    = "Reset"
	PositionMethod = "Position"
)

// ProjectionNameConst is the constant holding P's checkpoint name:
// "PProjectionName".
func ProjectionNameConst(p *Projection) string { return p.GoName + "ProjectionName" }

// projectionNames lists the identifiers Projection declares.
func projectionNames(pkg *Package) []Name {
	var out []Name
	for _, p := range pkg.Projections {
		out = append(out, Name{Name: ProjectionNameConst(p), For: p.Pos}, Name{Recv: p.GoName, Name: ProjectionMethod, For: p.Pos})
	}
	return out
}

// StreamTypeConstOf is StreamTypeConst for an aggregate known by its Go
// name only.
func StreamTypeConstOf(aggregate string) string { return aggregate + "StreamType" }

// RuntimePath is the import path of the runtime package generated code
// calls; RegistryPath that of the event and command tables it builds, and
// ProjectionPath and SagaPath those of the projection and saga machinery
// generated projections and sagas call.
const (
	RuntimePath    = "github.com/cqrsgen/cqrsgen/runtime"
	RegistryPath   = RuntimePath + "/registry"
	ProjectionPath = RuntimePath + "/projection"
	SagaPath       = RuntimePath + "/saga"
)
