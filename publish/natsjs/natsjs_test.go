package natsjs_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/publish/natsjs"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var kills = flag.Int("natsjs.kills", 4, "how many times TestKilledPublisher kills the publishing process")

// startServer starts an in-process NATS server with JetStream on a
// loopback port and returns a JetStream context connected to it.
func startServer(t *testing.T) (jetstream.JetStream, string) {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(30 * time.Second) {
		t.Fatal("NATS server did not start")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: "EVENTS", Subjects: []string{"bank.>"}, Duplicates: 10 * time.Minute, Storage: jetstream.FileStorage,
	}); err != nil {
		t.Fatal(err)
	}
	return js, ns.ClientURL()
}

// appendEvents appends n events over a few streams, some with metadata
// and ids that need escaping.
func appendEvents(t *testing.T, s runtime.Store, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		e := runtime.EventData{Name: "Deposited", Schema: 1, Data: []byte(strconv.Itoa(i))}
		if i%3 == 0 {
			e.Metadata = map[string]string{"user": "ü\n" + strconv.Itoa(i)}
		}
		if _, err := s.Append(context.Background(), runtime.AppendRequest{
			Stream:   runtime.StreamID{Type: "account", ID: fmt.Sprintf("acc %d.x", i%7)},
			Expected: runtime.AnyVersion, Events: []runtime.EventData{e},
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// published reads every message of the broker stream, in stream order.
func published(t *testing.T, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(t.Context(), "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("GetMsg(%d): %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// checkPublished checks that msgs are the store's records, each once, in
// position order, with their headers.
func checkPublished(t *testing.T, s runtime.Store, msgs []*jetstream.RawStreamMsg) {
	t.Helper()
	var recs []runtime.Record
	for rec, err := range s.ReadAll(t.Context(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	if len(msgs) != len(recs) {
		t.Fatalf("broker holds %d messages, store %d events", len(msgs), len(recs))
	}
	for i, m := range msgs {
		rec := recs[i]
		id, _ := url.PathUnescape(m.Header.Get(natsjs.HeaderStreamID))
		pos, _ := strconv.ParseUint(m.Header.Get(natsjs.HeaderPosition), 10, 64)
		ver, _ := strconv.ParseUint(m.Header.Get(natsjs.HeaderVersion), 10, 64)
		when, _ := time.Parse(time.RFC3339Nano, m.Header.Get(natsjs.HeaderTime))
		if pos != rec.Position || ver != rec.Version || id != rec.Stream.ID || string(m.Data) != string(rec.Data) || !when.Equal(rec.Time) {
			t.Fatalf("message %d: position %d version %d id %q data %q time %v; want the event at position %d (version %d of %s, data %q, time %v)",
				i, pos, ver, id, m.Data, when, rec.Position, rec.Version, rec.Stream, rec.Data, rec.Time)
		}
		if rec.EventID.IsZero() || m.Header.Get(jetstream.MsgIDHeader) != rec.EventID.String() || m.Header.Get(natsjs.HeaderEventID) != rec.EventID.String() {
			t.Fatalf("message %d: message id %q, event id header %q; want the event id %s", i,
				m.Header.Get(jetstream.MsgIDHeader), m.Header.Get(natsjs.HeaderEventID), rec.EventID)
		}
		if want := "bank.account.Deposited"; m.Subject != want {
			t.Fatalf("message %d: subject %q, want %q", i, m.Subject, want)
		}
		var md map[string]string
		if h := m.Header.Get(natsjs.HeaderMetadata); h != "" {
			if err := json.Unmarshal([]byte(h), &md); err != nil {
				t.Fatalf("message %d: metadata header: %v", i, err)
			}
		}
		if len(md) != len(rec.Metadata) || md["user"] != rec.Metadata["user"] {
			t.Fatalf("message %d: metadata %v, want %v", i, md, rec.Metadata)
		}
	}
}

// run publishes everything the store holds, then stops the group.
func run(t *testing.T, js jetstream.JetStream, s runtime.Store) *natsjs.Publisher {
	t.Helper()
	pub, err := natsjs.New(js, s, natsjs.Config{Subject: "bank", FloorEvery: 7})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	group := projection.NewGroup(s)
	if err := group.Add(pub.Projection()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- group.Run(ctx) }()
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := group.WaitFor(ctx, natsjs.DefaultName, head); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestPublishesOnceInOrder(t *testing.T) {
	js, _ := startServer(t)
	s := memory.New()
	defer s.Close()
	appendEvents(t, s, 0, 50)
	if pub := run(t, js, s); pub.Published() != 50 {
		t.Errorf("first run published %d, want 50", pub.Published())
	}
	checkPublished(t, s, published(t, js))
	// A second run resumes after the broker's last message.
	appendEvents(t, s, 50, 20)
	if pub := run(t, js, s); pub.Published() != 20 {
		t.Errorf("second run published %d, want only the 20 new events", pub.Published())
	}
	checkPublished(t, s, published(t, js))
}

func TestFilters(t *testing.T) {
	js, _ := startServer(t)
	s := memory.New()
	defer s.Close()
	appendEvents(t, s, 0, 10)
	if _, err := s.Append(t.Context(), runtime.AppendRequest{Stream: runtime.StreamID{Type: "audit", ID: "1"}, Expected: runtime.AnyVersion,
		Events: []runtime.EventData{{Name: "Deposited"}}}); err != nil {
		t.Fatal(err)
	}
	pub, err := natsjs.New(js, s, natsjs.Config{Subject: "bank", StreamTypes: []string{"account"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	group := projection.NewGroup(s)
	if err := group.Add(pub.Projection()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- group.Run(ctx) }()
	if err := group.WaitFor(ctx, natsjs.DefaultName, 11); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if n := len(published(t, js)); n != 10 || pub.Published() != 10 {
		t.Errorf("published %d (%d messages), want the 10 account events only", pub.Published(), n)
	}
}

func TestBadConfig(t *testing.T) {
	js, _ := startServer(t)
	for _, subj := range []string{"bank.>", "a..b", ".a", "a b"} {
		if _, err := natsjs.New(js, memory.New(), natsjs.Config{Subject: subj}); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("New with subject %q: %v, want ErrInvalid", subj, err)
		}
	}
}

func TestMessageTraceHeaders(t *testing.T) {
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	rec := runtime.Record{Stream: runtime.StreamID{Type: "account", ID: "a1"}, Version: 1, Position: 7, Name: "opened", Schema: 1,
		Metadata: map[string]string{"traceparent": tp, "tracestate": "k=v", runtime.MetadataCorrelation: "req-1"}}
	m, err := natsjs.Message("bank", rec, "id-7")
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("traceparent") != tp || m.Header.Get("tracestate") != "k=v" {
		t.Errorf("headers %v lack the trace context", m.Header)
	}
	rec.Metadata = map[string]string{"user": "ann"}
	if m, err = natsjs.Message("bank", rec, "id-7"); err != nil || m.Header.Get("traceparent") != "" {
		t.Errorf("traceparent %q (err %v) for an event without trace context", m.Header.Get("traceparent"), err)
	}
}

func TestDefaultMsgID(t *testing.T) {
	id := runtime.NewEventID()
	tests := []struct {
		name string
		rec  runtime.Record
		want string
	}{
		{"event id", runtime.Record{EventID: id, Position: 7}, id.String()},
		{"stored before event ids", runtime.Record{Position: 7}, "pub:7"},
	}
	for _, tt := range tests {
		if got := natsjs.DefaultMsgID("pub", tt.rec); got != tt.want {
			t.Errorf("%s: DefaultMsgID = %q, want %q", tt.name, got, tt.want)
		}
		m, err := natsjs.Message("bank", tt.rec, natsjs.DefaultMsgID("pub", tt.rec))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Header.Get(natsjs.HeaderEventID); got != tt.rec.EventID.String() {
			t.Errorf("%s: %s header %q, want %q", tt.name, natsjs.HeaderEventID, got, tt.rec.EventID.String())
		}
	}
}

func TestToken(t *testing.T) {
	for in, want := range map[string]string{"account": "account", "a.b": "a%2Eb", "*": "%2A", ">": "%3E", "": "%", "é": "%C3%A9", "a b": "a%20b"} {
		if got := natsjs.Token(in); got != want {
			t.Errorf("Token(%q) = %q, want %q", in, got, want)
		}
	}
}

// The child process of TestKilledPublisher: publish the Pebble store at
// NATSJS_CHILD_DIR to the server at NATSJS_CHILD_URL until killed or done.
func TestMain(m *testing.M) {
	if dir := os.Getenv("NATSJS_CHILD_DIR"); dir != "" {
		os.Exit(child(dir, os.Getenv("NATSJS_CHILD_URL")))
	}
	os.Exit(m.Run())
}

func child(dir, natsURL string) int {
	ctx := context.Background()
	s, err := pebble.Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer s.Close()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	js, _ := jetstream.New(nc)
	pub, err := natsjs.New(js, s, natsjs.Config{Subject: "bank", FloorEvery: 5})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	group := projection.NewGroup(s)
	if err := group.Add(pub.Projection()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- group.Run(ctx) }()
	head, _ := s.Head(ctx)
	if err := group.WaitFor(ctx, natsjs.DefaultName, head); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestKilledPublisher kills the publishing process with SIGKILL at random
// moments, restarts it, and checks that the broker ends with every event
// once, in position order.
func TestKilledPublisher(t *testing.T) {
	js, natsURL := startServer(t)
	dir := filepath.Join(t.TempDir(), "store")
	s, err := pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	appendEvents(t, s, 0, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "NATSJS_CHILD_DIR="+dir, "NATSJS_CHILD_URL="+natsURL)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	midway := 0
	for i := 0; i < *kills; i++ {
		before := len(published(t, js))
		cmd := start()
		// Kill once the child has published something, at a random moment.
		for len(published(t, js)) == before && len(published(t, js)) < n {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if got := len(published(t, js)); got > before && got < n {
			midway++
		}
	}
	cmd := start()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("last publisher run: %v", err)
	}
	if midway == 0 {
		t.Errorf("no kill of %d landed in the middle of publishing", *kills)
	}
	t.Logf("%d kills, %d in the middle of publishing %d events", *kills, midway, n)
	s, err = pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkPublished(t, s, published(t, js))
}
