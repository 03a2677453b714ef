package account_test

import (
	"context"
	"errors"
	goruntime "runtime"
	"slices"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/examples/bank/account"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// encoded returns the stored form of events appended through the
// generated repository: the way seeds and round trips reach the codec.
func encoded(t testing.TB, events ...account.AccountEvent) []runtime.Record {
	t.Helper()
	ctx := context.Background()
	s := memory.New()
	defer s.Close()
	if _, err := account.NewAccountRepository(s).Append(ctx, "a", runtime.AnyVersion, events...); err != nil {
		t.Fatal(err)
	}
	var out []runtime.Record
	for rec, err := range s.ReadAll(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

var fuzzEvents = []account.AccountEvent{
	account.Opened{Owner: "ann", At: time.Date(2024, 2, 29, 12, 0, 0, 1, time.UTC)},
	account.Deposited{Amount: 1 << 40, Reference: "ref-\x00\xff"},
	account.Withdrawn{Amount: -1, Reference: ""},
	account.AccountClosed{Reason: "done"},
}

// sameEvent compares events by value (times with Equal).
func sameEvent(a, b account.AccountEvent) bool {
	if oa, ok := a.(account.Opened); ok {
		ob, ok := b.(account.Opened)
		return ok && oa.Owner == ob.Owner && oa.At.Equal(ob.At)
	}
	return a == b
}

// decodeAny decodes one stored event through the generated event table,
// and reports whether the table claims its wire name at all: a name it
// does not list must be refused as a *runtime.UnknownEventError.
func decodeAny(t *testing.T, name string, schema uint32, data []byte) (account.AccountEvent, bool, error) {
	t.Helper()
	claimed := slices.Contains(account.AccountEvents().Names(), name)
	ev, err := account.AccountEvents().Decode(name, schema, data)
	if unknown := (*runtime.UnknownEventError)(nil); !claimed && !errors.As(err, &unknown) {
		t.Fatalf("unlisted wire name %q decodes to %#v, %v; want a *runtime.UnknownEventError", name, ev, err)
	}
	return ev, claimed, err
}

// FuzzDecodeEvents feeds arbitrary stored events to the generated decoders,
// directly (AccountEvents().Decode) and through the generated repository over a store
// holding them (Load and Events). Nothing may panic; a decoder error must
// reach the repository's caller as a *runtime.DecodeError; and an event
// that decodes must survive encoding through the repository unchanged.
func FuzzDecodeEvents(f *testing.F) {
	for _, rec := range encoded(f, fuzzEvents...) {
		f.Add(rec.Name, rec.Schema, rec.Data)
	}
	f.Add(account.OpenedEventName, uint32(1), []byte{0xdb, 0xff, 0xff, 0xff, 0xff})    // str32 of 2^32-1 bytes
	f.Add(account.DepositedEventName, uint32(1), []byte{0xdf, 0xff, 0xff, 0xff, 0xff}) // map32 of 2^32-1 pairs
	f.Add(account.WithdrawnEventName, uint32(1), []byte{0xdd, 0xff, 0xff, 0xff, 0xff}) // array32
	f.Add(account.AccountClosedEventName, uint32(2), []byte{0x81, 0xa6, 'R', 'e', 'a', 's', 'o', 'n', 0xa0})
	f.Add("unknown", uint32(1), []byte{0x80})
	f.Fuzz(func(t *testing.T, name string, schema uint32, data []byte) {
		ev, claimed, derr := decodeAny(t, name, schema, data)

		// Through the repository: a store holding the bytes as they are.
		if storekit.ValidateAppend(runtime.AppendRequest{Stream: runtime.StreamID{Type: account.AccountStreamType, ID: "x"},
			Events: []runtime.EventData{{Name: name, Schema: schema, Data: data}}}) != nil {
			return // the store would refuse to hold it
		}
		ctx := context.Background()
		s := memory.New()
		defer s.Close()
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: runtime.StreamID{Type: account.AccountStreamType, ID: "x"},
			Events: []runtime.EventData{{Name: name, Schema: schema, Data: data}}}); err != nil {
			t.Fatal(err)
		}
		repo := account.NewAccountRepository(s)
		_, _, lerr := repo.Load(ctx, "x")
		var got account.AccountEvent
		n := 0
		var eerr error
		for env, err := range repo.Events(ctx, "x", 0) {
			if err != nil {
				eerr = err
				break
			}
			got = env.Event
			n++
		}
		decodes := claimed && derr == nil
		for _, err := range []error{lerr, eerr} {
			var de *runtime.DecodeError
			switch {
			case decodes && err != nil:
				t.Fatalf("AccountEvents().Decode accepts %q/%d %x but the repository fails: %v", name, schema, data, err)
			case !decodes && (err == nil || !errors.As(err, &de) || !errors.Is(err, runtime.ErrCorrupt)):
				t.Fatalf("undecodable %q/%d %x: repository error %v, want a *runtime.DecodeError", name, schema, data, err)
			}
		}
		if !decodes {
			return
		}
		if n != 1 || !sameEvent(got, ev) {
			t.Fatalf("Events yields %d events, %#v; AccountEvents().Decode gives %#v", n, got, ev)
		}
		// Round trip through the generated encoder.
		again := encoded(t, ev)
		back, _, err := decodeAny(t, again[0].Name, again[0].Schema, again[0].Data)
		if err != nil || !sameEvent(back, ev) {
			t.Fatalf("%#v does not round-trip: %#v, %v", ev, back, err)
		}
	})
}

// FuzzDecodeSnapshot stores arbitrary bytes as an account's snapshot under
// the current state schema. Loading must never fail because of it: a
// snapshot that does not decode is ignored (the state is rebuilt from the
// events), one that decodes is used.
func FuzzDecodeSnapshot(f *testing.F) {
	ctx := context.Background()
	{
		s := memory.New()
		repo := account.NewAccountRepository(s, runtime.WithSnapshotEvery(1))
		if _, err := repo.Append(ctx, "a", runtime.NoStream, fuzzEvents[0], fuzzEvents[1]); err != nil {
			f.Fatal(err)
		}
		snap, err := s.LoadSnapshot(ctx, runtime.StreamID{Type: account.AccountStreamType, ID: "a"})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(snap.Data)
		s.Close()
	}
	f.Add([]byte{0x86, 0xa5, 'O', 'w', 'n', 'e', 'r', 0xdb, 0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0xc0})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := memory.New()
		defer s.Close()
		var reported []error
		repo := account.NewAccountRepository(s, runtime.WithSnapshotEvery(0), runtime.WithErrorHandler(func(err error) { reported = append(reported, err) }))
		if _, err := repo.Append(ctx, "a", runtime.NoStream, fuzzEvents[0], fuzzEvents[1]); err != nil {
			t.Fatal(err)
		}
		stream := runtime.StreamID{Type: account.AccountStreamType, ID: "a"}
		if err := s.SaveSnapshot(ctx, runtime.Snapshot{Stream: stream, Version: 1, Schema: account.AccountStateSchema, Data: data}); err != nil {
			if errors.Is(err, runtime.ErrTooLarge) {
				return
			}
			t.Fatal(err)
		}
		st, v, err := repo.Load(ctx, "a")
		if err != nil {
			t.Fatalf("Load with a snapshot of %x: %v", data, err)
		}
		if v != 2 || st == nil {
			t.Fatalf("Load with a snapshot of %x: version %d, state %v", data, v, st)
		}
		if len(reported) > 0 && !errors.Is(reported[0], runtime.ErrCorrupt) {
			t.Fatalf("an undecodable snapshot is reported as %v, want ErrCorrupt", reported[0])
		}
		if len(reported) > 0 && (st.Owner != "ann" || st.Balance != 1<<40) {
			t.Fatalf("snapshot %x ignored, but the state was not rebuilt from the events: %+v", data, *st)
		}
	})
}

