package runtime

import (
	"context"
	"maps"
	"time"
)

// Envelope is a typed event with where and when it was stored.
type Envelope[E any] struct {
	// ID is the aggregate id (the stream id).
	ID string
	// Type is the aggregate's stable stream type name.
	Type string
	// Version is the event's version within its stream (1-based).
	Version uint64
	// Position is the event's global position in the store.
	Position uint64
	// EventID is the event's unique, time-sortable id (Record.EventID); zero
	// for events stored before event ids existed.
	EventID EventID
	// Time is when the event was appended (UTC).
	Time time.Time
	// Name is the event's stable wire name as stored.
	Name string
	// Schema is the schema version it was stored with (before upcasting).
	Schema uint32
	// Event is the decoded event, always a value of its current type.
	Event E
	// Metadata is the event's free-form metadata; nil when it has none.
	Metadata map[string]string
}

type metadataKey struct{}

// ContextWithMetadata returns a context whose appends (Repository.Append and
// Repository.Execute) attach md to every event they write. Later calls add
// to, and override, metadata set by earlier ones.
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
