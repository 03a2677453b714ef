// Command shop runs the shop example end to end on the embedded Pebble
// store. Its domain (examples/shop/shop) has three aggregates in one
// package — Product, Order and Customer — and the program shows:
//
//   - events written by an older release, whose LineAdded had no
//     DiscountPercent field yet, read back by the current code: the new
//     field is zero on old events and set on new ones;
//
//   - commands across aggregates, and business rules rejecting bad ones;
//
//   - an idempotent command retried after a simulated client timeout and
//     applied once, also after the store is reopened;
//
//   - snapshots: a product with a long stream loads from its latest
//     snapshot plus the few events after it;
//
//   - the state loaded again after closing and reopening the store.
//
//     go run ./examples/shop              # a fresh store under the OS temp dir
//     go run ./examples/shop -data DIR    # keep the store in DIR (reused across runs)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/pebble"
	v1 "github.com/cqrsgen/cqrsgen/examples/shop/internal/v1"
	"github.com/cqrsgen/cqrsgen/examples/shop/shop"
	"github.com/cqrsgen/cqrsgen/runtime"
)

func main() {
	data := flag.String("data", "", "store directory (default: a new directory under the OS temp dir, removed afterwards)")
	flag.Parse()
	if err := run(context.Background(), *data, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "shop:", err)
		os.Exit(1)
	}
}

// walkInSales is how many over-the-counter sales of tea the snapshot
// section records: two events each, enough to cross several snapshot
// intervals of the Product aggregate (snapshot=25).
const walkInSales = 40

// run executes the demo against the store in dir (a temporary one when dir
// is empty) and reports to w.
func run(ctx context.Context, dir string, w io.Writer) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "cqrsgen-shop-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = filepath.Join(tmp, "store")
	}
	store, err := pebble.Open(dir)
	if err != nil {
		return err
	}
	defer func() { store.Close() }() // the store in use when run returns
	fmt.Fprintf(w, "store: pebble at %s (every append fsynced)\n", dir)

	// Ids unique to this run, so that a kept -data directory can be run
	// against again; printed without the suffix.
	d := &demo{w: w, run: time.Now().UTC().Format("20060102T150405.000000000")}
	d.open(store)
	rm, err := startReadModel(ctx, store) // the read side, beside the commands (readmodel.go)
	if err != nil {
		return err
	}
	defer rm.stop()

	steps := []func(context.Context) error{
		d.oldData, d.catalogue, d.orderFlow, d.idempotency, d.snapshots,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}

	if err := rm.show(ctx, w, d.run); err != nil {
		return err
	}

	// Close the store, reopen it and load everything again from disk.
	if err := store.Close(); err != nil {
		return err
	}
	if store, err = pebble.Open(dir); err != nil {
		return fmt.Errorf("reopening: %w", err)
	}
	d.open(store)
	if err := d.reopened(ctx); err != nil {
		return err
	}
	st, err := store.Stats(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nstore: %d events in %d streams, %d latest snapshots, %d idempotency keys, head position %d\n",
		st.Events, st.Streams, st.Snapshots, st.IdempotencyKeys, st.Head)
	return nil
}

// demo holds the repositories of one store and the application logic that
// spans aggregates.
type demo struct {
	w   io.Writer
	run string

	store     runtime.Store
	customers *shop.CustomerRepository
	products  *shop.ProductRepository
	orders    *shop.OrderRepository
}

func (d *demo) open(store runtime.Store) {
	d.store = store
	d.customers = shop.NewCustomerRepository(store)
	d.products = shop.NewProductRepository(store)
	d.orders = shop.NewOrderRepository(store)
}

// id returns the stream id of name in this run.
func (d *demo) id(name string) string { return name + "@" + d.run }

// name strips the run suffix from an id for printing.
func name(id string) string {
	n, _, _ := strings.Cut(id, "@")
	return n
}

func (d *demo) section(title string) { fmt.Fprintf(d.w, "\n%s\n", title) }

// report prints the outcome of one command.
func (d *demo) report(id, what string, v uint64, err error) {
	if err != nil {
		fmt.Fprintf(d.w, "  %-9s %-44s rejected: %v\n", name(id), what, err)
		return
	}
	fmt.Fprintf(d.w, "  %-9s %-44s ok, version %d\n", name(id), what, v)
}

