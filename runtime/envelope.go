package runtime

import (
	"context"
	"maps"
	"time"
)

// Envelope is a typed event with where and when it was stored.
type Envelope[E any] struct {
	ID       string            // the aggregate id (the stream id)
	Type     string            // the aggregate's stable stream type name
	Version  uint64            // the event's version within its stream (1-based)
	Position uint64            // the event's global position in the store
	EventID  EventID           // unique, time-sortable (Record.EventID); zero for old events
	Time     time.Time         // when the event was appended (UTC)
	Name     string            // the event's stable wire name as stored
	Schema   uint32            // the schema version it was stored with (before upcasting)
	Event    E                 // the decoded event, always a value of its current type
	Metadata map[string]string // free-form metadata; nil when it has none
}

type metadataKey struct{}

// ContextWithMetadata returns a context whose appends (Append, Execute) attach
// md to every event; later calls add to, and override, earlier ones.
func ContextWithMetadata(ctx context.Context, md map[string]string) context.Context {
	merged := maps.Clone(MetadataFromContext(ctx))
	if merged == nil {
		merged = make(map[string]string, len(md))
	}
	maps.Copy(merged, md)
	return context.WithValue(ctx, metadataKey{}, merged)
}

// MetadataFromContext returns the metadata set by ContextWithMetadata, or
// nil. The map must not be modified.
func MetadataFromContext(ctx context.Context) map[string]string {
	md, _ := ctx.Value(metadataKey{}).(map[string]string)
	return md
}
