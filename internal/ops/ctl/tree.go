package ctl

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// treeJSON is one event of a correlation tree as tree prints it: the event
// as events prints it, its depth and the position of its parent (0 for a
// root).
type treeJSON struct {
	eventJSON
	Depth  int    `json:"depth"`
	Parent uint64 `json:"parent"`
}

// tree prints every event of one correlation, as a tree by causation:
// depth-first, each event before the events it caused, siblings in
// position order. The correlation id's own event (when the id is an event
// reference, as for conversations started without one) is the root.
func (c *command) tree(ctx context.Context, fs *flag.FlagSet, args []string) error {
	text := fs.Bool("text", false, "print an indented line per event instead of JSON")
	raw := fs.Bool("raw", false, "add each event's stored bytes (base64) as \"raw\" (JSON only)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] == "" {
		return usagef("tree wants one CORRELATION-ID, got %d arguments", len(pos))
	}
	id := pos[0]
	return c.withStore(ctx, false, false, func(t *target) error {
		// One pass over the log: correlation ids are not indexed.
		var recs []runtime.Record
		for rec, err := range t.ReadAll(ctx, 0) {
			if err != nil {
				return err
			}
			if rec.Metadata[runtime.MetadataCorrelation] == id || runtime.RefOf(rec) == id || runtime.EventRef(rec.Position) == id {
				recs = append(recs, rec)
			}
		}
		if len(recs) == 0 {
			return fmt.Errorf("no event has correlation id %q", id)
		}
		// An event is referred to by its id, or by its position when it
		// was stored without one (runtime.RefOf).
		in := make(map[string]uint64, 2*len(recs))
		for _, r := range recs {
			in[runtime.RefOf(r)] = r.Position
			in[runtime.EventRef(r.Position)] = r.Position
		}
		children := map[uint64][]runtime.Record{} // by the parent's position; 0: roots
		for _, r := range recs {
			parent, ok := in[r.Metadata[runtime.MetadataCausation]]
			if !ok || parent >= r.Position {
				parent = 0 // caused from outside the tree, or by nothing
			}
			children[parent] = append(children[parent], r)
		}
		out := newLineWriter(c.env.Stdout)
		var walk func(parent uint64, depth int) error
		walk = func(parent uint64, depth int) error {
			for _, r := range children[parent] {
				var err error
				if *text {
					_, err = fmt.Fprintf(out.w, "%s%d %s/%q v%d %s\n", strings.Repeat("  ", depth), r.Position, r.Stream.Type, r.Stream.ID, r.Version, r.Name)
				} else {
					err = out.write(treeJSON{eventJSON: toJSON(r, *raw), Depth: depth, Parent: parent})
				}
				if err != nil {
					return err
				}
				if err := walk(r.Position, depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		if err := walk(0, 0); err != nil {
			return err
		}
		return out.flush()
	})
}
