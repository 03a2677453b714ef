package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/postgres"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lease"
)

// Open a store on the server named by CQRSGEN_POSTGRES_DSN, append two
// events with an expected version, and read the whole log back. (Not run by
// go test: it needs a server.)
func Example() {
	ctx := context.Background()
	s, err := postgres.Open(ctx, os.Getenv("CQRSGEN_POSTGRES_DSN"), postgres.WithSchema("example"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	acct := runtime.StreamID{Type: "Account", ID: "42"}
	res, err := s.Append(ctx, runtime.AppendRequest{
		Stream:   acct,
		Expected: runtime.NoStream, // the stream must not exist yet
		Events: []runtime.EventData{
			{Name: "Opened", Schema: 1, Data: []byte(`{"owner":"ada"}`)},
			{Name: "Deposited", Schema: 1, Data: []byte(`{"amount":100}`)},
		},
	})
	if err != nil {
		log.Fatal(err) // a *runtime.ConflictError if another writer was first
	}
	fmt.Println("stream at version", res.LastVersion)

	for r, err := range s.ReadAll(ctx, 0) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.Position, r.Stream, r.Version, r.Name)
	}
}

// Two processes share one lease, as the projection and saga runners do
// (they take it through lease.Of): the holder renews it at the same epoch,
// another holder gets lease.ErrHeld until it is released or expires, and a
// write fenced by a lease that has moved on fails with lease.ErrLost. (Not
// run by go test: it needs a server.)
func ExampleStore_AcquireLease() {
	ctx := context.Background()
	dsn := os.Getenv("CQRSGEN_POSTGRES_DSN")
	a, err := postgres.Open(ctx, dsn, postgres.WithSchema("example"))
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := postgres.Open(ctx, dsn, postgres.WithSchema("example")) // another process
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	held, err := a.AcquireLease(ctx, "totals", "process-a", 10*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	held, _ = a.AcquireLease(ctx, "totals", "process-a", 10*time.Second) // renewal: same epoch
	_, err = b.AcquireLease(ctx, "totals", "process-b", 10*time.Second)
	fmt.Println("b waits:", errors.Is(err, lease.ErrHeld))

	_ = a.ReleaseLease(ctx, held) // b need not wait for the lease to expire
	taken, _ := b.AcquireLease(ctx, "totals", "process-b", 10*time.Second)
	fmt.Println("b's epoch is newer:", taken.Epoch > held.Epoch)
	err = a.SaveCheckpointLeased(ctx, held, "totals", 42)
	fmt.Println("a's fenced write refused:", errors.Is(err, lease.ErrLost))
}
