package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/backends/postgres"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/jackc/pgx/v5"
	"github.com/vmihailenco/msgpack/v5"
)

// openStore opens a fresh, empty store of the named kind. The returned
// function closes it and removes its data.
func (r *runner) openStore(ctx context.Context, name string) (runtime.Store, func() error, error) {
	switch name {
	case "memory":
		s := memory.New()
		return s, s.Close, nil
	case "pebble":
		dir := r.tempDir("pebble")
		logger := slog.New(slog.NewTextHandler(r.cfg.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))
		s, err := pebble.Open(dir, pebble.WithLogger(logger))
		if err != nil {
			return nil, nil, fmt.Errorf("bench: opening pebble store: %w", err)
		}
		return s, func() error {
			err := s.Close()
			if rmErr := os.RemoveAll(dir); err == nil {
				err = rmErr
			}
			return err
		}, nil
	case "postgres":
		// A fresh schema per case, dropped afterwards: cases never see each
		// other's data and the database is left as it was.
		schema := fmt.Sprintf("cqrsbench_%d_%d", os.Getpid(), r.seq.Add(1))
		s, err := postgres.Open(ctx, r.cfg.PostgresDSN, postgres.WithSchema(schema))
		if err != nil {
			return nil, nil, fmt.Errorf("bench: opening postgres store: %w", err)
		}
		return s, func() error {
			err := s.Close()
			if dropErr := dropSchema(r.cfg.PostgresDSN, schema); err == nil {
				err = dropErr
			}
			return err
		}, nil
	}
	return nil, nil, fmt.Errorf("bench: unknown store %q", name)
}

// dropSchema removes a benchmark schema and everything in it.
func dropSchema(dsn, schema string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("bench: dropping schema %s: %w", schema, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("bench: dropping schema %s: %w", schema, err)
	}
	return nil
}

// durable reports whether a store syncs every append.
func durable(store string) *bool {
	if store == "memory" {
		return nil
	}
	return ptr(true)
}

// deposited mirrors the bank example's Deposited event for reflection
// msgpack and store-level payloads.
type deposited struct {
	Amount    int64
	Reference string
}

var sampleEvent = deposited{Amount: 12_345, Reference: "bench-ref-000042"}

// samplePayload is the encoded body of every store-level event: the sample
// Deposited event encoded with reflection msgpack.
func samplePayload() []byte {
	b, err := msgpack.Marshal(sampleEvent)
	if err != nil {
		panic(fmt.Sprintf("bench: encoding the sample event: %v", err)) // a fixed struct: cannot fail
	}
	return b
}

// eventName is the wire name of the sample event.
const eventName = "bank.account.deposited"

// streamType is the stream type of store-level workloads.
const streamType = "bank.account"

// sampleBatch returns n store-level events.
func sampleBatch(n int) []runtime.EventData {
	data := samplePayload()
	evs := make([]runtime.EventData, n)
	for i := range evs {
		evs[i] = runtime.EventData{Name: eventName, Schema: 1, Data: data}
	}
	return evs
}
