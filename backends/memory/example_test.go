package memory_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
)

func ExampleNew() {
	ctx := context.Background()
	s := memory.New()
	defer s.Close()

	account := runtime.StreamID{Type: "Account", ID: "acc-1"}
	res, err := s.Append(ctx, runtime.AppendRequest{
		Stream:   account,
		Expected: runtime.NoStream,
		Events: []runtime.EventData{
			{Name: "Opened", Schema: 1, Data: []byte(`{"owner":"ada"}`)},
			{Name: "Deposited", Schema: 1, Data: []byte(`{"amount":100}`)},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("appended versions", res.FirstVersion, "to", res.LastVersion)

	// A writer that saw version 0 loses.
	_, err = s.Append(ctx, runtime.AppendRequest{
		Stream:   account,
		Expected: runtime.NoStream,
		Events:   []runtime.EventData{{Name: "Opened", Data: []byte(`{}`)}},
	})
	var conflict *runtime.ConflictError
	if errors.As(err, &conflict) {
		fmt.Println("conflict: actual version", conflict.Actual)
	}

	for rec, err := range s.ReadStream(ctx, account, 0) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("v%d p%d %s %s\n", rec.Version, rec.Position, rec.Name, rec.Data)
	}
	// Output:
	// appended versions 1 to 2
	// conflict: actual version 2
	// v1 p1 Opened {"owner":"ada"}
	// v2 p2 Deposited {"amount":100}
}