// oldData writes an order as the previous release did — with the v1 event
// types, whose LineAdded has no DiscountPercent — then reads and extends it
// with the current types.
func (d *demo) oldData(ctx context.Context) error {
	d.section("1. an order written by the previous release (LineAdded without DiscountPercent):")
	order := d.id("order-1")
	old := v1.NewOrderRepository(d.store)
	v, err := old.Append(ctx, order, runtime.NoStream,
		v1.OrderCreated{Customer: d.id("ada")},
		v1.LineAdded{SKU: "mug", Qty: 2, UnitPrice: 12_50},
		v1.LineAdded{SKU: "tea", Qty: 1, UnitPrice: 4_00},
	)
	if err != nil {
		return fmt.Errorf("writing old events: %w", err)
	}
	fmt.Fprintf(d.w, "  %-9s %-44s ok, version %d\n", name(order), "3 events appended with the v1 types", v)

	fmt.Fprintln(d.w, "  the current release adds a discounted line and reads the stream back:")
	v, err = d.orders.Execute(ctx, order, shop.AddLine{SKU: "tea", Qty: 3, UnitPrice: 4_00, DiscountPercent: 25})
	d.report(order, "add 3 x tea at 25% off", v, err)
	if err != nil {
		return err
	}
	for env, err := range d.orders.Events(ctx, order, 0) {
		if err != nil {
			return err
		}
		if e, ok := env.Event.(shop.LineAdded); ok {
			fmt.Fprintf(d.w, "    v%d %s %+v\n", env.Version, env.Name, e)
		}
	}
	o, _, err := d.orders.Load(ctx, order)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.w, "    total %s (25.00 + 4.00 at full price, 12.00 - 25%%)\n", money(o.Total))
	return nil
}

// catalogue registers customers and lists products.
func (d *demo) catalogue(ctx context.Context) error {
	d.section("2. customers and products:")
	ada, bob := d.id("ada"), d.id("bob")
	for _, c := range []struct {
		id, what string
		cmd      shop.CustomerCommand
	}{
		{ada, "register Ada", shop.RegisterCustomer{Name: "Ada", Email: "ada@example.com"}},
		{bob, "register Bob with email bob.example.com", shop.RegisterCustomer{Name: "Bob", Email: "bob.example.com"}},
		{bob, "register Bob", shop.RegisterCustomer{Name: "Bob", Email: "bob@example.com"}},
		{ada, "register Ada again", shop.RegisterCustomer{Name: "Ada", Email: "ada@example.org"}},
	} {
		v, err := d.customers.Execute(ctx, c.id, c.cmd)
		d.report(c.id, c.what, v, err)
	}
	mug, tea := d.id("mug"), d.id("tea")
	for _, c := range []struct {
		id, what string
		cmd      shop.ProductCommand
	}{
		{mug, "list Mug at 12.50", shop.ListProduct{Name: "Mug", Price: 12_50}},
		{tea, "list Tea at 0.00", shop.ListProduct{Name: "Tea", Price: 0}},
		{tea, "list Tea at 4.00", shop.ListProduct{Name: "Tea", Price: 4_00}},
		{mug, "receive 5", shop.ReceiveStock{Qty: 5}},
		{tea, "receive 100", shop.ReceiveStock{Qty: 100}},
		{d.id("cup"), "receive 3 of an unlisted product", shop.ReceiveStock{Qty: 3}},
	} {
		v, err := d.products.Execute(ctx, c.id, c.cmd)
		d.report(c.id, c.what, v, err)
	}
	return nil
}

// Application errors: rules across aggregates, checked before any command.
var errUnknownCustomer = errors.New("shop: unknown customer")

// createOrder starts an order for a registered customer.
func (d *demo) createOrder(ctx context.Context, order, customer string) (uint64, error) {
	c, _, err := d.customers.Load(ctx, customer)
	if err != nil {
		return 0, err
	}
	if !c.Registered {
		return 0, fmt.Errorf("%w %q", errUnknownCustomer, name(customer))
	}
	return d.orders.Execute(ctx, order, shop.CreateOrder{Customer: customer})
}

