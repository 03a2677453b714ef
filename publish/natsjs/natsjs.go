// Package natsjs publishes a store's events to NATS JetStream, each event
// once on the broker and in position order, through a projection: a crash of
// the publishing process, at any moment, neither loses an event nor stores
// one twice nor reorders them.
//
//	pub, err := natsjs.New(js, store, natsjs.Config{Subject: "bank"})
//	group := projection.NewGroup(store)
//	group.Add(pub.Projection())
//	go group.Run(ctx)
//
// # What a message holds
//
// Each event becomes one message on the subject <Subject>.<stream
// type>.<event name> (each token escaped, see Token), its body the event's
// encoded bytes as stored, and these headers:
//
//	Nats-Msg-Id       the message id (see Config.MsgID; by default the event id): JetStream's
//	                  duplicate window drops a resend
//	Cqrs-Event-Id     the event id (runtime.Record.EventID), unless the event has none
//	Cqrs-Stream-Type  the stream type, Cqrs-Stream-Id the stream id (both URL path-escaped)
//	Cqrs-Version      the event's version in its stream
//	Cqrs-Position     its global position in the store
//	Cqrs-Event        its wire name (URL path-escaped), Cqrs-Schema its schema version
//	Cqrs-Time         when it was appended, RFC 3339 with nanoseconds, UTC
//	Cqrs-Metadata     its metadata as a JSON object, when it has any
//	traceparent       the W3C trace context the event was written under (its metadata's
//	tracestate        "traceparent" and "tracestate", see trace/otelcqrs), when it has one, so
//	                  a consumer's OpenTelemetry propagator continues the writer's trace
//
// # Exactly once, in order
//
// The publisher sends one message at a time and waits for JetStream's
// acknowledgement before the next, so the broker stores them in position
// order. Its projection runs in exactly-once mode: where to resume is read
// from the broker itself, the Cqrs-Position of the last message stored on
// the publisher's subjects, so a publisher killed between a message being
// stored and anything else resumes after it. The duplicate window covers the
// one case left, a message stored whose acknowledgement was lost, resent
// within the same run.
//
// The broker stream must be the publisher's own: no other publisher may
// write to its subjects. When the broker's retention has removed every
// message, the publisher resumes from a floor it saves in the store every
// Config.FloorEvery messages (at most that many are then sent again, and
// dropped by the duplicate window when it still covers them).
package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Header names set on every message.
const (
	HeaderStreamType = "Cqrs-Stream-Type"
	HeaderStreamID   = "Cqrs-Stream-Id"
	HeaderVersion    = "Cqrs-Version"
	HeaderPosition   = "Cqrs-Position"
	HeaderEvent      = "Cqrs-Event"
	HeaderSchema     = "Cqrs-Schema"
	HeaderTime       = "Cqrs-Time"
	HeaderMetadata   = "Cqrs-Metadata"
	// HeaderEventID is set only on events that have an id (events stored
	// before event ids existed have none).
	HeaderEventID = "Cqrs-Event-Id"
)

// Defaults of Config.
const (
	DefaultName       = "natsjs"
	DefaultSubject    = "cqrs"
	DefaultFloorEvery = 1000
)

// Config says what to publish where. The zero value publishes every event
// of the store on subjects under "cqrs".
type Config struct {
	// Name is the projection's name (default DefaultName); the floor is
	// saved in the store as checkpoint Name + ".floor".
	Name string
	// Subject is the subject prefix (default DefaultSubject): one or more
	// subject tokens, without wildcards.
	Subject string
	// StreamTypes, when set, limits publishing to these stream types.
	StreamTypes []string
	// Events, when set, limits publishing to these event wire names.
	Events []string
	// MsgID returns a record's message id. The default is DefaultMsgID:
	// the event id, unique and stable across resends.
	MsgID func(rec runtime.Record) string
	// FloorEvery is how many messages pass between saves of the floor
	// (default DefaultFloorEvery; see the package doc).
	FloorEvery int
}

// Publisher publishes a store's events through its Projection.
type Publisher struct {
	js    jetstream.JetStream
	store runtime.Store
	cfg   Config
	types map[string]bool
	floor string

	mu     sync.Mutex
	stream string // the broker stream bound to the subjects, found by position

	published atomic.Uint64
}

// New returns a publisher of store's events to js. The broker stream that
// receives them must exist and be bound to Config.Subject + ".>".
func New(js jetstream.JetStream, store runtime.Store, cfg Config) (*Publisher, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.Subject == "" {
		cfg.Subject = DefaultSubject
	}
	if cfg.FloorEvery <= 0 {
		cfg.FloorEvery = DefaultFloorEvery
	}
	if strings.ContainsAny(cfg.Subject, "*> \t\r\n") || strings.HasPrefix(cfg.Subject, ".") ||
		strings.HasSuffix(cfg.Subject, ".") || strings.Contains(cfg.Subject, "..") {
		return nil, fmt.Errorf("%w: natsjs: subject prefix %q is not a literal subject", runtime.ErrInvalid, cfg.Subject)
	}
	if err := runtime.ValidateKey("natsjs checkpoint name", cfg.Name+".floor"); err != nil {
		return nil, err
	}
	if js == nil || store == nil {
		return nil, fmt.Errorf("%w: natsjs: New needs a JetStream context and a store", runtime.ErrInvalid)
	}
	if cfg.MsgID == nil {
		name := cfg.Name
		cfg.MsgID = func(rec runtime.Record) string { return DefaultMsgID(name, rec) }
	}
	p := &Publisher{js: js, store: store, cfg: cfg, floor: cfg.Name + ".floor"}
	if len(cfg.StreamTypes) > 0 {
		p.types = make(map[string]bool, len(cfg.StreamTypes))
		for _, t := range cfg.StreamTypes {
			p.types[t] = true
		}
	}
	return p, nil
}

