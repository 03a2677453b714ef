package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun runs the whole demo twice against one store directory and checks
// what it reports: old events read with the new field zero, rules
// enforced, the idempotent request applied once, Load reading only the tail
// after a snapshot, and the state loaded after reopening the store.
func TestRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	for round := 1; round <= 2; round++ {
		var out bytes.Buffer
		if err := run(context.Background(), dir, &out); err != nil {
			t.Fatalf("round %d: %v\n%s", round, err, out.String())
		}
		got := out.String()
		sections := []struct {
			name string
			want []string
		}{
			{"old data", []string{
				"v2 shop.order.line_added {SKU:mug Qty:2 UnitPrice:1250 DiscountPercent:0}",
				"v3 shop.order.line_added {SKU:tea Qty:1 UnitPrice:400 DiscountPercent:0}",
				"v4 shop.order.line_added {SKU:tea Qty:3 UnitPrice:400 DiscountPercent:25}",
				"total 38.00",
			}},
			{"rules", []string{
				"register Bob with email bob.example.com      rejected: customer: invalid email",
				"register Ada again                           rejected: customer: already registered",
				"list Tea at 0.00                             rejected: shop: price must be positive: 0",
				"receive 3 of an unlisted product             rejected: product: not listed",
				"create for unknown customer eve              rejected: shop: unknown customer \"eve\"",
				"place with no lines                          rejected: order: has no lines",
				"add 9 x mug (5 in stock)                     rejected: product: not enough stock: 5 available, 9 asked",
				"add 10 x tea at 150% off                     rejected: order: discount must be 0 to 100 percent: 150",
				"ship before paying                           rejected: order: not paid (it is draft)",
				"add 1 x tea after placing                    rejected: order: no longer a draft (it is placed)",
				"pay 10.00                                    rejected: order: payment does not match the total",
				"pay the total, 61.00                         ok, version 5",
				"cancel after shipping                        rejected: order: already shipped",
				"add 1 x mug (all reserved by order-3)        rejected: product: not enough stock: 0 available, 1 asked",
				"add 1 x mug (released by order-3)            ok, version 2",
				"mug: 3 on hand, 1 reserved, 2 available (version 7)",
			}},
			{"idempotency", []string{
				"retry 1, same key                            ok, version 3",
				"retry 2, same key                            ok, version 3",
				"order-4 at version 3: tea lines: 1; tea reserved for order-4: 4",
				"retry 3 of request-42, after the restart     ok, version 3",
			}},
			{"snapshots", []string{
				"snapshots saved at versions [25 50 75]",
				"tea stream at version 89; latest snapshot at version 75",
				"Load read the snapshot and 14 events (versions 76 to 89), not 89; version 89",
				"same as replaying all 89 events: true",
			}},
		}
		for _, s := range sections {
			for _, want := range s.want {
				if !strings.Contains(got, want) {
					t.Errorf("round %d, %s: output lacks %q:\n%s", round, s.name, want, got)
				}
			}
		}

		i := strings.Index(got, "after closing and reopening")
		if i < 0 {
			t.Fatalf("round %d: no reopened section:\n%s", round, got)
		}
		after := got[i:]
		for _, want := range []string{
			"ada       version 1  Ada <ada@example.com>",
			"mug       version 7   Mug at 12.50, 3 on hand, 1 reserved",
			"tea       version 89  Tea at 4.00, 50 on hand, 4 reserved",
			"order-1   version 4  draft     lines: 3, total 38.00, paid 0.00",
			"order-2   version 6  shipped   lines: 2, total 61.00, paid 61.00",
			"order-3   version 3  cancelled lines: 1, total 37.50, paid 0.00",
			"order-4   version 3  draft     lines: 2, total 28.50, paid 0.00",
			"Load read the snapshot and 14 events",
		} {
			if !strings.Contains(after, want) {
				t.Errorf("round %d: reopened state lacks %q:\n%s", round, want, after)
			}
		}
		// Both runs share the store: the second sees the first's data too.
		wantStats := map[int]string{
			1: "114 events in 8 streams, 1 latest snapshots, 2 idempotency keys, head position 114",
			2: "228 events in 16 streams, 2 latest snapshots, 4 idempotency keys, head position 228",
		}[round]
		if !strings.Contains(got, wantStats) {
			t.Errorf("round %d: stats line lacks %q:\n%s", round, wantStats, got)
		}
	}
}
