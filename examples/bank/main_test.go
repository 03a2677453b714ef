package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRun runs the whole demo twice against one store directory and checks
// what it reports: rules enforced, the idempotent retry not applied twice,
// the balances-by-owner read model (over both runs' events, the same after
// a rebuild) and the state loaded after reopening the store.
func TestRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	for round := 1; round <= 2; round++ {
		var out bytes.Buffer
		if err := run(context.Background(), dir, &out); err != nil {
			t.Fatalf("round %d: %v\n%s", round, err, out.String())
		}
		got := out.String()
		for _, want := range []string{
			"withdraw 500.00                      rejected: account: insufficient funds",
			"deposit 20.00 (key dep-1)            ok, version 2",
			"deposit 20.00 (key dep-1, retried)   ok, version 2",
			"close with money in it               rejected: account: balance must be zero to close",
			"deposit 1.00 after close             rejected: account: closed",
			"stale append expecting version 1: conflict, stream is at 3",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("round %d: output lacks %q:\n%s", round, want, got)
			}
		}
		after := got[strings.Index(got, "after closing"):]
		for _, re := range []string{
			`alice  version 3  owner Alice balance   70.00  open true  closed false`,
			`bob    version 4  owner Bob   balance    0.00  open false closed true`,
		} {
			if !regexp.MustCompile(regexp.QuoteMeta(re)).MatchString(after) {
				t.Errorf("round %d: reopened state lacks %q:\n%s", round, re, after)
			}
		}
		// The read model covers the whole log: in the second round each
		// owner has the first round's account too.
		readModel := map[int][]string{
			1: {"caught up with position 7:",
				"Alice  balance   70.00  accounts open 1 closed 0",
				"Bob    balance    0.00  accounts open 0 closed 1"},
			2: {"caught up with position 14:",
				"Alice  balance  140.00  accounts open 2 closed 0",
				"Bob    balance    0.00  accounts open 0 closed 2"},
		}[round]
		readModel = append(readModel, "rebuilt from position 0: same balances (status: running, exactly-once true, position "+
			map[int]string{1: "7", 2: "14"}[round]+", lag 0, rebuilds 1)")
		for _, want := range readModel {
			if !strings.Contains(got, want) {
				t.Errorf("round %d: read model output lacks %q:\n%s", round, want, got)
			}
		}
		// The transfer saga: one completes, one to a closed account is
		// refunded; money is neither lost nor created.
		transfers := got[strings.Index(got, "transfers (saga"):]
		for _, want := range []string{
			"carol -> dave   25.00  completed",
			"step 1 account.Withdraw to carol completed",
			"step 2 account.Deposit  to dave  completed",
			"carol -> erin   10.00  compensated (step 2 (account.Deposit to",
			"step 1 account.Withdraw to carol compensated",
			"step 2 account.Deposit  to erin  failed",
			"balances:  carol 75.00  dave 25.00  erin 0.00",
		} {
			if !strings.Contains(transfers, want) {
				t.Errorf("round %d: transfers lack %q:\n%s", round, want, transfers)
			}
		}
		// Both runs share the store: the second sees the first's events too.
		wantEvents := map[int]string{1: "7 events in 2 streams", 2: "14 events in 4 streams"}[round]
		if !strings.Contains(got, wantEvents) {
			t.Errorf("round %d: stats line lacks %q:\n%s", round, wantEvents, got)
		}
	}
}
