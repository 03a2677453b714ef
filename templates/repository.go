package templates

import (
	"fmt"

	"github.com/dave/jennifer/jen"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// Repository emits the typed repository of an aggregate: a struct wrapping
// runtime.Repository, its constructor (which carries the runtime.Aggregate
// description) and explicit, documented Load, Append, Execute (when the
// aggregate has commands) and Events methods.
func Repository(f *jen.File, a *model.Aggregate) {
	ev := model.EventInterface(a)
	var cmd jen.Code = jen.Qual(model.RuntimePath, "NoCommand")
	if len(a.Commands) > 0 {
		cmd = jen.Id(model.CommandInterface(a))
	}
	typeArgs := func() *jen.Statement { return jen.Types(jen.Id(a.GoName), jen.Id(ev), cmd) }
	repo, recv := model.RepositoryType(a), jen.Id("r").Op("*").Id(model.RepositoryType(a))
	ctx := jen.Id("ctx").Qual("context", "Context")

	docf(f.Group, 0, "%s stores %s aggregates as event streams of type %s in a runtime.Store. It is "+
		"safe for concurrent use.", repo, a.GoName, model.StreamTypeConst(a))
	f.Type().Id(repo).Struct(jen.Id("r").Op("*").Qual(model.RuntimePath, "Repository").Add(typeArgs()))

	snap := ""
	if a.SnapshotEvery > 0 {
		snap = fmt.Sprintf(" It saves a snapshot every %d events unless runtime.WithSnapshotEvery says otherwise.", a.SnapshotEvery)
	}
	docf(f.Group, 0, "%s returns a repository of %s aggregates stored in s.%s", model.NewRepositoryFunc(a), a.GoName, snap)
	fields := jen.Dict{
		jen.Id("Type"):        jen.Id(model.StreamTypeConst(a)),
		jen.Id("StateSchema"): jen.Id(model.StateSchemaConst(a)),
		jen.Id("Events"):      jen.Id(model.EventsFunc(a)).Call(),
		jen.Id("EncodeState"): jen.Id(MarshalFunc(a.State)),
		jen.Id("DecodeState"): jen.Id(UnmarshalFunc(a.State)),
	}
	if a.SnapshotEvery > 0 {
		fields[jen.Id("SnapshotEvery")] = jen.Lit(int(a.SnapshotEvery))
	}
	if len(a.Commands) > 0 {
		fields[jen.Id("Decide")] = jen.Parens(jen.Op("*").Id(a.GoName)).Dot(model.DecideMethod)
	}
	f.Func().Id(model.NewRepositoryFunc(a)).Params(jen.Id("s").Qual(model.RuntimePath, "Store"), jen.Id("opts").Op("...").Qual(model.RuntimePath, "Option")).
		Op("*").Id(repo).Block(
		jen.Id("agg").Op(":=").Op("&").Qual(model.RuntimePath, "Aggregate").Add(typeArgs()).Values(fields),
		jen.Return(jen.Op("&").Id(repo).Values(jen.Dict{
			jen.Id("r"): jen.Qual(model.RuntimePath, "NewRepository").Call(jen.Id("s"), jen.Id("agg"), jen.Id("opts").Op("...")),
		})),
	)

	docf(f.Group, 0, "Load returns the current state of the %s with the given id and its version: the "+
		"latest usable snapshot plus the events after it. A missing aggregate is the zero state at version 0 "+
		"with a nil error.", a.GoName)
	f.Func().Params(recv.Clone()).Id("Load").Params(ctx.Clone(), jen.Id("id").String()).
		Params(jen.Op("*").Id(a.GoName), jen.Uint64(), jen.Error()).Block(
		jen.Return(jen.Id("r").Dot("r").Dot("Load").Call(jen.Id("ctx"), jen.Id("id"))),
	)

	docf(f.Group, 0, "Append atomically appends events to the %s with the given id if its version is "+
		"expected (an exact version, runtime.NoStream, runtime.StreamExists or runtime.AnyVersion) and "+
		"returns the new version. A mismatch is a *runtime.ConflictError (errors.Is(err, "+
		"runtime.ErrConflict)). A nil event is an error matching runtime.ErrInvalid.", a.GoName)
	f.Func().Params(recv.Clone()).Id("Append").Params(ctx.Clone(), jen.Id("id").String(), jen.Id("expected").Uint64(), jen.Id("events").Op("...").Id(ev)).
		Params(jen.Uint64(), jen.Error()).Block(
		jen.Return(jen.Id("r").Dot("r").Dot("Append").Call(jen.Id("ctx"), jen.Id("id"), jen.Id("expected"), jen.Id("events").Op("..."))),
	)

	if len(a.Commands) > 0 {
		docf(f.Group, 0, "Execute loads the %s with the given id, decides c against it and appends the "+
			"resulting events at the loaded version, retrying on conflicts, and returns the new version. An "+
			"error from the Handle method is returned as is and nothing is appended. With "+
			"runtime.IdempotencyKey a repeated key returns the first result without deciding again.", a.GoName)
		f.Func().Params(recv.Clone()).Id("Execute").Params(ctx.Clone(), jen.Id("id").String(), jen.Id("c").Id(model.CommandInterface(a)), jen.Id("opts").Op("...").Qual(model.RuntimePath, "ExecOption")).
			Params(jen.Uint64(), jen.Error()).Block(
			jen.Return(jen.Id("r").Dot("r").Dot("Execute").Call(jen.Id("ctx"), jen.Id("id"), jen.Id("c"), jen.Id("opts").Op("..."))),
		)
	}

	docf(f.Group, 0, "Events yields the events of the %s with the given id whose version is greater "+
		"than after, in order, each in an envelope with its version, position, time and metadata.", a.GoName)
	f.Func().Params(recv.Clone()).Id("Events").Params(ctx.Clone(), jen.Id("id").String(), jen.Id("after").Uint64()).
		Qual("iter", "Seq2").Types(jen.Qual(model.RuntimePath, "Envelope").Types(jen.Id(ev)), jen.Error()).Block(
		jen.Return(jen.Id("r").Dot("r").Dot("Events").Call(jen.Id("ctx"), jen.Id("id"), jen.Id("after"))),
	)
}