// addLine reserves qty units of product sku and adds them to the order at
// the product's current price. With a key, each of the two commands gets
// its own idempotency key derived from it (a key names one operation on
// one stream), so retrying the whole call with the same key reserves and
// adds once.
func (d *demo) addLine(ctx context.Context, order, sku string, qty, discount int, key string) (uint64, error) {
	p, _, err := d.products.Load(ctx, sku)
	if err != nil {
		return 0, err
	}
	if _, err := d.products.Execute(ctx, sku, shop.ReserveStock{Qty: qty, OrderID: order}, keyed(key, "reserve")...); err != nil {
		return 0, err
	}
	v, err := d.orders.Execute(ctx, order, shop.AddLine{SKU: name(sku), Qty: qty, UnitPrice: p.Price, DiscountPercent: discount}, keyed(key, "line")...)
	if err != nil {
		// Give the reservation back; the order refused the line.
		if _, rerr := d.products.Execute(ctx, sku, shop.ReleaseStock{Qty: qty, OrderID: order}, keyed(key, "release")...); rerr != nil {
			return 0, errors.Join(err, rerr)
		}
		return 0, err
	}
	return v, nil
}

func keyed(key, step string) []runtime.ExecOption {
	if key == "" {
		return nil
	}
	return []runtime.ExecOption{runtime.IdempotencyKey(key + "/" + step)}
}

// ship ships a paid order and dispatches its reserved stock.
func (d *demo) ship(ctx context.Context, order, carrier string) (uint64, error) {
	v, err := d.orders.Execute(ctx, order, shop.ShipOrder{Carrier: carrier})
	if err != nil {
		return 0, err
	}
	return v, d.eachLine(ctx, order, func(qty int) shop.ProductCommand {
		return shop.DispatchStock{Qty: qty, OrderID: order}
	})
}

// cancel cancels an order and releases its reserved stock.
func (d *demo) cancel(ctx context.Context, order, reason string) (uint64, error) {
	v, err := d.orders.Execute(ctx, order, shop.CancelOrder{Reason: reason})
	if err != nil {
		return 0, err
	}
	return v, d.eachLine(ctx, order, func(qty int) shop.ProductCommand {
		return shop.ReleaseStock{Qty: qty, OrderID: order}
	})
}

func (d *demo) eachLine(ctx context.Context, order string, cmd func(qty int) shop.ProductCommand) error {
	o, _, err := d.orders.Load(ctx, order)
	if err != nil {
		return err
	}
	for _, l := range o.Lines {
		if _, err := d.products.Execute(ctx, d.id(l.SKU), cmd(l.Qty)); err != nil {
			return fmt.Errorf("order %s, product %s: %w", name(order), l.SKU, err)
		}
	}
	return nil
}

