package cqrsgen_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/internal/codegen/testmod"
)

// sagaCtorSource is a saga sending commands to two aggregates; first is the
// one it sends to first in the source.
func sagaCtorSource(first string) string {
	sends := map[string]string{
		"Room": "\tdo.Send(e.ID, Hold{})\n",
		"Card": "\tdo.Send(e.ID, Charge{})\n",
	}
	second := map[string]string{"Room": "Card", "Card": "Room"}[first]
	return `package hotel

import (
	"context"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
)

//cqrs:aggregate
type Room struct{ Held bool }

//cqrs:event Room
type Held struct{}

//cqrs:command Room
type Hold struct{}

func (r *Room) ApplyHeld(Held)                        { r.Held = true }
func (r *Room) HandleHold(Hold) ([]RoomEvent, error) { return []RoomEvent{Held{}}, nil }

//cqrs:aggregate
type Card struct{ Charged bool }

//cqrs:event Card
type Charged struct{}

//cqrs:command Card
type Charge struct{}

func (c *Card) ApplyCharged(Charged)                     { c.Charged = true }
func (c *Card) HandleCharge(Charge) ([]CardEvent, error) { return []CardEvent{Charged{}}, nil }

//cqrs:saga
type Booking struct{}

func (Booking) CorrelateHeld(e runtime.Envelope[Held]) (string, bool) { return e.ID, true }

func (b *Booking) OnHeld(ctx context.Context, e runtime.Envelope[Held], do *saga.Actions) error {
` + sends[first] + sends[second] + `	return nil
}
`
}

// The saga constructor takes its repositories as named fields of a
// generated struct, sorted by name: reordering the saga's Send calls
// changes nothing in the generated file, and callers name what they pass.
func TestSagaConstructorIgnoresSourceOrder(t *testing.T) {
	var outs [][]byte
	for _, first := range []string{"Room", "Card"} {
		dir := testmod.New(t, "example.com/hotel", map[string]string{"hotel.go": sagaCtorSource(first)})
		if stderr, code := tool(t, dir); code != 0 {
			t.Fatalf("cqrsgen with %s first: exit %d\n%s", first, code, stderr)
		}
		use := "package hotel\n\nimport \"github.com/cqrsgen/cqrsgen/backends/memory\"\n\n" +
			"var _ = NewBookingSaga(BookingSagaRepositories{Room: NewRoomRepository(memory.New()), Card: NewCardRepository(memory.New())})\n"
		writeFileString(t, filepath.Join(dir, "use.go"), use)
		if out, err := testmod.Go(dir, "vet", "."); err != nil {
			t.Fatalf("with %s first, a caller naming the fields does not compile:\n%s", first, out)
		}
		outs = append(outs, []byte(readFile(t, filepath.Join(dir, "cqrs_gen.go"))))
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Fatalf("reordering two Send calls changed the generated file:\n%s", diff(string(outs[0]), string(outs[1])))
	}
	got := string(outs[0])
	for _, want := range []string{
		"func NewBookingSaga(repos BookingSagaRepositories) *saga.Saga[Booking] {",
		"type BookingSagaRepositories struct {\n\t// Card executes the saga's hotel.CardCommand steps.\n\tCard *CardRepository\n\t// Room executes",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("generated file lacks %q", want)
		}
	}
}
