package runtime

import (
	"context"
	"maps"
	"strconv"
)

// Reserved metadata keys that the runtime writes: read them (Envelope.Metadata);
// set them only through ContextWithCorrelation, Correlation and Causation.
const (
	// MetadataCorrelation holds the id of the conversation an event belongs to.
	MetadataCorrelation = "cqrs.correlation"
	// MetadataCausation holds the reference (RefOf) of the event that caused this one.
	MetadataCausation = "cqrs.causation"
)

// EventRef returns the reference to the event at a global position, in
// decimal: the reference of events stored without an id (RefOf gives the
// others'). See docs/guide.md, "Correlation and causation".
func EventRef(position uint64) string { return strconv.FormatUint(position, 10) }

// RefOf returns the reference stored under MetadataCausation (and, for an
// event that starts a conversation, MetadataCorrelation) for rec: its event
// id, or its position (EventRef) when it was stored without an id.
func RefOf(rec Record) string {
	if !rec.EventID.IsZero() {
		return rec.EventID.String()
	}
	return EventRef(rec.Position)
}

// ParseEventRef returns the position an EventRef names, and false when ref
// is not a position reference (an event id is not).
func ParseEventRef(ref string) (uint64, bool) {
	p, err := strconv.ParseUint(ref, 10, 64)
	return p, err == nil && p > 0
}

// cause is what a context says about why its appends happen.
type cause struct {
	correlation string // set by ContextWithCorrelation, or derived from the event
	causation   string // set by ContextWithCausation
	event       *Record
}

type causeKey struct{}

func causeOf(ctx context.Context) cause {
	c, _ := ctx.Value(causeKey{}).(*cause)
	if c == nil {
		return cause{}
	}
	return *c
}

// ContextWithCorrelation returns a context whose appends (Append, Execute)
// carry id as correlation id, as do the events projections and sagas write
// because of them.
func ContextWithCorrelation(ctx context.Context, id string) context.Context {
	c := causeOf(ctx)
	c.correlation = id
	return context.WithValue(ctx, causeKey{}, &c)
}

// ContextWithCausation returns a context whose appends carry ref (an
// EventRef, or any reference the caller's system uses) as their causation
// (MetadataCausation).
func ContextWithCausation(ctx context.Context, ref string) context.Context {
	c := causeOf(ctx)
	if c.event != nil {
		c.correlation = c.metadata()[MetadataCorrelation] // keep the event's
	}
	c.causation, c.event = ref, nil
	return context.WithValue(ctx, causeKey{}, &c)
}

// ContextCausedBy returns a context whose appends are caused by rec (causation
// RefOf(rec), correlation rec's or, when it has none, RefOf(rec)). Projection
// and saga runners call it; call it when handling records from Subscribe or ReadAll.
func ContextCausedBy(ctx context.Context, rec Record) context.Context {
	return context.WithValue(ctx, causeKey{}, &cause{event: &rec})
}

// CauseFromContext returns the record that ContextCausedBy made the cause
// of ctx's appends; ok is false when there is none (or when
// ContextWithCausation replaced it).
func CauseFromContext(ctx context.Context) (rec Record, ok bool) {
	if c, _ := ctx.Value(causeKey{}).(*cause); c != nil && c.event != nil {
		return *c.event, true
	}
	return Record{}, false
}

// CorrelationFromContext returns the correlation id appends under ctx
// carry, or "".
func CorrelationFromContext(ctx context.Context) string {
	return causeOf(ctx).metadata()[MetadataCorrelation]
}

// CausationFromContext returns the causation appends under ctx carry, or
// "".
func CausationFromContext(ctx context.Context) string {
	return causeOf(ctx).metadata()[MetadataCausation]
}

// metadata returns the keys c contributes to an event's metadata, nil when
// none.
func (c cause) metadata() map[string]string {
	var md map[string]string
	set := func(k, v string) {
		if v == "" {
			return
		}
		if md == nil {
			md = make(map[string]string, 2)
		}
		md[k] = v
	}
	corr, caus := c.correlation, c.causation
	if e := c.event; e != nil {
		ref := RefOf(*e)
		caus = ref
		if corr == "" {
			corr = e.Metadata[MetadataCorrelation]
		}
		if corr == "" {
			corr = ref
		}
	}
	set(MetadataCorrelation, corr)
	set(MetadataCausation, caus)
	return md
}

// Correlation sets the correlation id of the events one Execute appends,
// over any from the context (see ContextWithCorrelation).
func Correlation(id string) ExecOption {
	return Metadata(map[string]string{MetadataCorrelation: id})
}

// Causation sets the causation of the events one Execute appends, over
// any from the context (see ContextWithCausation).
func Causation(ref string) ExecOption {
	return Metadata(map[string]string{MetadataCausation: ref})
}

// eventMetadata returns the metadata of the events an append under ctx
// writes: the context's cause, then ContextWithMetadata's keys, then the
// call's own (each overriding the one before). The result may be shared
// with the context and must not be modified; nil when there is none.
func eventMetadata(ctx context.Context, call map[string]string) map[string]string {
	md := MetadataFromContext(ctx)
	c, _ := ctx.Value(causeKey{}).(*cause)
	if c == nil && len(call) == 0 {
		return md
	}
	var out map[string]string
	if c != nil {
		out = c.metadata()
	}
	if len(md) > 0 || len(call) > 0 {
		if out == nil {
			out = make(map[string]string, len(md)+len(call))
		}
		maps.Copy(out, md)
		maps.Copy(out, call)
	}
	return out
}
