package ctl

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
	"github.com/parquet-go/parquet-go"
)

// archiveJSON is what archive prints.
type archiveJSON struct {
	From      uint64 `json:"from"`
	Through   uint64 `json:"through"`
	Events    uint64 `json:"events"`
	Streams   uint64 `json:"streams"`
	Uncovered uint64 `json:"uncovered_streams"`
	// UncoveredFirst lists the first uncovered streams (see
	// lifecycle.TruncationPlan).
	UncoveredFirst []streamJSON `json:"uncovered_first,omitempty"`
	// Behind counts the checkpoints below the range's end, BehindFirst
	// lists the first (see lifecycle.TruncationPlan).
	Behind      uint64           `json:"checkpoints_behind"`
	BehindFirst []checkpointJSON `json:"checkpoints_behind_first,omitempty"`
	Archive     string           `json:"archive,omitempty"`
	// SHA256 is the digest of the archived records (see recordBytes),
	// equal in the file and in the store.
	SHA256    string `json:"sha256,omitempty"`
	Verified  bool   `json:"verified"`
	Truncated bool   `json:"truncated"`
	DryRun    bool   `json:"dry_run,omitempty"`
}

// archive writes a range of the log's oldest events to a Parquet file,
// verifies the file against the store and, with -yes, truncates them.
func (c *command) archive(ctx context.Context, fs *flag.FlagSet, args []string) error {
	before := fs.Uint64("before", 0, "archive and truncate the events at positions below `POS`")
	beforeTime := fs.String("before-time", "", "archive and truncate the events before the first one at or after `TIME` (RFC 3339)")
	to := fs.String("to", "", "the Parquet `file` to write (an existing file is verified, never overwritten)")
	dryRun := fs.Bool("dry-run", false, "print what would be archived and truncated; write nothing")
	yes := fs.Bool("yes", false, "truncate the store once the archive is verified")
	uncovered := fs.Bool("allow-uncovered", false, "truncate even streams without a snapshot covering their truncated events")
	behind := fs.Bool("allow-behind", false, "truncate even events that some checkpoint (projection, saga) has not reached")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	var cut time.Time
	switch {
	case (*before == 0) == (*beforeTime == ""):
		return usagef("archive: give -before POS or -before-time TIME")
	case *beforeTime != "":
		var err error
		if cut, err = time.Parse(time.RFC3339Nano, *beforeTime); err != nil {
			return usagef("archive: -before-time: %v", err)
		}
	}
	if *to == "" && !*dryRun {
		return usagef("archive: -to FILE is required (or -dry-run)")
	}
	if *dryRun && *yes {
		return usagef("archive: -dry-run and -yes exclude each other")
	}
	return c.withStore(ctx, false, false, func(t *target) error {
		ret, ok := t.Store.(lifecycle.Retention)
		if !ok {
			return fmt.Errorf("archive: the %s store cannot truncate its log", t.kind)
		}
		start, err := ret.Truncated(ctx)
		if err != nil {
			return err
		}
		head, err := t.Head(ctx)
		if err != nil {
			return err
		}
		through := *before - 1
		if !cut.IsZero() {
			if through, err = firstAtOrAfter(ctx, t, start, head, cut); err != nil {
				return err
			}
			// The newest event is always kept.
			through = min(through, max(head, 1)-1)
		}
		switch {
		case through >= head:
			return fmt.Errorf("archive: -before %d would truncate the newest event (the head is %d), which is always kept", *before, head)
		case through <= start:
			return fmt.Errorf("archive: nothing to archive: the log starts at position %d", start+1)
		}
		plan, err := lifecycle.PlanTruncation(ctx, t.Store, through)
		if err != nil {
			return err
		}
		out := archiveJSON{From: plan.From, Through: plan.Through, Events: plan.Events, Streams: plan.Streams,
			Uncovered: plan.UncoveredCount, DryRun: *dryRun, Archive: *to}
		for _, st := range plan.Uncovered {
			out.UncoveredFirst = append(out.UncoveredFirst, streamJSON{Type: st.Type, ID: st.ID})
		}
		out.Behind = plan.BehindCount
		for _, c := range plan.Behind {
			out.BehindFirst = append(out.BehindFirst, checkpointJSON{Name: c.Name, Position: c.Position})
		}
		if *dryRun {
			fmt.Fprintf(c.env.Stderr, "archive: dry run: positions %d to %d (%d events of %d streams, %d without a covering snapshot, %d checkpoints behind); nothing written\n",
				plan.From, plan.Through, plan.Events, plan.Streams, plan.UncoveredCount, plan.BehindCount)
			return writeIndented(c.env.Stdout, out)
		}
		if plan.UncoveredCount > 0 && !*uncovered {
			return fmt.Errorf("archive: %d of the %d streams with events in positions %d to %d have no snapshot at or after their last truncated version (first: %s): "+
				"after truncation they could not be loaded; save snapshots first, or pass -allow-uncovered", plan.UncoveredCount, plan.Streams, plan.From, plan.Through, plan.Uncovered[0])
		}
		if plan.BehindCount > 0 && !*behind {
			return fmt.Errorf("archive: %d checkpoints are below position %d (first: %q at %d): their projections or sagas would skip the truncated events; "+
				"let them catch up, or pass -allow-behind", plan.BehindCount, plan.Through, plan.Behind[0].Name, plan.Behind[0].Position)
		}
		if _, err := os.Stat(*to); errors.Is(err, os.ErrNotExist) {
			if err := c.writeArchive(ctx, t, *to, plan); err != nil {
				return err
			}
		} else if err != nil {
			return err
		} else {
			fmt.Fprintf(c.env.Stderr, "archive: %s exists: verifying it instead of writing it\n", *to)
		}
		sum, err := verifyArchive(ctx, t.Store, *to, plan.From, plan.Through)
		if err != nil {
			return fmt.Errorf("archive: %s does not match the store, nothing truncated: %w", *to, err)
		}
		out.Verified, out.SHA256 = true, sum
		if !*yes {
			fmt.Fprintf(c.env.Stderr, "archive: %s verified (%d events, sha256 %s); nothing truncated: run again with -yes to truncate positions %d to %d\n",
				*to, plan.Events, sum, plan.From, plan.Through)
			return writeIndented(c.env.Stdout, out)
		}
		res, err := ret.TruncateLog(ctx, plan.Through)
		if err != nil {
			return fmt.Errorf("archive: %s verified, but truncating failed: %w", *to, err)
		}
		out.Truncated = true
		fmt.Fprintf(c.env.Stderr, "archive: %s verified; truncated %d events: the log now starts at position %d\n", *to, res.Removed, res.Through+1)
		return writeIndented(c.env.Stdout, out)
	})
}

