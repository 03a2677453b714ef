package templates

import (
	"github.com/dave/jennifer/jen"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// multiLine renders a call's arguments one per line.
var multiLine = jen.Options{Open: "(", Close: ")", Separator: ",", Multi: true}

// rowsLast ends a call whose arguments after the first few start on lines
// of their own (jen.Line) with a trailing comma and a line break, so that
// gofmt puts the closing parenthesis on its own line.
func rowsLast(args []jen.Code) []jen.Code {
	out := append([]jen.Code(nil), args...)
	out[len(out)-1] = jen.Add(out[len(out)-1]).Op(",").Line()
	return out
}

// Tables emits the aggregate's event table (registry.Events: wire name,
// schema version, Apply method, codec and upcasts of each event, in marker
// order), its command table (registry.Commands) when it has commands, and
// the exported <A>Events through which everything reaches them. The tables
// are built on first use (sync.Once) rather than in their declarations or
// in init: a declaration that refers to Apply<E> is an initialisation
// cycle when Apply<E> calls Apply, and an init func runs after package
// variables, which may build a repository.
//
//	func AccountEvents() *registry.Events[Account, AccountEvent] {
//		cqrsAccountOnce.Do(func() {
//			cqrsAccountEvents = registry.NewEvents(AccountStreamType, AccountEvent.isAccountEvent,
//			registry.Event[AccountEvent](OpenedEventName, OpenedSchemaVersion, (*Account).ApplyOpened,
//				func(e Opened) ([]byte, error) { return cqrsMarshalOpened(&e) },
//				func(b []byte) (e Opened, err error) { err = cqrsUnmarshalOpened(b, &e); return },
//			),
//				…)
//		})
//		return cqrsAccountEvents
//	}
func Tables(f *jen.File, a *model.Aggregate) {
	ev := model.EventInterface(a)
	rt := func(name string) *jen.Statement { return jen.Qual(model.RegistryPath, name) }
	eventsType := func() *jen.Statement {
		return jen.Op("*").Add(rt("Events")).Types(jen.Id(a.GoName), jen.Id(ev))
	}
	hasCmd := len(a.Commands) > 0
	docf(f.Group, 0, "The tables of %s, rows in marker order, built by %s.", a.GoName, model.EventsFunc(a))
	f.Var().DefsFunc(func(g *jen.Group) {
		g.Id(model.TablesOnce(a)).Qual("sync", "Once")
		g.Id(model.EventTable(a)).Add(eventsType())
		if hasCmd {
			g.Id(model.CommandTable(a)).Op("*").Add(rt("Commands")).Types(jen.Id(a.GoName), jen.Id(model.CommandInterface(a)), jen.Id(ev))
		}
	})

	tables := "tables"
	if !hasCmd {
		tables = "table"
	}
	docf(f.Group, 0, "%s returns %s's event table, for projections, sagas and tools of any package. It "+
		"builds the %s on first use, so package variables may use them and Apply<E> calling Apply is no "+
		"initialization cycle.", model.EventsFunc(a), a.GoName, tables)
	f.Func().Id(model.EventsFunc(a)).Params().Add(eventsType()).Block(
		jen.Id(model.TablesOnce(a)).Dot("Do").Call(jen.Func().Params().BlockFunc(func(g *jen.Group) {
			args := []jen.Code{jen.Id(model.StreamTypeConst(a)), jen.Id(ev).Dot(model.EventMarker(a))}
			for _, e := range a.Events {
				// The codec adapters pass events by value: the runtime calls
				// them through func values, and a pointer passed that way
				// escapes to the heap, one allocation per event.
				row := []jen.Code{
					jen.Id(model.EventNameConst(e)),
					jen.Id(model.SchemaVersionConst(e)),
					jen.Parens(jen.Op("*").Id(a.GoName)).Dot("Apply" + e.GoName),
					jen.Line().Func().Params(jen.Id("e").Id(e.GoName)).Params(jen.Index().Byte(), jen.Error()).
						Add(oneLine(jen.Return(jen.Id(MarshalFunc(e.Struct)).Call(jen.Op("&").Id("e"))))),
					jen.Line().Add(valueDecoder("e", e.Struct)),
				}
				ctor := "Event"
				if e.Struct.HasPII() { // see pii.go
					ctor, row[3] = "SealedEvent", jen.Line().Add(sealedMarshalAdapter(e.Struct))
				}
				if StableDecoded(e.Struct) { // Load's decoder for bytes a store lends as stable
					ctor = "StableEvent"
					row = append(row, jen.Line().Add(decoderOf("e", e.Struct, StableUnmarshalFunc(e.Struct))))
				}
				for _, u := range e.Upcasts {
					row = append(row, jen.Line().Add(rt("UpcastFrom")).Call(wireName(e, u.WireName), jen.Lit(int(u.Version)), valueDecoder("old", u.Struct), upcastChain(e, u)))
				}
				args = append(args, jen.Line().Add(rt(ctor)).Types(jen.Id(ev)).Call(rowsLast(row)...))
			}
			table := rt("NewEvents").Call(rowsLast(args)...)
			for _, r := range retiredForms(a.Retired) {
				table = table.Dot("Retire").Call(r...)
			}
			g.Id(model.EventTable(a)).Op("=").Add(table)
			if hasCmd {
				args := []jen.Code{jen.Id(model.CommandInterface(a)).Dot(model.CommandMarker(a))}
				for _, c := range a.Commands {
					args = append(args, jen.Line().Add(rt("Command")).Types(jen.Id(model.CommandInterface(a))).Call(
						jen.Parens(jen.Op("*").Id(a.GoName)).Dot("Handle"+c.GoName)))
				}
				g.Id(model.CommandTable(a)).Op("=").Add(rt("NewCommands")).Call(rowsLast(args)...)
			}
		})),
		jen.Return(jen.Id(model.EventTable(a))),
	)
}

// valueDecoder is a func literal decoding s by value:
// func(b []byte) (v S, err error) { err = cqrsUnmarshalS(b, &v); return }.
func valueDecoder(v string, s *model.Struct) jen.Code {
	return decoderOf(v, s, UnmarshalFunc(s))
}

// decoderOf is valueDecoder calling the decoder fn of s.
func decoderOf(v string, s *model.Struct, fn string) jen.Code {
	return jen.Func().Params(jen.Id("b").Index().Byte()).Params(jen.Id(v).Id(s.GoName), jen.Err().Error()).
		Custom(jen.Options{Open: "{ ", Close: " }", Separator: ";"},
			jen.Err().Op("=").Id(fn).Call(jen.Id("b"), jen.Op("&").Id(v)),
			jen.Return(),
		)
}

// wireName is the expression for a stored wire name of e: its constant
// when it is the current one, else the former name as a literal.
func wireName(e *model.Event, name string) jen.Code {
	if name == e.WireName {
		return jen.Id(model.EventNameConst(e))
	}
	return jen.Lit(name)
}

// upcastChain is the func lifting u's stored type to e's: the upcast func
// itself for one step, else a literal applying the steps in order.
func upcastChain(e *model.Event, u *model.Upcast) jen.Code {
	if len(u.Funcs) == 1 {
		return jen.Id(u.Funcs[0])
	}
	call := jen.Id("old")
	for _, fn := range u.Funcs {
		call = jen.Id(fn).Call(call)
	}
	return jen.Func().Params(jen.Id("old").Id(u.Struct.GoName)).Id(e.GoName).Block(jen.Return(call))
}

// retiredForms groups the retired (wire name, version) pairs by name, in
// source order, as the arguments of Events.Retire: the name, then its
// versions.
func retiredForms(retired []model.Retired) [][]jen.Code {
	var out [][]jen.Code
	index := map[string]int{}
	for _, r := range retired {
		i, ok := index[r.WireName]
		if !ok {
			i = len(out)
			index[r.WireName] = i
			out = append(out, []jen.Code{jen.Lit(r.WireName)})
		}
		out[i] = append(out[i], jen.Lit(int(r.Version)))
	}
	return out
}