// DefaultMsgID is the message id a publisher named name gives rec by
// default: its event id, or, for an event stored before event ids existed
// (zero id), name, ":" and its position, which is as unique per store and
// as stable across resends.
func DefaultMsgID(name string, rec runtime.Record) string {
	if !rec.EventID.IsZero() {
		return rec.EventID.String()
	}
	return name + ":" + strconv.FormatUint(rec.Position, 10)
}

// Published returns how many messages this publisher has had acknowledged.
func (p *Publisher) Published() uint64 { return p.published.Load() }

// Projection returns the projection that publishes: add it to a
// projection.Group over the store given to New. It runs in
// exactly-once mode (see the package doc) and has no Reset: a rebuild would
// publish every event again.
func (p *Publisher) Projection() projection.Projection {
	return projection.Projection{
		Name:     p.cfg.Name,
		Events:   p.cfg.Events,
		Handle:   p.handle,
		Position: p.position,
	}
}

// Token escapes s for use as one subject token: letters, digits, '_' and
// '-' stay, every other byte becomes %XX.
func Token(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	if b.Len() == 0 {
		return "%"
	}
	return b.String()
}

// traceHeaders are the metadata keys of W3C trace context, copied to
// headers of the same names.
var traceHeaders = []string{"traceparent", "tracestate"}

// Message returns the message that publishes rec on the subjects under
// prefix, with its message id.
func Message(prefix string, rec runtime.Record, msgID string) (*nats.Msg, error) {
	m := nats.NewMsg(prefix + "." + Token(rec.Stream.Type) + "." + Token(rec.Name))
	m.Data = rec.Data
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	m.Header.Set(HeaderStreamType, url.PathEscape(rec.Stream.Type))
	m.Header.Set(HeaderStreamID, url.PathEscape(rec.Stream.ID))
	m.Header.Set(HeaderVersion, strconv.FormatUint(rec.Version, 10))
	m.Header.Set(HeaderPosition, strconv.FormatUint(rec.Position, 10))
	m.Header.Set(HeaderEvent, url.PathEscape(rec.Name))
	m.Header.Set(HeaderSchema, strconv.FormatUint(uint64(rec.Schema), 10))
	m.Header.Set(HeaderTime, rec.Time.UTC().Format(time.RFC3339Nano))
	if !rec.EventID.IsZero() {
		m.Header.Set(HeaderEventID, rec.EventID.String())
	}
	if len(rec.Metadata) > 0 {
		md, err := json.Marshal(rec.Metadata)
		if err != nil {
			return nil, err
		}
		m.Header.Set(HeaderMetadata, string(md))
		for _, k := range traceHeaders {
			if v := rec.Metadata[k]; v != "" {
				m.Header.Set(k, v)
			}
		}
	}
	return m, nil
}

func (p *Publisher) handle(ctx context.Context, rec runtime.Record) error {
	if p.types != nil && !p.types[rec.Stream.Type] {
		return nil
	}
	msg, err := Message(p.cfg.Subject, rec, p.cfg.MsgID(rec))
	if err != nil {
		return fmt.Errorf("natsjs: event at position %d: %w", rec.Position, err)
	}
	var opts []jetstream.PublishOpt
	p.mu.Lock()
	if p.stream != "" {
		opts = append(opts, jetstream.WithExpectStream(p.stream))
	}
	p.mu.Unlock()
	if _, err := p.js.PublishMsg(ctx, msg, opts...); err != nil {
		return fmt.Errorf("natsjs: publishing %s version %d (position %d): %w", rec.Stream, rec.Version, rec.Position, err)
	}
	if n := p.published.Add(1); n%uint64(p.cfg.FloorEvery) == 0 {
		if err := p.store.SaveCheckpoint(ctx, p.floor, rec.Position); err != nil {
			return fmt.Errorf("natsjs: saving the floor at position %d: %w", rec.Position, err)
		}
	}
	return nil
}

// position returns the Cqrs-Position of the last message stored on the
// publisher's subjects, or the floor when there is none.
func (p *Publisher) position(ctx context.Context) (uint64, error) {
	floor, err := p.store.LoadCheckpoint(ctx, p.floor)
	if err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return 0, fmt.Errorf("natsjs: loading the floor: %w", err)
	}
	all := p.cfg.Subject + ".>"
	name, err := p.js.StreamNameBySubject(ctx, all)
	if err != nil {
		return 0, fmt.Errorf("natsjs: finding the stream bound to %q: %w", all, err)
	}
	p.mu.Lock()
	p.stream = name
	p.mu.Unlock()
	s, err := p.js.Stream(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("natsjs: stream %q: %w", name, err)
	}
	last, err := s.GetLastMsgForSubject(ctx, all)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return floor, nil
	}
	if err != nil {
		return 0, fmt.Errorf("natsjs: last message of stream %q on %q: %w", name, all, err)
	}
	pos, err := strconv.ParseUint(last.Header.Get(HeaderPosition), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("natsjs: message %d of stream %q has no valid %s header: %w", last.Sequence, name, HeaderPosition, err)
	}
	return max(pos, floor), nil
}
