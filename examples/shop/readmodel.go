package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/cqrsgen/cqrsgen/examples/shop/sales"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
)

// readModel runs the sales-by-customer projection (package sales), which
// joins Customer and Order events, beside the demo's commands.
type readModel struct {
	store     runtime.Store
	customers *sales.Customers
	group     *projection.Group
	cancel    context.CancelFunc
	done      chan error
}

// startReadModel starts a projection group over store feeding a fresh
// sales.Customers; stop (or show) ends it.
func startReadModel(ctx context.Context, store runtime.Store) (*readModel, error) {
	r := &readModel{store: store, customers: &sales.Customers{}, group: projection.NewGroup(store), done: make(chan error, 1)}
	if err := r.group.Add(r.customers.Projection()); err != nil {
		return nil, err
	}
	ctx, r.cancel = context.WithCancel(ctx)
	go func() { r.done <- r.group.Run(ctx) }()
	return r, nil
}

// stop ends the group and returns its error; later calls return nil.
func (r *readModel) stop() error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	r.cancel = nil
	return <-r.done
}

// show waits until the projection has caught up with the store's head,
// prints this run's customers (ids ending in "@"+run), rebuilds the model
// from position 0, checks the replay gives the same rows, and stops.
func (r *readModel) show(ctx context.Context, w io.Writer, run string) error {
	const name = sales.CustomersProjectionName
	head, err := r.store.Head(ctx)
	if err != nil {
		return err
	}
	if err := r.group.WaitFor(ctx, name, head); err != nil {
		return err
	}
	built := r.customers.Rows()
	fmt.Fprintf(w, "\nread model %s (Customer and Order events), caught up with position %d:\n", name, head)
	for _, c := range built {
		if !strings.HasSuffix(c.ID, "@"+run) {
			continue // an earlier run's customer, in a kept -data directory
		}
		fmt.Fprintf(w, "  %-9s %-4s orders %d  paid %8s  shipped %d  cancelled %d\n",
			strings.TrimSuffix(c.ID, "@"+run), c.Name, c.Orders, money(c.Paid), c.Shipped, c.Cancelled)
	}
	if err := r.group.Rebuild(ctx, name); err != nil {
		return err
	}
	if err := r.group.WaitFor(ctx, name, head); err != nil {
		return err
	}
	if rebuilt := r.customers.Rows(); !slices.Equal(built, rebuilt) {
		return fmt.Errorf("rebuilt read model differs:\nbuilt   %+v\nrebuilt %+v", built, rebuilt)
	}
	fmt.Fprintf(w, "  rebuilt from position 0: same rows (%d customers in the store)\n", len(built))
	if err := r.stop(); err != nil {
		return fmt.Errorf("projections: %w", err)
	}
	return nil
}