// orderFlow runs orders through their life, with the rules rejecting what
// they must.
func (d *demo) orderFlow(ctx context.Context) error {
	d.section("3. orders across aggregates, rules rejecting bad commands:")
	ada, bob, eve := d.id("ada"), d.id("bob"), d.id("eve")
	mug, tea := d.id("mug"), d.id("tea")
	o2, o3, o4 := d.id("order-2"), d.id("order-3"), d.id("order-4")
	steps := []struct {
		id, what string
		do       func() (uint64, error)
	}{
		{o2, "create for unknown customer eve", func() (uint64, error) { return d.createOrder(ctx, o2, eve) }},
		{o2, "create for Ada", func() (uint64, error) { return d.createOrder(ctx, o2, ada) }},
		{o2, "place with no lines", func() (uint64, error) { return d.orders.Execute(ctx, o2, shop.PlaceOrder{}) }},
		{o2, "add 9 x mug (5 in stock)", func() (uint64, error) { return d.addLine(ctx, o2, mug, 9, 0, "") }},
		{o2, "add 2 x mug", func() (uint64, error) { return d.addLine(ctx, o2, mug, 2, 0, "") }},
		{o2, "add 10 x tea at 150% off", func() (uint64, error) { return d.addLine(ctx, o2, tea, 10, 150, "") }},
		{o2, "add 10 x tea at 10% off", func() (uint64, error) { return d.addLine(ctx, o2, tea, 10, 10, "") }},
		{o2, "ship before paying", func() (uint64, error) { return d.ship(ctx, o2, "post") }},
		{o2, "place", func() (uint64, error) { return d.orders.Execute(ctx, o2, shop.PlaceOrder{}) }},
		{o2, "add 1 x tea after placing", func() (uint64, error) { return d.addLine(ctx, o2, tea, 1, 0, "") }},
		{o2, "pay 10.00", func() (uint64, error) {
			return d.orders.Execute(ctx, o2, shop.PayOrder{Amount: 10_00, PaymentRef: "card-1"})
		}},
		{o2, "pay the total, 61.00", func() (uint64, error) {
			return d.orders.Execute(ctx, o2, shop.PayOrder{Amount: 61_00, PaymentRef: "card-2"})
		}},
		{o2, "ship", func() (uint64, error) { return d.ship(ctx, o2, "post") }},
		{o2, "cancel after shipping", func() (uint64, error) { return d.cancel(ctx, o2, "changed mind") }},
		{o3, "create for Bob", func() (uint64, error) { return d.createOrder(ctx, o3, bob) }},
		{o3, "add 3 x mug (3 left)", func() (uint64, error) { return d.addLine(ctx, o3, mug, 3, 0, "") }},
		{o4, "create for Ada", func() (uint64, error) { return d.createOrder(ctx, o4, ada) }},
		{o4, "add 1 x mug (all reserved by order-3)", func() (uint64, error) { return d.addLine(ctx, o4, mug, 1, 0, "") }},
		{o3, "cancel", func() (uint64, error) { return d.cancel(ctx, o3, "out of budget") }},
		{o4, "add 1 x mug (released by order-3)", func() (uint64, error) { return d.addLine(ctx, o4, mug, 1, 0, "") }},
	}
	for _, s := range steps {
		v, err := s.do()
		d.report(s.id, s.what, v, err)
	}
	p, v, err := d.products.Load(ctx, mug)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.w, "  mug: %d on hand, %d reserved, %d available (version %d)\n", p.OnHand, p.Reserved, p.Available(), v)
	return nil
}

// idempotency adds a line under an idempotency key, loses the response
// (the client timed out), and retries with the same key.
func (d *demo) idempotency(ctx context.Context) error {
	d.section("4. an idempotent command retried after a client timeout:")
	order, tea := d.id("order-4"), d.id("tea")
	key := d.id("request-42")

	// The client sends the request; the shop executes it, but the answer
	// is lost on the way back, so all the client sees is its own timeout.
	if _, err := d.addLine(ctx, order, tea, 4, 0, key); err != nil {
		return err
	}
	fmt.Fprintf(d.w, "  %-9s %-44s answer lost: the client timed out\n", name(order), "add 4 x tea (key request-42)")
	for attempt := 1; attempt <= 2; attempt++ {
		v, err := d.addLine(ctx, order, tea, 4, 0, key)
		d.report(order, fmt.Sprintf("retry %d, same key", attempt), v, err)
	}
	o, v, err := d.orders.Load(ctx, order)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.w, "  order-4 at version %d: tea lines: %d; tea reserved for order-4: %d\n",
		v, countLines(o, "tea"), d.reservedFor(ctx, tea, order))
	return nil
}

func countLines(o *shop.Order, sku string) int {
	n := 0
	for _, l := range o.Lines {
		if l.SKU == sku {
			n++
		}
	}
	return n
}

// reservedFor sums the stock of product sku reserved for order, from the
// product's events.
func (d *demo) reservedFor(ctx context.Context, sku, order string) int {
	n := 0
	for env, err := range d.products.Events(ctx, sku, 0) {
		if err != nil {
			return -1
		}
		switch e := env.Event.(type) {
		case shop.StockReserved:
			if e.OrderID == order {
				n += e.Qty
			}
		case shop.StockReleased:
			if e.OrderID == order {
				n -= e.Qty
			}
		}
	}
	return n
}

// snapshots records many sales of tea and shows Load starting from the
// latest snapshot.
func (d *demo) snapshots(ctx context.Context) error {
	d.section(fmt.Sprintf("5. snapshots: %d walk-in sales of tea, Product has snapshot=25:", walkInSales))
	tea := d.id("tea")
	recording := &countingStore{Store: d.store}
	products := shop.NewProductRepository(recording)
	for i := range walkInSales {
		till := fmt.Sprintf("till-%d", i+1)
		if _, err := products.Execute(ctx, tea, shop.ReserveStock{Qty: 1, OrderID: till}); err != nil {
			return err
		}
		if _, err := products.Execute(ctx, tea, shop.DispatchStock{Qty: 1, OrderID: till}); err != nil {
			return err
		}
	}
	fmt.Fprintf(d.w, "  snapshots saved at versions %v (the store keeps the latest)\n", recording.saved)
	return d.showSnapshot(ctx, tea)
}