// checkpointJSON is one checkpoint in archive's report.
type checkpointJSON struct {
	Name     string `json:"name"`
	Position uint64 `json:"position"`
}

// firstAtOrAfter returns the position before the first event in
// (start, head] whose time is at or after cut (head when there is none).
func firstAtOrAfter(ctx context.Context, t *target, start, head uint64, cut time.Time) (uint64, error) {
	for rec, err := range t.ReadAll(ctx, start) {
		if err != nil {
			return 0, err
		}
		if !rec.Time.Before(cut) {
			return rec.Position - 1, nil
		}
		if rec.Position >= head {
			break
		}
	}
	return head, nil
}

// writeArchive writes the plan's range to path through a temporary file in
// the same directory, synced and renamed into place, so that path never
// names a partial archive.
func (c *command) writeArchive(ctx context.Context, t *target, path string, plan lifecycle.TruncationPlan) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	lim := c.parquetLimits
	if lim == (parquetLimits{}) {
		lim = parquetLimits{rows: parquetRowGroupRows, bytes: parquetRowGroupBytes}
	}
	err = c.writeParquet(ctx, t, f, plan.From, plan.Through, plan.Events, lim)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("archive: writing %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// verifyArchive reads the Parquet file at path and the store's events at
// positions from..through side by side: the file must hold exactly those
// positions, in order, each record equal to the store's (recordBytes), and
// say so in its cqrsgen.from and cqrsgen.to metadata. It returns the
// SHA-256 of the records' bytes.
func verifyArchive(ctx context.Context, s runtime.Store, path string, from, through uint64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return "", fmt.Errorf("not a readable Parquet file: %w", err)
	}
	for key, want := range map[string]uint64{"cqrsgen.from": from, "cqrsgen.to": through} {
		if v, ok := pf.Lookup(key); !ok || v != strconv.FormatUint(want, 10) {
			return "", fmt.Errorf("its %s is %q, want %d", key, v, want)
		}
	}
	if n := pf.NumRows(); n != int64(through-from+1) {
		return "", fmt.Errorf("it holds %d events, the range %d to %d holds %d", n, from, through, through-from+1)
	}
	rows := parquet.NewGenericReader[parquetEvent](pf)
	defer rows.Close()
	next, stop := iter.Pull2(s.ReadAll(ctx, from-1))
	defer stop()
	h := sha256.New()
	buf := make([]parquetEvent, 256)
	var a, b []byte
	pos := from
	for pos <= through {
		n, rerr := rows.Read(buf)
		for _, p := range buf[:n] {
			rec, err, ok := next()
			if err != nil {
				return "", err
			}
			if !ok || rec.Position > through {
				return "", fmt.Errorf("the store ends before position %d", pos)
			}
			if rec.Position != pos || p.Position != int64(pos) {
				return "", fmt.Errorf("position %d: the file holds position %d, the store %d", pos, p.Position, rec.Position)
			}
			a = recordBytes(a[:0], rec)
			b = recordBytes(b[:0], fromParquet(p))
			if !bytes.Equal(a, b) {
				return "", fmt.Errorf("position %d (%s version %d): the archived record differs from the store's", pos, rec.Stream, rec.Version)
			}
			h.Write(a)
			pos++
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return "", fmt.Errorf("reading row %d: %w", pos-from+1, rerr)
		}
	}
	if pos != through+1 {
		return "", fmt.Errorf("it ends at position %d, want %d", pos-1, through)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fromParquet is the record an archived row holds.
func fromParquet(p parquetEvent) runtime.Record {
	return runtime.Record{
		EventID:  runtime.EventID(p.EventID),
		Stream:   runtime.StreamID{Type: p.StreamType, ID: p.StreamID},
		Version:  uint64(p.Version),
		Position: uint64(p.Position),
		Name:     p.Name,
		Schema:   uint32(p.Schema),
		Time:     p.Time,
		Metadata: p.Metadata,
		Data:     p.Raw,
	}
}

// recordBytes appends the canonical bytes of r that an archive must keep:
// every field, length-prefixed, metadata in key order. Stream types, ids,
// names and metadata that are not valid UTF-8 are changed by a Parquet
// export (STRING columns): such a record does not match its archive, and
// archive refuses to truncate it.
func recordBytes(b []byte, r runtime.Record) []byte {
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, r.Position)
	b = append(b, r.EventID[:]...)
	str(r.Stream.Type)
	str(r.Stream.ID)
	b = binary.BigEndian.AppendUint64(b, r.Version)
	str(r.Name)
	b = binary.BigEndian.AppendUint32(b, r.Schema)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixNano()))
	keys := slices.Sorted(maps.Keys(r.Metadata))
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		str(k)
		str(r.Metadata[k])
	}
	str(string(r.Data))
	return b
}

