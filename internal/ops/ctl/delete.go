package ctl

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/tenant"
)

// deleteJSON is what delete prints: the plan of a dry run or the result.
type deleteJSON struct {
	Stream          streamJSON     `json:"stream"`
	Tenant          string         `json:"tenant,omitempty"`
	Mode            string         `json:"mode"`
	DryRun          bool           `json:"dry_run"`
	Already         bool           `json:"already_deleted"`
	Events          uint64         `json:"events"`
	Snapshot        bool           `json:"snapshot"`
	IdempotencyKeys uint64         `json:"idempotency_keys"`
	Bytes           int64          `json:"bytes,omitempty"`
	Tombstone       *tombstoneJSON `json:"tombstone,omitempty"`
}

// tombstoneJSON is a tombstone record's content, as delete, events, tail
// and export print it.
type tombstoneJSON struct {
	Mode     string `json:"mode"`
	Version  uint64 `json:"version"`
	Position uint64 `json:"position,omitempty"`
	Time     string `json:"time,omitempty"`
	Events   uint64 `json:"events"`
	Removed  uint64 `json:"removed"`
}

func tombstoneToJSON(t runtime.Tombstone) *tombstoneJSON {
	j := &tombstoneJSON{Mode: t.Mode.String(), Version: t.Version, Position: t.Position, Events: t.Events, Removed: t.Removed}
	if !t.Time.IsZero() {
		j.Time = t.Time.UTC().Format(time.RFC3339Nano)
	}
	return j
}

// parseStream reads TYPE/ID, split at the first slash.
func parseStream(s string) (runtime.StreamID, error) {
	typ, id, ok := strings.Cut(s, "/")
	if !ok {
		return runtime.StreamID{}, usagef("delete: -stream %q: want TYPE/ID (use -type and -id when the type holds a slash)", s)
	}
	return runtime.StreamID{Type: typ, ID: id}, nil
}

func (c *command) deleteStream(ctx context.Context, fs *flag.FlagSet, args []string) error {
	streamFlag := fs.String("stream", "", "the stream to delete, as `TYPE/ID` (split at the first slash)")
	typ := fs.String("type", "", "the stream's `type` (with -id, instead of -stream)")
	id := fs.String("id", "", "the stream's `id` (with -type, instead of -stream)")
	tenantName := fs.String("tenant", "", "delete the stream of tenant `name` (runtime/tenant)")
	hard := fs.Bool("hard", false, "hard delete: remove the events, snapshot, index and idempotency keys (default: soft)")
	dryRun := fs.Bool("dry-run", false, "print what would be deleted and change nothing, even with -yes")
	yes := fs.Bool("yes", false, "delete (without it, delete is a dry run)")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	var stream runtime.StreamID
	switch {
	case *streamFlag != "" && (*typ != "" || *id != ""):
		return usagef("delete: give -stream TYPE/ID or -type and -id, not both")
	case *streamFlag != "":
		var err error
		if stream, err = parseStream(*streamFlag); err != nil {
			return err
		}
	case *typ != "" || *id != "":
		stream = runtime.StreamID{Type: *typ, ID: *id}
	default:
		return usagef("delete: name the stream with -stream TYPE/ID")
	}
	if err := runtime.ValidateStream(stream); err != nil {
		return usagef("delete: %v", err)
	}
	mode := runtime.SoftDelete
	if *hard {
		mode = runtime.HardDelete
	}
	if *tenantName != "" {
		if err := tenant.ValidateName(*tenantName); err != nil {
			return usagef("delete: %v", err)
		}
	}
	dry := *dryRun || !*yes
	return c.withStore(ctx, false, false, func(t *target) error {
		var store runtime.Store = t.Store
		if *tenantName != "" {
			view, err := tenant.Scope(t.Store, *tenantName)
			if err != nil {
				return err
			}
			defer view.Close()
			store = view
		}
		var res lifecycle.DeleteResult
		var err error
		if dry {
			res, err = lifecycle.PlanDelete(ctx, store, stream, mode)
		} else {
			res, err = lifecycle.DeleteStream(ctx, store, stream, mode)
		}
		if err != nil {
			return fmt.Errorf("delete %s: %w", stream, err)
		}
		out := deleteJSON{Stream: streamJSON{Type: stream.Type, ID: stream.ID}, Tenant: *tenantName, Mode: mode.String(),
			DryRun: dry, Already: res.Already, Events: res.Events, Snapshot: res.Snapshot, IdempotencyKeys: res.IdempotencyKeys,
			Bytes: res.Bytes, Tombstone: tombstoneToJSON(res.Tombstone)}
		if err := writeIndented(c.env.Stdout, out); err != nil {
			return err
		}
		what := fmt.Sprintf("%d events", res.Events)
		if mode == runtime.HardDelete {
			what += fmt.Sprintf(", %s, %d idempotency keys", map[bool]string{true: "its snapshot", false: "no snapshot"}[res.Snapshot], res.IdempotencyKeys)
		}
		switch {
		case res.Already:
			fmt.Fprintf(c.env.Stderr, "delete: %s is already %s-deleted (position %d): nothing to do\n", stream, res.Tombstone.Mode, res.Tombstone.Position)
		case dry && mode == runtime.HardDelete:
			fmt.Fprintf(c.env.Stderr, "delete: dry run: would hard-delete %s, removing %s; run again with -yes to delete\n", stream, what)
		case dry:
			fmt.Fprintf(c.env.Stderr, "delete: dry run: would soft-delete %s, hiding %s (kept in the log); run again with -yes to delete\n", stream, what)
		default:
			fmt.Fprintf(c.env.Stderr, "delete: %s-deleted %s (%s); tombstone at position %d\n", mode, stream, what, res.Tombstone.Position)
		}
		return nil
	})
}
