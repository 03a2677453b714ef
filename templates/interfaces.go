package templates

import (
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// Interfaces emits the sealed event interface of an aggregate and, when it
// has commands, its sealed command interface: an unexported marker method
// that each event (command) type implements with a value receiver, so that
// no other package can add to it. The marker returns the type's row in the
// aggregate's table (Tables), which is how the runtime finds a value's row
// without a type switch.
func Interfaces(f *jen.File, a *model.Aggregate) {
	var evNames []string
	for _, e := range a.Events {
		evNames = append(evNames, e.GoName)
	}
	sealed(f, model.EventInterface(a), model.EventMarker(a), model.EventTable(a), "an event of the "+a.GoName+" aggregate", evNames)
	if len(a.Commands) == 0 {
		return
	}
	var cmdNames []string
	for _, c := range a.Commands {
		cmdNames = append(cmdNames, c.GoName)
	}
	sealed(f, model.CommandInterface(a), model.CommandMarker(a), model.CommandTable(a), "a command to the "+a.GoName+" aggregate", cmdNames)
}

func sealed(f *jen.File, iface, marker, table, what string, impls []string) {
	verb := "implement"
	if len(impls) == 1 {
		verb = "implements"
	}
	docf(f.Group, 0, "%s is %s, sealed: only %s %s it. Use values; a pointer is taken as its "+
		"value, a nil one refused (runtime.ErrInvalid).", iface, what, list(impls), verb)
	f.Type().Id(iface).Interface(jen.Id(marker).Params().Int())
	for i, name := range impls {
		if i == 0 {
			docf(f.Group, 0, "%s seals %s and returns the type's row in %s.", marker, iface, table)
		}
		f.Func().Params(jen.Id(name)).Id(marker).Params().Int().Add(oneLine(jen.Return(jen.Lit(i))))
	}
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
