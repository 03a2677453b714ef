package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// lamp is a tiny hand-written aggregate. cqrsgen generates the equivalent
// of lampAggregate (and a typed wrapper around the repository) from
// annotated structs; it is spelled out here to show what the runtime needs.
type lamp struct{ On bool }

type switched struct{ On bool }

type toggle struct{}

var lampAggregate = &runtime.Aggregate[lamp, switched, toggle]{
	Type:   "Lamp",
	Apply:  func(l *lamp, e switched) { l.On = e.On },
	Decide: func(l *lamp, _ toggle) ([]switched, error) { return []switched{{On: !l.On}}, nil },
	EncodeEvent: func(e switched) (runtime.EventData, error) {
		return runtime.EventData{Name: "Switched", Schema: 1, Data: strconv.AppendBool(nil, e.On)}, nil
	},
	DecodeEvent: func(name string, schema uint32, data []byte) (switched, error) {
		on, err := strconv.ParseBool(string(data))
		return switched{On: on}, err
	},
}

// A Repository executes commands (load, decide, append with the loaded
// version) and reads typed event streams.
func ExampleRepository() {
	ctx := context.Background()
	lamps := runtime.NewRepository(memory.New(), lampAggregate)

	for range 3 {
		if _, err := lamps.Execute(ctx, "kitchen", toggle{}); err != nil {
			fmt.Println(err)
		}
	}
	state, version, _ := lamps.Load(ctx, "kitchen")
	fmt.Println("on:", state.On, "version:", version)

	// An append that expects an outdated version is refused.
	_, err := lamps.Append(ctx, "kitchen", 1, switched{On: false})
	var conflict *runtime.ConflictError
	if errors.As(err, &conflict) {
		fmt.Println("conflict: expected", conflict.Expected, "actual", conflict.Actual)
	}

	for env, err := range lamps.Events(ctx, "kitchen", 1) {
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Println(env.Version, env.Name, env.Event.On)
	}
	// Output:
	// on: true version: 3
	// conflict: expected 1 actual 3
	// 2 Switched false
	// 3 Switched true
}

// Subscribe reads the whole log from a position, then follows it live.
func ExampleSubscribe() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := memory.New()
	lamps := runtime.NewRepository(store, lampAggregate)
	lamps.Execute(ctx, "hall", toggle{})
	lamps.Execute(ctx, "porch", toggle{})

	for rec, err := range runtime.Subscribe(ctx, store, 0) {
		if err != nil {
			fmt.Println("stopped:", errors.Is(err, context.Canceled))
			break
		}
		fmt.Println(rec.Position, rec.Stream, rec.Name)
		switch rec.Position {
		case 2:
			// Caught up: what is appended now arrives live.
			lamps.Execute(ctx, "hall", toggle{})
		case 3:
			cancel()
		}
	}
	// Output:
	// 1 Lamp/"hall" Switched
	// 2 Lamp/"porch" Switched
	// 3 Lamp/"hall" Switched
	// stopped: true
}
