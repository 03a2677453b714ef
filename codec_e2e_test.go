package cqrsgen_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/internal/codegen/testmod"
)

// A shared value object in a package of its own, as teams keep them.
const codecMoney = `package money

// Currency is an ISO 4217 code.
type Currency string

// Amount is a sum of money in minor units.
type Amount struct {
	Cents    int64
	Currency Currency
}
`

const codecShop = `package shop

import (
	"net/netip"
	"net/url"
	"time"

	"example.com/codec/money"
)

// Base is embedded: its fields are promoted into the event's map.
type Base struct {
	ID string
	At time.Time
}

//cqrs:aggregate
type Order struct {
	Total  money.Amount
	Lines  []money.Amount
	client netip.Addr // unexported: stored in snapshots too
}

//cqrs:event Order
type Placed struct {
	Base
	Price   money.Amount
	Extras  map[string]money.Amount
	Client  netip.Addr
	Network *netip.Prefix
	Site    url.URL
	note    string
}

func (o *Order) ApplyPlaced(e Placed) {
	o.Total = e.Price
	o.Lines = append(o.Lines, e.Price)
	o.client = e.Client
}
`

const codecTest = `package shop

import (
	"context"
	"net/netip"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/vmihailenco/msgpack/v5"

	"example.com/codec/money"
)

func TestCodecs(t *testing.T) {
	prefix := netip.MustParsePrefix("10.0.0.0/8")
	site, _ := url.Parse("https://example.com/a?b=c")
	e := Placed{
		Base:    Base{ID: "o-1", At: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)},
		Price:   money.Amount{Cents: 1250, Currency: "EUR"},
		Extras:  map[string]money.Amount{"gift": {Cents: 300, Currency: "EUR"}},
		Client:  netip.MustParseAddr("10.1.2.3"),
		Network: &prefix,
		Site:    *site,
		note:    "unexported fields are stored",
	}
	data, err := cqrsMarshalPlaced(&e)
	if err != nil {
		t.Fatal(err)
	}
	var back Placed
	if err := cqrsUnmarshalPlaced(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, e) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, e)
	}
	// The bytes are plain MessagePack: embedded fields promoted, the
	// shared value object a map, netip.Addr its text.
	var m map[string]any
	if err := msgpack.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m["ID"] != "o-1" || m["Client"] != "10.1.2.3" || m["Network"] != "10.0.0.0/8" || m["note"] != "unexported fields are stored" {
		t.Errorf("wire map %v", m)
	}
	if p, ok := m["Price"].(map[string]any); !ok || p["Currency"] != "EUR" {
		t.Errorf("Price on the wire: %#v", m["Price"])
	}
	if _, nested := m["Base"]; nested {
		t.Error("the embedded Base was written as a nested map, not promoted")
	}

	// Through a repository and a snapshot of the state.
	ctx := context.Background()
	orders := NewOrderRepository(memory.New())
	if _, err := orders.Append(ctx, "o-1", 0, e); err != nil {
		t.Fatal(err)
	}
	o, _, err := orders.Load(ctx, "o-1")
	if err != nil || o.Total != e.Price || o.client != e.Client {
		t.Fatalf("Load = %+v, %v", o, err)
	}
	state, err := cqrsMarshalOrder(o)
	if err != nil {
		t.Fatal(err)
	}
	var again Order
	if err := cqrsUnmarshalOrder(state, &again); err != nil || !reflect.DeepEqual(&again, o) {
		t.Fatalf("state round trip: %+v, %v", again, err)
	}
}
`

// TestCodecE2E generates codecs for structs of another package of the
// module (a shared money.Amount), types with unexported fields that have
// text or binary marshalers (netip.Addr, url.URL), embedded structs and
// unexported fields, then round-trips them in a module of its own.
func TestCodecE2E(t *testing.T) {
	mod := testmod.New(t, "example.com/codec", map[string]string{
		"money/money.go":     codecMoney,
		"shop/shop.go":       codecShop,
		"shop/codec_test.go": codecTest,
	})
	dir := filepath.Join(mod, "shop")
	if stderr, code := tool(t, dir); code != 0 {
		t.Fatalf("generate: exit %d\n%s", code, stderr)
	}
	lock := readFile(t, filepath.Join(dir, "cqrs.lock"))
	for _, want := range []string{
		"event  Order Placed@1 Placed {ID:string At:time Price:{Cents:int64 Currency:string} Extras:map[string]{Cents:int64 Currency:string} Client:text Network:*text Site:binary note:string}",
	} {
		if !strings.Contains(lock, want) {
			t.Errorf("lock lacks %q:\n%s", want, lock)
		}
	}
	testmod.MustGo(t, mod, "vet", "./...")
	out := testmod.MustGo(t, mod, "test", "-count=1", "-v", "./shop")
	if !strings.Contains(out, "--- PASS: TestCodecs") {
		t.Fatalf("codec test did not run:\n%s", out)
	}
}
