package route

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestTableScanAndMap(t *testing.T) {
	for _, n := range []int{1, scan, scan + 1, 3 * scan} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var tb Table[string, int]
			for i := range n {
				tb.Add(fmt.Sprint("k", i), i)
			}
			tb.Add("k0", -1) // replaces, does not add
			for i := range n {
				want := i
				if i == 0 {
					want = -1
				}
				if v, ok := tb.Get(fmt.Sprint("k", i)); !ok || v != want {
					t.Errorf("Get(k%d) = %d, %v; want %d", i, v, ok, want)
				}
			}
			if v, ok := tb.Get("missing"); ok || v != 0 {
				t.Errorf("Get(missing) = %d, %v", v, ok)
			}
			if len(tb.keys) != n {
				t.Errorf("%d keys, want %d", len(tb.keys), n)
			}
		})
	}
}

func TestRecords(t *testing.T) {
	first, second := errors.New("first"), errors.New("second")
	var r Records[string]
	r.Add("account", []string{"Opened", "Deposited"}, "a", nil)
	r.Add("order", []string{"Deposited", "Placed"}, "o", first)
	r.Add("account", []string{"Opened"}, "a2", second)
	if got, want := r.Names(), []string{"Opened", "Deposited", "Placed"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	if !errors.Is(r.Err(), first) || errors.Is(r.Err(), second) {
		t.Errorf("Err() = %v, want the first error added", r.Err())
	}
	for _, c := range []struct {
		stream, name, want string
		ok                 bool
	}{
		{"account", "Opened", "a2", true},
		{"account", "Deposited", "a", true},
		{"order", "Deposited", "o", true},
		{"order", "Opened", "", false},
		{"account", "Placed", "", false},
	} {
		if v, ok := r.Get(c.stream, c.name); v != c.want || ok != c.ok {
			t.Errorf("Get(%s, %s) = %q, %v; want %q, %v", c.stream, c.name, v, ok, c.want, c.ok)
		}
	}
}
