package postgres_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/cqrsgen/cqrsgen/backends/postgres"
	"github.com/cqrsgen/cqrsgen/runtime"
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
