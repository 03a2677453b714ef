package pebble_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/runtime"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "events")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := pebble.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	acct := runtime.StreamID{Type: "Account", ID: "acc-1"}
	res, err := s.Append(ctx, runtime.AppendRequest{
		Stream:   acct,
		Expected: runtime.NoStream,
		Events:   []runtime.EventData{{Name: "Opened", Schema: 1, Data: []byte(`{}`)}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("version", res.LastVersion, "position", res.LastPosition)

	// A second append that expects a new stream conflicts.
	_, err = s.Append(ctx, runtime.AppendRequest{Stream: acct, Expected: runtime.NoStream,
		Events: []runtime.EventData{{Name: "Opened", Data: []byte(`{}`)}}})
	fmt.Println("conflict:", errors.Is(err, runtime.ErrConflict))

	for rec, err := range s.ReadStream(ctx, acct, 0) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(rec.Version, rec.Name)
	}
	// Output:
	// version 1 position 1
	// conflict: true
	// 1 Opened
}
