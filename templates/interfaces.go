package templates

import (
	"fmt"
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// Interfaces emits the sealed event interface of an aggregate and, when it
// has commands, its sealed command interface: an unexported marker method
// that each event (command) type implements with a value receiver, so that
// values satisfy the interface and no other package can add to it. It
// ends with compile-time assertions.
func Interfaces(f *jen.File, a *model.Aggregate) {
	var evNames []string
	for _, e := range a.Events {
		evNames = append(evNames, e.GoName)
	}
	sealed(f, model.EventInterface(a), model.EventMarker(a), "an event of the "+a.GoName+" aggregate", evNames)
	if len(a.Commands) == 0 {
		return
	}
	var cmdNames []string
	for _, c := range a.Commands {
		cmdNames = append(cmdNames, c.GoName)
	}
	sealed(f, model.CommandInterface(a), model.CommandMarker(a), "a command to the "+a.GoName+" aggregate", cmdNames)
}

func sealed(f *jen.File, iface, marker, what string, impls []string) {
	f.Comment(fmt.Sprintf("%s is %s. It is sealed: only %s", iface, what, list(impls)))
	f.Comment("implement it, as values.")
	f.Type().Id(iface).Interface(jen.Id(marker).Params())
	for _, name := range impls {
		f.Func().Params(jen.Id(name)).Id(marker).Params().Block()
	}
	f.Var().DefsFunc(func(g *jen.Group) {
		for _, name := range impls {
			g.Id("_").Id(iface).Op("=").Id(name).Values()
		}
	})
}

// list joins names as English: "A", "A and B", "A, B and C".
func list(names []string) string {
	switch len(names) {
	case 0:
		return "no types"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
