package saga_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
)

// walletRecords returns every record of wallet id, in order.
func walletRecords(t *testing.T, s runtime.Store, id string) []runtime.Record {
	t.Helper()
	var out []runtime.Record
	for rec, err := range s.ReadStream(context.Background(), runtime.StreamID{Type: "wallet", ID: id}, 0) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

func last(t *testing.T, s runtime.Store, id string) runtime.Record {
	t.Helper()
	recs := walletRecords(t, s, id)
	if len(recs) == 0 {
		t.Fatalf("wallet %s has no events", id)
	}
	return recs[len(recs)-1]
}

func TestCorrelationFromContextAndOptions(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			store, _ := b.open(t)
			f := newFixture(t, store)
			ctx := runtime.ContextWithMetadata(context.Background(), map[string]string{"user": "ann"})
			ctx = runtime.ContextWithCorrelation(ctx, "req-1")
			if got := runtime.CorrelationFromContext(ctx); got != "req-1" {
				t.Errorf("CorrelationFromContext = %q", got)
			}
			cases := []struct {
				name      string
				do        func() error
				wallet    string
				corr, cau string
			}{
				{"execute under context", func() error {
					_, err := f.repo.Execute(ctx, "a", walletCmd{Op: "credit", Amount: 1})
					return err
				}, "a", "req-1", ""},
				{"options override the context", func() error {
					_, err := f.repo.Execute(ctx, "a", walletCmd{Op: "credit", Amount: 1},
						runtime.Correlation("req-2"), runtime.Causation("ext:9"))
					return err
				}, "a", "req-2", "ext:9"},
				{"append under context", func() error {
					_, err := f.repo.Append(runtime.ContextWithCausation(ctx, "ext:7"), "b", runtime.AnyVersion, walletEvent{Name: "credited", Amount: 1})
					return err
				}, "b", "req-1", "ext:7"},
				{"causation over a record keeps its correlation", func() error {
					root := last(t, store, "b")
					ctx := runtime.ContextWithCausation(runtime.ContextCausedBy(context.Background(), root), "ext:8")
					_, err := f.repo.Execute(ctx, "a", walletCmd{Op: "credit", Amount: 1})
					return err
				}, "a", "req-1", "ext:8"},
				{"caused by a record", func() error {
					root := last(t, store, "b")
					_, err := f.repo.Execute(runtime.ContextCausedBy(context.Background(), root), "a", walletCmd{Op: "credit", Amount: 1})
					return err
				}, "a", "req-1", "<b>"},
			}
			for _, c := range cases {
				bPos := last(t, store, "b").Position
				if err := c.do(); err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				md := last(t, store, c.wallet).Metadata
				want := c.cau
				if want == "<b>" {
					want = refAt(t, store, bPos)
				}
				if md[runtime.MetadataCorrelation] != c.corr || md[runtime.MetadataCausation] != want {
					t.Errorf("%s: metadata %v, want correlation %q causation %q", c.name, md, c.corr, want)
				}
				if !strings.Contains(c.name, "record") && md["user"] != "ann" {
					t.Errorf("%s: metadata %v lost the context's user", c.name, md)
				}
			}
			// Without any of it, events carry no metadata at all.
			if _, err := f.repo.Execute(context.Background(), "a", walletCmd{Op: "credit", Amount: 1}); err != nil {
				t.Fatal(err)
			}
			if md := last(t, store, "a").Metadata; md != nil {
				t.Errorf("plain Execute wrote metadata %v", md)
			}
		})
	}
}

// TestProjectionCommandsAreCaused: a projection handler that executes a
// command writes events caused by the record it handles, with the root's
// correlation id, or the root's reference when the root had none.
func TestProjectionCommandsAreCaused(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			store, _ := b.open(t)
			f := newFixture(t, store)
			// Every debit of a is mirrored as a credit of b.
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- projection.Run(ctx, store, projection.Projection{Name: "mirror", Events: []string{"debited"},
					Handle: func(ctx context.Context, rec runtime.Record) error {
						if rec.Stream.ID != "a" {
							return nil
						}
						_, err := f.repo.Execute(ctx, "b", walletCmd{Op: "credit", Amount: 1, Ref: runtime.EventRef(rec.Position)},
							runtime.IdempotencyKey("mirror:"+runtime.EventRef(rec.Position)))
						return err
					}})
			}()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			if _, err := f.repo.Execute(runtime.ContextWithCorrelation(context.Background(), "req-9"), "a", walletCmd{Op: "debit", Amount: 1}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.repo.Execute(context.Background(), "a", walletCmd{Op: "debit", Amount: 1}); err != nil {
				t.Fatal(err)
			}
			debits := walletRecords(t, store, "a")[2:]
			want := []map[string]string{
				{runtime.MetadataCorrelation: "req-9", runtime.MetadataCausation: runtime.RefOf(debits[0])},
				{runtime.MetadataCorrelation: runtime.RefOf(debits[1]), runtime.MetadataCausation: runtime.RefOf(debits[1])},
			}
			for {
				recs := walletRecords(t, store, "b")
				if len(recs) < 3 {
					waitABit(t)
					continue
				}
				for i, rec := range recs[1:] {
					if got := rec.Metadata; got[runtime.MetadataCorrelation] != want[i][runtime.MetadataCorrelation] ||
						got[runtime.MetadataCausation] != want[i][runtime.MetadataCausation] {
						t.Errorf("credit %d of b: metadata %v, want %v", i, got, want[i])
					}
				}
				return
			}
		})
	}
}