// allocBytes returns the bytes allocated by f, averaged over runs.
func allocBytes(runs int, f func()) uint64 {
	f() // warm up
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	for range runs {
		f()
	}
	goruntime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// TestDecodeAllocationBound gives the generated decoders values whose
// MessagePack headers claim 2^32-1 bytes, elements or pairs (str32, bin32,
// array32, map32), at the top and inside a field: each must fail after
// allocating a few bytes, not gigabytes.
func TestDecodeAllocationBound(t *testing.T) {
	huge := []byte{0xff, 0xff, 0xff, 0xff}
	field := func(name string) []byte { return append([]byte{0xa0 | byte(len(name))}, name...) }
	cat := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	inputs := map[string][]byte{
		"map32 at the top":       cat([]byte{0xdf}, huge),
		"array32 at the top":     cat([]byte{0xdd}, huge),
		"str32 owner":            cat([]byte{0x82}, field("Owner"), []byte{0xdb}, huge, []byte("ann")),
		"bin32 owner":            cat([]byte{0x82}, field("Owner"), []byte{0xc6}, huge, []byte("ann")),
		"str32 reference":        cat([]byte{0x82}, field("Amount"), []byte{0x01}, field("Reference"), []byte{0xdb}, huge, []byte("r")),
		"str32 key":              cat([]byte{0x81, 0xdb}, huge, []byte("Owner")),
		"ext32 time":             cat([]byte{0x82}, field("At"), []byte{0xc9}, huge, []byte{0xff}),
		"array32 as reason":      cat([]byte{0x81}, field("Reason"), []byte{0xdd}, huge),
		"map32 as a field value": cat([]byte{0x81}, field("Reason"), []byte{0xdf}, huge),
	}
	decoders := map[string]func([]byte) error{
		"Opened": func(b []byte) error {
			_, err := account.AccountEvents().Decode(account.OpenedEventName, account.OpenedSchemaVersion, b)
			return err
		},
		"Deposited": func(b []byte) error {
			_, err := account.AccountEvents().Decode(account.DepositedEventName, account.DepositedSchemaVersion, b)
			return err
		},
		"Withdrawn": func(b []byte) error {
			_, err := account.AccountEvents().Decode(account.WithdrawnEventName, account.WithdrawnSchemaVersion, b)
			return err
		},
		"AccountClosed": func(b []byte) error {
			_, err := account.AccountEvents().Decode(account.AccountClosedEventName, account.AccountClosedSchemaVersion, b)
			return err
		},
	}
	for dname, decode := range decoders {
		for iname, in := range inputs {
			t.Run(dname+"/"+iname, func(t *testing.T) {
				if err := decode(in); err == nil {
					t.Fatalf("decoded %x, whose header claims more than it holds", in)
				}
				if n := allocBytes(50, func() { _ = decode(in) }); n > 4<<10 {
					t.Fatalf("a refused decode allocated %d bytes per call, want at most 4 KiB", n)
				}
			})
		}
	}
}
