package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadModel runs the demo twice against one store and checks the
// sales-by-customer read model: a join of Customer and Order events
// (including the order written with the previous release's event types),
// this run's rows the same in both rounds, every customer of the store
// counted, and the rebuild equal to the build.
func TestReadModel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	for round, customers := range []string{"2 customers", "4 customers"} {
		var out bytes.Buffer
		if err := run(context.Background(), dir, &out); err != nil {
			t.Fatalf("round %d: %v\n%s", round+1, err, out.String())
		}
		got := out.String()
		for _, want := range []string{
			"read model shop.sales-by-customer (Customer and Order events), caught up with position",
			"  ada       Ada  orders 3  paid    61.00  shipped 1  cancelled 0\n",
			"  bob       Bob  orders 1  paid     0.00  shipped 0  cancelled 1\n",
			"  rebuilt from position 0: same rows (" + customers + " in the store)\n",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("round %d: output lacks %q:\n%s", round+1, want, got)
			}
		}
	}
}