// TestSagaStepsAreCaused: a saga's steps write events caused by the
// event that triggered their reaction, with the request's correlation id
// (or the request's reference when it had none); a compensation is caused
// by the event that caused the step it undoes.
func TestSagaStepsAreCaused(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			store, _ := b.open(t)
			f := newFixture(t, store)
			sg := newTransferSaga(f.repo, transferOptions{})
			f.run(t, store, sg)
			// t1 starts under a correlation id, t2 without one.
			if _, err := store.Append(context.Background(), runtime.AppendRequest{
				Stream: runtime.StreamID{Type: "transfer-request", ID: "t1"}, Expected: runtime.NoStream,
				Events: []runtime.EventData{{Name: "transfer-requested", Schema: 1, Data: []byte("a|b|30"),
					Metadata: map[string]string{runtime.MetadataCorrelation: "req-t1"}}},
			}); err != nil {
				t.Fatal(err)
			}
			requestTransfer(t, store, "t2", "a", "c", 20) // c is closed: a is refunded
			waitSaga(t, store, sg, "t1", final)
			waitSaga(t, store, sg, "t2", final)

			req := func(id string) uint64 {
				for rec, err := range store.ReadStream(context.Background(), runtime.StreamID{Type: "transfer-request", ID: id}, 0) {
					if err != nil {
						t.Fatal(err)
					}
					return rec.Position
				}
				t.Fatalf("no request %s", id)
				return 0
			}
			byRef := func(wallet, ref string) runtime.Record {
				for _, rec := range walletRecords(t, store, wallet) {
					if strings.HasSuffix(string(rec.Data), "|"+ref) {
						return rec
					}
				}
				t.Fatalf("wallet %s has no event %q", wallet, ref)
				return runtime.Record{}
			}
			debit1 := byRef("a", "transfer:t1")
			ref := func(pos uint64) string { return refAt(t, store, pos) }
			for _, c := range []struct {
				what      string
				rec       runtime.Record
				corr, cau string
			}{
				{"t1 debit", debit1, "req-t1", ref(req("t1"))},
				{"t1 credit", byRef("b", "transfer:t1"), "req-t1", ref(debit1.Position)},
				{"t2 debit", byRef("a", "transfer:t2"), ref(req("t2")), ref(req("t2"))},
				{"t2 refund", byRef("a", "refund:t2"), ref(req("t2")), ref(req("t2"))},
			} {
				md := c.rec.Metadata
				if md[runtime.MetadataCorrelation] != c.corr || md[runtime.MetadataCausation] != c.cau {
					t.Errorf("%s: metadata %v, want correlation %q causation %q", c.what, md, c.corr, c.cau)
				}
				if md[saga.MetadataName] != sagaName {
					t.Errorf("%s: metadata %v lost the saga's keys", c.what, md)
				}
			}
		})
	}
}

// refAt returns the reference (runtime.RefOf) of the event at pos.
func refAt(t *testing.T, s runtime.Store, pos uint64) string {
	t.Helper()
	for rec, err := range s.ReadAll(context.Background(), pos-1) {
		if err != nil {
			t.Fatal(err)
		}
		if rec.Position == pos {
			return runtime.RefOf(rec)
		}
		break
	}
	t.Fatalf("no event at position %d", pos)
	return ""
}

func waitABit(t *testing.T) {
	t.Helper()
	if d, ok := t.Deadline(); ok && time.Until(d) < 5*time.Second {
		t.Fatal("gave up waiting")
	}
	time.Sleep(2 * time.Millisecond)
}
