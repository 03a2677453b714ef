package templates

import (
	"sort"

	"github.com/cqrsgen/cqrsgen/internal/model"
)

// The Go identifiers generated for an aggregate A with events E… and
// commands C…. Exported names are the public API of the generated file
// (see docs/directives.md); unexported ones all start with "cqrs" or "is"
// so they stay out of the user's way.

// EventInterface is the sealed interface of A's events: "AEvent".
func EventInterface(a *model.Aggregate) string { return a.GoName + "Event" }

// CommandInterface is the sealed interface of A's commands: "ACommand".
func CommandInterface(a *model.Aggregate) string { return a.GoName + "Command" }

// EventMarker is the unexported method that seals AEvent: "isAEvent".
func EventMarker(a *model.Aggregate) string { return "is" + a.GoName + "Event" }

// CommandMarker is the unexported method that seals ACommand: "isACommand".
func CommandMarker(a *model.Aggregate) string { return "is" + a.GoName + "Command" }

// RepositoryType is the typed repository: "ARepository".
func RepositoryType(a *model.Aggregate) string { return a.GoName + "Repository" }

// NewRepositoryFunc is its constructor: "NewARepository".
func NewRepositoryFunc(a *model.Aggregate) string { return "New" + a.GoName + "Repository" }

// StreamTypeConst is the constant holding A's stable stream type name:
// "AStreamType".
func StreamTypeConst(a *model.Aggregate) string { return a.GoName + "StreamType" }

// StateSchemaConst is the constant holding the hash of A's state shape:
// "AStateSchema".
func StateSchemaConst(a *model.Aggregate) string { return a.GoName + "StateSchema" }

// EventNameConst is the constant holding E's stable wire name:
// "EEventName".
func EventNameConst(e *model.Event) string { return e.GoName + "EventName" }

// SchemaVersionConst is the constant holding E's schema version:
// "ESchemaVersion".
func SchemaVersionConst(e *model.Event) string { return e.GoName + "SchemaVersion" }

// EncodeEventFunc encodes any event of A: "cqrsEncodeAEvent".
func EncodeEventFunc(a *model.Aggregate) string { return "cqrsEncode" + a.GoName + "Event" }

// DecodeEventFunc decodes any event of A: "cqrsDecodeAEvent".
func DecodeEventFunc(a *model.Aggregate) string { return "cqrsDecode" + a.GoName + "Event" }

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
	For model.Pos
}

// GeneratedNames lists every package-level identifier and method the
// generated file declares for pkg, sorted by receiver then name. It does
// not include codec names (CodecNames lists those).
func GeneratedNames(pkg *model.Package) []Name {
	var out []Name
	for _, a := range pkg.Aggregates {
		top := func(name string) { out = append(out, Name{Name: name, For: a.Pos}) }
		top(EventInterface(a))
		top(RepositoryType(a))
		top(NewRepositoryFunc(a))
		top(StreamTypeConst(a))
		top(StateSchemaConst(a))
		top(EncodeEventFunc(a))
		top(DecodeEventFunc(a))
		out = append(out, Name{Recv: a.GoName, Name: ApplyMethod, For: a.Pos})
		if len(a.Commands) > 0 {
			top(CommandInterface(a))
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
	out = append(out, eventExportNames(pkg)...)
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
