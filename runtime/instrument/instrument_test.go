package instrument_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/instrument"
)

// recorder is a Metrics that keeps every call.
type recorder struct {
	mu    sync.Mutex
	calls []instrument.Call
}

func (r *recorder) ObserveCall(c instrument.Call) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

func (r *recorder) take() []instrument.Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// stepClock advances by one millisecond on every reading.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

var acct = runtime.StreamID{Type: "account", ID: "a1"}

func ev(name string) runtime.EventData {
	return runtime.EventData{Name: name, Schema: 1, Data: []byte{0x80}}
}

func TestInstrumentReportsEveryCall(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	clock := &stepClock{}
	s := instrument.New(memory.New(), rec, instrument.WithClock(clock.now))
	if _, ok := s.Unwrap().(*memory.Store); !ok {
		t.Fatalf("Unwrap = %T, want *memory.Store", s.Unwrap())
	}
	other := runtime.StreamID{Type: "order", ID: "o1"}

	type want struct {
		op      instrument.Op
		typ     string
		records int
		outcome instrument.Outcome
	}
	tests := []struct {
		name string
		call func() error
		want want
	}{
		{"append", func() error {
			_, err := s.Append(ctx, runtime.AppendRequest{Stream: acct, Events: []runtime.EventData{ev("Opened"), ev("Deposited")}})
			return err
		}, want{instrument.OpAppend, "account", 2, instrument.OutcomeOK}},
		{"conflict", func() error {
			_, err := s.Append(ctx, runtime.AppendRequest{Stream: acct, Expected: 1, Events: []runtime.EventData{ev("X")}})
			if !errors.Is(err, runtime.ErrConflict) {
				return fmt.Errorf("want conflict, got %v", err)
			}
			return nil
		}, want{instrument.OpAppend, "account", 0, instrument.OutcomeConflict}},
		{"invalid", func() error {
			_, err := s.Append(ctx, runtime.AppendRequest{Stream: acct})
			if !errors.Is(err, runtime.ErrInvalid) {
				return fmt.Errorf("want invalid, got %v", err)
			}
			return nil
		}, want{instrument.OpAppend, "account", 0, instrument.OutcomeInvalid}},
		{"duplicate", func() error {
			req := runtime.AppendRequest{Stream: other, Expected: runtime.AnyVersion, Events: []runtime.EventData{ev("Placed")}, IdempotencyKey: "k"}
			if _, err := s.Append(ctx, req); err != nil {
				return err
			}
			rec.take()
			_, err := s.Append(ctx, req)
			if !errors.Is(err, runtime.ErrDuplicate) {
				return fmt.Errorf("want duplicate, got %v", err)
			}
			return nil
		}, want{instrument.OpAppend, "order", 0, instrument.OutcomeDuplicate}},
		{"read stream", func() error {
			n := 0
			for _, err := range s.ReadStream(ctx, acct, 0) {
				if err != nil {
					return err
				}
				n++
			}
			if n != 2 {
				return fmt.Errorf("read %d records", n)
			}
			return nil
		}, want{instrument.OpReadStream, "account", 2, instrument.OutcomeOK}},
		{"read all, stopped early", func() error {
			for range s.ReadAll(ctx, 0) {
				break
			}
			return nil
		}, want{instrument.OpReadAll, "", 1, instrument.OutcomeOK}},
		{"stream version", func() error { _, err := s.StreamVersion(ctx, acct); return err },
			want{instrument.OpStreamVersion, "account", 0, instrument.OutcomeOK}},
		{"head", func() error { _, err := s.Head(ctx); return err }, want{instrument.OpHead, "", 0, instrument.OutcomeOK}},
		{"wait", func() error { _, err := s.Wait(ctx, 0); return err }, want{instrument.OpWait, "", 0, instrument.OutcomeOK}},
		{"wait canceled", func() error {
			c, cancel := context.WithCancel(ctx)
			cancel()
			_, err := s.Wait(c, 100)
			if err == nil {
				return errors.New("wait on a canceled context succeeded")
			}
			return nil
		}, want{instrument.OpWait, "", 0, instrument.OutcomeCanceled}},
		{"load missing snapshot", func() error {
			_, err := s.LoadSnapshot(ctx, acct)
			if !errors.Is(err, runtime.ErrNotFound) {
				return fmt.Errorf("want not found, got %v", err)
			}
			return nil
		}, want{instrument.OpLoadSnapshot, "account", 0, instrument.OutcomeNotFound}},
		{"save snapshot", func() error {
			return s.SaveSnapshot(ctx, runtime.Snapshot{Stream: acct, Version: 2, Schema: "h", Data: []byte{1}})
		}, want{instrument.OpSaveSnapshot, "account", 0, instrument.OutcomeOK}},
		{"save checkpoint", func() error { return s.SaveCheckpoint(ctx, "p", 1) },
			want{instrument.OpSaveCheckpoint, "", 0, instrument.OutcomeOK}},
		{"load checkpoint", func() error { _, err := s.LoadCheckpoint(ctx, "p"); return err },
			want{instrument.OpLoadCheckpoint, "", 0, instrument.OutcomeOK}},
		{"save idempotency", func() error {
			return s.SaveIdempotency(ctx, runtime.IdempotencyRecord{Key: "k2", Stream: acct, Version: 2})
		}, want{instrument.OpSaveIdempotency, "account", 0, instrument.OutcomeOK}},
		{"load idempotency", func() error { _, err := s.LoadIdempotency(ctx, "k2"); return err },
			want{instrument.OpLoadIdempotency, "", 0, instrument.OutcomeOK}},
		{"stats", func() error { _, err := s.Stats(ctx); return err }, want{instrument.OpStats, "", 0, instrument.OutcomeOK}},
		{"flush", func() error { return s.Flush(ctx) }, want{instrument.OpFlush, "", 0, instrument.OutcomeOK}},
		{"close", func() error { return s.Close() }, want{instrument.OpClose, "", 0, instrument.OutcomeOK}},
		{"after close", func() error {
			_, err := s.Head(ctx)
			if !errors.Is(err, runtime.ErrClosed) {
				return fmt.Errorf("want closed, got %v", err)
			}
			return nil
		}, want{instrument.OpHead, "", 0, instrument.OutcomeClosed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.take()
			if err := tt.call(); err != nil {
				t.Fatal(err)
			}
			calls := rec.take()
			if len(calls) != 1 {
				t.Fatalf("%d calls reported, want 1: %+v", len(calls), calls)
			}
			c := calls[0]
			got := want{c.Op, c.StreamType, c.Records, c.Outcome}
			if got != tt.want {
				t.Errorf("reported %+v, want %+v", got, tt.want)
			}
			if (c.Err == nil) != (c.Outcome == instrument.OutcomeOK) {
				t.Errorf("Err %v with outcome %s", c.Err, c.Outcome)
			}
			if c.Duration <= 0 {
				t.Errorf("duration %v, want > 0 on a clock that always advances", c.Duration)
			}
		})
	}
}