// showSnapshot prints the stream's version, its latest snapshot, how many
// events Load read, and whether that state equals a full replay.
func (d *demo) showSnapshot(ctx context.Context, sku string) error {
	stream := runtime.StreamID{Type: shop.ProductStreamType, ID: sku}
	version, err := d.store.StreamVersion(ctx, stream)
	if err != nil {
		return err
	}
	snap, err := d.store.LoadSnapshot(ctx, stream)
	if err != nil {
		return fmt.Errorf("loading the snapshot of %s: %w", stream, err)
	}
	counting := &countingStore{Store: d.store}
	p, v, err := shop.NewProductRepository(counting).Load(ctx, sku)
	if err != nil {
		return err
	}
	full := new(shop.Product)
	for env, err := range d.products.Events(ctx, sku, 0) {
		if err != nil {
			return err
		}
		full.Apply(env.Event)
	}
	fmt.Fprintf(d.w, "  %s stream at version %d; latest snapshot at version %d\n", name(sku), version, snap.Version)
	fmt.Fprintf(d.w, "  Load read the snapshot and %d events (versions %d to %d), not %d; version %d\n",
		counting.read.Load(), snap.Version+1, version, version, v)
	fmt.Fprintf(d.w, "  state: %d on hand, %d reserved, %d movements; same as replaying all %d events: %v\n",
		p.OnHand, p.Reserved, p.Movements, version, *p == *full)
	return nil
}

// countingStore counts the events read from streams and records the
// versions of the snapshots saved through it.
type countingStore struct {
	runtime.Store
	read  atomic.Int64
	mu    sync.Mutex
	saved []uint64
}

func (c *countingStore) SaveSnapshot(ctx context.Context, s runtime.Snapshot) error {
	err := c.Store.SaveSnapshot(ctx, s)
	if err == nil {
		c.mu.Lock()
		c.saved = append(c.saved, s.Version)
		c.mu.Unlock()
	}
	return err
}

func (c *countingStore) ReadStream(ctx context.Context, stream runtime.StreamID, after uint64) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) {
		for rec, err := range c.Store.ReadStream(ctx, stream, after) {
			if err == nil {
				c.read.Add(1)
			}
			if !yield(rec, err) {
				return
			}
		}
	}
}

// reopened loads everything again from the reopened store and retries the
// idempotent request once more.
func (d *demo) reopened(ctx context.Context) error {
	d.section("6. after closing and reopening the store:")
	for _, n := range []string{"ada", "bob"} {
		c, v, err := d.customers.Load(ctx, d.id(n))
		if err != nil {
			return err
		}
		fmt.Fprintf(d.w, "  %-9s version %d  %s <%s>\n", n, v, c.Name, c.Email)
	}
	for _, n := range []string{"mug", "tea"} {
		p, v, err := d.products.Load(ctx, d.id(n))
		if err != nil {
			return err
		}
		fmt.Fprintf(d.w, "  %-9s version %-3d %s at %s, %d on hand, %d reserved\n", n, v, p.Name, money(p.Price), p.OnHand, p.Reserved)
	}
	for _, n := range []string{"order-1", "order-2", "order-3", "order-4"} {
		o, v, err := d.orders.Load(ctx, d.id(n))
		if err != nil {
			return err
		}
		fmt.Fprintf(d.w, "  %-9s version %d  %-9s lines: %d, total %s, paid %s\n", n, v, o.Status, len(o.Lines), money(o.Total), money(o.Paid))
	}
	order := d.id("order-4")
	v, err := d.addLine(ctx, order, d.id("tea"), 4, 0, d.id("request-42"))
	d.report(order, "retry 3 of request-42, after the restart", v, err)
	return d.showSnapshot(ctx, d.id("tea"))
}

func money(cents int64) string {
	return fmt.Sprintf("%d.%02d", cents/100, cents%100)
}
