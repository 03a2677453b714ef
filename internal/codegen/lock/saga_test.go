package lock

import (
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

func sagaPackage(name string, version uint32, amount model.Kind, upcast bool) *model.Package {
	state := &model.Struct{GoName: "Booking", Fields: []*model.Field{{Key: "Room", Type: &model.Type{Kind: model.String}}, {Key: "Amount", Type: &model.Type{Kind: amount}}}}
	s := &model.Saga{GoName: "Booking", Name: name, Version: version, State: state}
	if upcast {
		old := &model.Struct{GoName: "BookingV1", Fields: []*model.Field{{Key: "Room", Type: &model.Type{Kind: model.String}}, {Key: "Amount", Type: &model.Type{Kind: model.Int64}}}}
		s.Upcasts = []*model.Upcast{{WireName: name, Version: version - 1, Struct: old, Funcs: []string{"up"}}}
	}
	return &model.Package{Sagas: []*model.Saga{s}}
}

// Saga state lines round-trip and are checked like events: a retyped
// field without a version bump is breaking, with one and an upcaster from
// the locked shape it is not; a renamed, removed or downgraded saga is.
func TestSagaEntries(t *testing.T) {
	v1 := Render(Entries(sagaPackage("hotel booking", 1, model.Int64, false)))
	if want := "\nsaga   \"cqrsgen.saga.hotel booking\" \"hotel booking\"@1 Booking {Room:string Amount:int64}\n"; !strings.Contains(string(v1), want) {
		t.Fatalf("rendering lacks %q:\n%s", want, v1)
	}
	old, errs := Parse("cqrs.lock", v1)
	if len(errs) > 0 || string(Render(old)) != string(v1) {
		t.Fatalf("round trip: %v\n%s", errs, Render(old))
	}
	for _, c := range []struct {
		name string
		pkg  *model.Package
		want string // "" when compatible
	}{
		{"unchanged", sagaPackage("hotel booking", 1, model.Int64, false), ""},
		{"retyped", sagaPackage("hotel booking", 1, model.String, false), "field Amount of Booking changed from int64 to string: bump version= and add a //cqrs:upcast"},
		{"versioned", sagaPackage("hotel booking", 2, model.String, true), ""},
		{"renamed", sagaPackage("hotel stay", 1, model.Int64, false), `name of saga Booking changed from "hotel booking" to "hotel stay"`},
		{"removed", &model.Package{}, `saga Booking ("hotel booking") is in cqrs.lock but no longer in the package`},
	} {
		errs := Check("cqrs.lock", old, Entries(c.pkg))
		switch {
		case c.want == "" && len(errs) > 0:
			t.Errorf("%s: %v, want compatible", c.name, errs)
		case c.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Msg, c.want)):
			t.Errorf("%s: %v, want one error containing %q", c.name, errs, c.want)
		}
	}
	v2, _ := Parse("cqrs.lock", Render(Entries(sagaPackage("hotel booking", 2, model.String, true))))
	errs = Check("cqrs.lock", v2, Entries(sagaPackage("hotel booking", 1, model.String, false)))
	if len(errs) == 0 || !strings.Contains(errs[len(errs)-1].Msg, "saga Booking is version 1, but cqrs.lock records hotel booking@2: versions never go down") {
		t.Errorf("version down: %v", errs)
	}
}