// purgeKeysJSON is what purge-keys prints.
type purgeKeysJSON struct {
	TTL    string `json:"ttl"`
	Purged uint64 `json:"purged"`
}

// purgeKeys deletes the idempotency records older than -ttl.
func (c *command) purgeKeys(ctx context.Context, fs *flag.FlagSet, args []string) error {
	ttl := fs.Duration("ttl", 0, "delete the keys recorded more than `D` ago (a Go duration, e.g. 720h)")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *ttl <= 0 {
		return usagef("purge-keys: -ttl D is required and must be positive")
	}
	c.keyTTL = *ttl
	return c.withStore(ctx, false, false, func(t *target) error {
		ret, ok := t.Store.(lifecycle.Retention)
		if !ok {
			return fmt.Errorf("purge-keys: the %s store cannot expire keys", t.kind)
		}
		n, err := ret.PurgeExpiredKeys(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.env.Stderr, "purge-keys: %d expired keys deleted\n", n)
		return writeIndented(c.env.Stdout, purgeKeysJSON{TTL: ttl.String(), Purged: n})
	})
}

// logStart returns from, or the log's first kept position when from is
// before it (the events before were truncated), saying so on stderr.
func (c *command) logStart(ctx context.Context, t *target, from uint64) (uint64, error) {
	ret, ok := t.Store.(lifecycle.Retention)
	if !ok {
		return from, nil
	}
	tr, err := ret.Truncated(ctx)
	if err != nil || from > tr {
		return from, err
	}
	fmt.Fprintf(c.env.Stderr, "export: the log starts at position %d (the events before were truncated)\n", tr+1)
	return tr + 1, nil
}

// addTruncated adds the truncation mark to a report of a store whose
// Verify does not (Pebble's does, as "truncated").
func addTruncated(ctx context.Context, t *target, r *storekit.VerifyReport) error {
	ret, ok := t.Store.(lifecycle.Retention)
	if !ok {
		return nil
	}
	tr, err := ret.Truncated(ctx)
	if err != nil || tr == 0 {
		return err
	}
	if r.Extra == nil {
		r.Extra = make(map[string]uint64)
	}
	r.Extra["truncated"] = tr
	return nil
}

// startNote tells where a truncated log starts, for verify's summary.
func startNote(counts map[string]uint64) string {
	if tr := counts["truncated"]; tr > 0 {
		return fmt.Sprintf(", log starts at position %d (truncated through %d)", tr+1, tr)
	}
	return ""
}
