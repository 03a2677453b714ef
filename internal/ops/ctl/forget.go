package ctl

import (
	"context"
	"flag"
	"fmt"

	"github.com/cqrsgen/cqrsgen/backends/postgres"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

// forgetJSON is what forget-subject prints.
type forgetJSON struct {
	Subject string       `json:"subject"`
	Found   bool         `json:"found"`
	Streams []streamJSON `json:"streams"`
	// Snapshots counts the streams' snapshots replaced by a placeholder.
	Snapshots int `json:"snapshots"`
	// Forgotten reports that the key was destroyed (false for a dry run,
	// an unconfirmed run and an unknown subject).
	Forgotten bool `json:"forgotten"`
	// Purged reports that PostgreSQL's key tables were rewritten (-purge).
	Purged bool `json:"purged,omitempty"`
}

// forgetSubject crypto-shreds one subject (lifecycle.ForgetSubject). Without
// -yes it only reports what it would do, like -dry-run, and fails, so that
// a forgotten flag never destroys a key; the destruction cannot be undone.
func (c *command) forgetSubject(ctx context.Context, fs *flag.FlagSet, args []string) error {
	dry := fs.Bool("dry-run", false, "report what would be forgotten, change nothing")
	yes := fs.Bool("yes", false, "confirm: destroy the subject's key (cannot be undone)")
	purge := fs.Bool("purge", false, "PostgreSQL: then rewrite the key tables (VACUUM FULL) and CHECKPOINT")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("forget-subject takes one SUBJECT, got %d arguments", len(pos))
	}
	if *dry && *yes {
		return usagef("give -dry-run or -yes, not both")
	}
	subject := pos[0]
	if err := runtime.ValidateSubject(subject); err != nil {
		return usagef("forget-subject: %v", err)
	}
	return c.withStore(ctx, false, false, func(t *target) error {
		var res lifecycle.ForgetResult
		var err error
		if *yes {
			res, err = lifecycle.ForgetSubject(ctx, t.Store, subject)
		} else {
			res, err = lifecycle.PlanForget(ctx, t.Store, subject)
		}
		if err != nil {
			return err
		}
		out := forgetJSON{Subject: subject, Found: res.Found, Streams: []streamJSON{}, Snapshots: res.Snapshots, Forgotten: *yes && res.Found}
		for _, st := range res.Streams {
			out.Streams = append(out.Streams, streamJSON{Type: st.Type, ID: st.ID})
		}
		if *yes && *purge {
			if pg, ok := t.Store.(*postgres.Store); ok {
				if err := pg.PurgeForgottenKeys(ctx); err != nil {
					return err
				}
				out.Purged = true
			}
		}
		if err := writeIndented(c.env.Stdout, out); err != nil {
			return err
		}
		switch {
		case *dry:
			return nil
		case !*yes:
			return fmt.Errorf("nothing done: pass -yes to destroy the key of subject %q (or -dry-run to only report)", subject)
		case !res.Found:
			fmt.Fprintf(c.env.Stderr, "cqrsctl: subject %q has no key: nothing to forget\n", subject)
		case t.kind == "postgres" && !*purge:
			fmt.Fprintf(c.env.Stderr, "cqrsctl: the key is deleted; PostgreSQL keeps its bytes in dead rows until the key tables are rewritten: run again with -purge, or see docs/guide.md (Crypto-shredding)\n")
		}
		return nil
	})
}