// TestInstrumentExcludesConsumerTime: the reported read duration is the
// store's time, not the time the loop body spent.
func TestInstrumentExcludesConsumerTime(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	clock := &stepClock{}
	s := instrument.New(memory.New(), rec, instrument.WithClock(clock.now))
	for i := range 5 {
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: acct, Expected: uint64(i), Events: []runtime.EventData{ev("E")}}); err != nil {
			t.Fatal(err)
		}
	}
	rec.take()
	for _, err := range s.ReadAll(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		for range 100 { // the consumer reads the clock a lot: 100 ms of "work"
			clock.now()
		}
	}
	calls := rec.take()
	if len(calls) != 1 || calls[0].Records != 5 {
		t.Fatalf("calls %+v", calls)
	}
	// The store's share: one clock step between resuming and each record
	// (6 resumptions incl. the end), far below the 500 ms the body spent.
	if d := calls[0].Duration; d > 10*time.Millisecond {
		t.Errorf("read duration %v includes the consumer's time", d)
	}
}

func TestOutcomeOf(t *testing.T) {
	tests := []struct {
		err  error
		want instrument.Outcome
	}{
		{nil, instrument.OutcomeOK},
		{fmt.Errorf("wrapped: %w", &runtime.ConflictError{Stream: acct}), instrument.OutcomeConflict},
		{&runtime.DuplicateError{}, instrument.OutcomeDuplicate},
		{fmt.Errorf("x: %w", runtime.ErrNotFound), instrument.OutcomeNotFound},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), instrument.OutcomeCanceled},
		{fmt.Errorf("x: %w", context.Canceled), instrument.OutcomeCanceled},
		{runtime.ErrTooLarge, instrument.OutcomeInvalid},
		{runtime.ErrInvalid, instrument.OutcomeInvalid},
		{&runtime.DecodeError{Err: errors.New("bad")}, instrument.OutcomeCorrupt},
		{runtime.ErrClosed, instrument.OutcomeClosed},
		{errors.New("disk on fire"), instrument.OutcomeError},
	}
	for _, tt := range tests {
		if got := instrument.OutcomeOf(tt.err); got != tt.want {
			t.Errorf("OutcomeOf(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

// corruptStore fails every read stream with a decode error.
type corruptStore struct{ runtime.Store }

func (c corruptStore) ReadStream(ctx context.Context, s runtime.StreamID, after uint64) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) {
		yield(runtime.Record{}, &runtime.DecodeError{Stream: s, Version: 3, What: "envelope", Err: errors.New("checksum mismatch")})
	}
}

func TestInstrumentLogging(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		level slog.Level
		slow  time.Duration
		call  func(s runtime.Store)
		want  []string // substrings of the log, in order; none means silent
	}{
		{"silent on success", slog.LevelDebug, 0, func(s runtime.Store) {
			if _, err := s.Append(ctx, runtime.AppendRequest{Stream: acct, Expected: 1, Events: []runtime.EventData{ev("E")}}); err != nil {
				t.Error(err)
			}
		}, nil},
		{"conflict at debug", slog.LevelDebug, 0, func(s runtime.Store) {
			_, _ = s.Append(ctx, runtime.AppendRequest{Stream: acct, Expected: 7, Events: []runtime.EventData{ev("E")}})
		}, []string{"level=DEBUG", "op=append", `stream="account/\"a1\""`, "outcome=conflict", "expected 7"}},
		{"conflict hidden at info", slog.LevelInfo, 0, func(s runtime.Store) {
			_, _ = s.Append(ctx, runtime.AppendRequest{Stream: acct, Expected: 7, Events: []runtime.EventData{ev("E")}})
		}, nil},
		{"slow call at warn", slog.LevelInfo, time.Nanosecond, func(s runtime.Store) {
			_, _ = s.Head(ctx)
		}, []string{"level=WARN", "slow", "op=head", "outcome=ok"}},
		{"slow snapshot miss is slow, not failed", slog.LevelInfo, time.Nanosecond, func(s runtime.Store) {
			if _, err := s.LoadSnapshot(ctx, acct); !errors.Is(err, runtime.ErrNotFound) {
				t.Errorf("LoadSnapshot: %v, want ErrNotFound", err)
			}
		}, []string{"level=WARN", "msg=\"cqrsgen store call slow\"", "op=load_snapshot", "outcome=not_found"}},
		{"snapshot miss is silent", slog.LevelDebug, 0, func(s runtime.Store) {
			_, _ = s.LoadSnapshot(ctx, acct)
		}, nil},
		{"slow wait is not logged", slog.LevelInfo, time.Nanosecond, func(s runtime.Store) {
			_, _ = s.Wait(ctx, 0)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.level}))
			clock := &stepClock{}
			mem := memory.New()
			if _, err := mem.Append(ctx, runtime.AppendRequest{Stream: acct, Events: []runtime.EventData{ev("E")}}); err != nil {
				t.Fatal(err)
			}
			s := instrument.New(mem, nil, instrument.WithLogger(l), instrument.WithSlowCall(tt.slow), instrument.WithClock(clock.now))
			tt.call(s)
			out := buf.String()
			if strings.Contains(out, "failed") && strings.Contains(out, "outcome=not_found") {
				t.Errorf("a not-found answer logged as a failure: %q", out)
			}
			if len(tt.want) == 0 && out != "" {
				t.Fatalf("logged %q, want nothing", out)
			}
			rest := out
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("log %q lacks %q", out, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestInstrumentCorruptLogged: a corrupt record met through the wrapper is
// logged at error level with the stream and the cause.
func TestInstrumentCorruptLogged(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, nil))
	rec := &recorder{}
	s := instrument.New(corruptStore{memory.New()}, rec, instrument.WithLogger(l))
	n := 0
	for _, err := range s.ReadStream(context.Background(), acct, 0) {
		if !errors.Is(err, runtime.ErrCorrupt) {
			t.Fatalf("err %v", err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("%d results", n)
	}
	out := buf.String()
	for _, w := range []string{"level=ERROR", "op=read_stream", "outcome=corrupt", "checksum mismatch"} {
		if !strings.Contains(out, w) {
			t.Errorf("log %q lacks %q", out, w)
		}
	}
	if c := rec.take(); len(c) != 1 || c[0].Outcome != instrument.OutcomeCorrupt || c[0].Records != 0 {
		t.Errorf("calls %+v", c)
	}
}

// TestInstrumentConcurrent: many goroutines appending to one stream through
// the wrapper; every call is reported exactly once.
func TestInstrumentConcurrent(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	counts := map[instrument.Outcome]int{}
	events := 0
	m := instrument.MetricsFunc(func(c instrument.Call) {
		if c.Op != instrument.OpAppend {
			return
		}
		mu.Lock()
		counts[c.Outcome]++
		events += c.Records
		mu.Unlock()
	})
	s := instrument.New(memory.New(), m)
	const writers, each = 16, 20
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				for {
					v, err := s.StreamVersion(ctx, acct)
					if err != nil {
						t.Error(err)
						return
					}
					_, err = s.Append(ctx, runtime.AppendRequest{Stream: acct, Expected: v, Events: []runtime.EventData{ev("E")}})
					if err == nil {
						break
					}
					if !errors.Is(err, runtime.ErrConflict) {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if counts[instrument.OutcomeOK] != writers*each || events != writers*each {
		t.Errorf("ok appends %d, events %d, want %d", counts[instrument.OutcomeOK], events, writers*each)
	}
	v, _ := s.StreamVersion(ctx, acct)
	if v != writers*each {
		t.Errorf("version %d", v)
	}
	t.Logf("conflicts reported: %d", counts[instrument.OutcomeConflict])
}
