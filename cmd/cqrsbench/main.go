// Command cqrsbench measures cqrsgen's stores and codecs beside the layer
// beneath each (the disk's fsync rate, raw Pebble, reflection msgpack) in
// the same run, and writes a Markdown table and a JSON file.
//
//	go run ./cmd/cqrsbench -quick -out /tmp/bench
//	go run ./cmd/cqrsbench -stores memory,pebble,postgres -postgres-dsn "$DSN"
//	go run ./cmd/cqrsbench -only '^append/batch=1/'
//
// See docs/benchmarks.md for what each workload does and a full run's
// figures.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/cqrsgen/cqrsgen/internal/ops/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := bench.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, bench.IsTerminal(os.Stdout))
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
