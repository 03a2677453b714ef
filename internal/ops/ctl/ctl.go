// Package ctl implements cqrsctl, the operator's tool for cqrsgen event
// stores: stats, streams, events, tail, tree, verify, delete, export,
// import, archive, purge-keys and forget-subject on a Pebble directory or a
// PostgreSQL database. cmd/cqrsctl is a thin main around Run;
// docs/operations.md is the user's guide.
package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/backends/postgres"
	"github.com/cqrsgen/cqrsgen/internal/suggest"
	"github.com/cqrsgen/cqrsgen/internal/version"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// Exit codes of Run.
const (
	// ExitOK: the command succeeded (verify: no problem found).
	ExitOK = 0
	// ExitFailed: the command failed, or verify found problems.
	ExitFailed = 1
	// ExitUsage: the command line was wrong.
	ExitUsage = 2
)

// Env is what Run reads and writes besides its arguments.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Terminal reports that Stderr is a terminal: long commands (export,
	// import) then draw a progress bar on it.
	Terminal bool
}

// commandDoc describes one command for the usage texts.
type commandDoc struct {
	name, synopsis string
	// summary is the global usage's description, detail the command's own
	// help (after its synopsis and before its flags).
	summary []string
	detail  string
}

// commands lists the commands in the order the usage shows them.
var commands = []commandDoc{
	{"stats", "stats", []string{"the store's counters, as JSON"}, "Prints the store's counters as one JSON object."},
	{"streams", "streams [-type T] [-after S] [-limit N]", []string{
		"streams with their versions, one JSON object a line;",
		"-after takes the last stream of the previous page",
		"(TYPE/ID, or just ID with -type)"},
		"Prints the streams with their versions, one JSON object a line. An unknown -type is an error."},
	{"events", "events [-after V] [-limit N] [-raw] TYPE ID", []string{"one stream's events, one JSON object a line"},
		"Prints one stream's events, one JSON object a line. A stream that does not exist is an error\n(exit 1) naming the stream types the store holds."},
	{"tail", "tail [-after P | -from-start] [-limit N] [-raw]", []string{
		"follow the whole log live (from the current head by",
		"default) until interrupted; on Pebble, print up to",
		"the head and exit"},
		"On PostgreSQL, follows the whole log live until interrupted.\n\n" +
			"A Pebble directory admits one process at a time: a cqrsctl following it would keep the\n" +
			"application from opening it. On Pebble, tail therefore needs -after or -from-start, prints\n" +
			"the events stored up to the current head and exits. To follow a Pebble store live, do it\n" +
			"inside the application (runtime.Subscribe)."},
	{"tree", "tree [-text] [-raw] CORRELATION-ID", []string{
		"a correlation's events as a tree by causation,",
		"one JSON object a line with depth and parent"},
		"Prints every event whose cqrs.correlation is CORRELATION-ID (and the event it names, when it\n" +
			"is an event reference), depth-first by cqrs.causation: each event before the events it\n" +
			"caused, siblings in position order. Reads the whole log: correlation ids are not indexed.\n" +
			"An id no event carries is an error (exit 1)."},
	{"verify", "verify", []string{
		"check every key, record and event body; exit 1 with",
		"a report when anything is wrong"},
		"Checks every key and record, and that every event body decodes as MessagePack; prints a JSON\nreport and exits 1 when anything is wrong."},
	{"delete", "delete -stream TYPE/ID [-hard] [-yes]", []string{
		"delete a stream, soft (hidden, events kept) or -hard",
		"(removed); a dry run that prints what it would do",
		"unless -yes"},
		"Deletes one stream (-stream TYPE/ID, or -type and -id; -tenant for a tenant's stream). A soft\n" +
			"delete hides the stream and keeps its events; -hard removes its events, snapshot, index and\n" +
			"idempotency keys. Either way a tombstone record is appended and the stream can never be\n" +
			"appended to again. Without -yes (or with -dry-run) it only prints what it would delete."},
	{"export", "export [-from P] [-to P] [-format jsonl|parquet] [-o FILE]", []string{
		"write the log (or positions P..P) as JSON Lines",
		"(default) or as a Parquet file"},
		"Writes the log, or positions P..P, as JSON Lines (default) or as a Parquet file."},
	{"forget-subject", "forget-subject [-dry-run | -yes [-purge]] SUBJECT", []string{
		"crypto-shred a subject: destroy its data key, so its",
		"sealed (pii) fields read as \"[forgotten]\"; without",
		"-yes only reports what it would do"},
		"Destroys the data key of SUBJECT (lifecycle.ForgetSubject): every field tagged pii of that subject\n" +
			"then reads as \"[forgotten]\", and the snapshots of its streams are replaced. Prints what it did\n" +
			"(or would do) as JSON. Without -yes nothing changes and the exit code is 1; -dry-run reports\n" +
			"and exits 0. On PostgreSQL, -purge then rewrites the key tables so that their files no longer\n" +
			"hold the key (see docs/guide.md, Crypto-shredding). It cannot be undone."},
	{"import", "import [FILE]", []string{
		"load an export (JSON Lines or Parquet, detected;",
		"default stdin) into an empty store"},
		"Loads a whole-log export into an empty store. The format (JSON Lines or Parquet) is detected\nfrom the input. A Pebble directory that import created is removed again when import fails."},
	{"archive", "archive (-before P | -before-time T) (-to FILE | -dry-run) [-yes] [-allow-uncovered] [-allow-behind]", []string{
		"write the oldest events to a Parquet file, verify",
		"it against the store and, with -yes, truncate them"},
		"Archives the events from the start of the log up to position P-1 (or up to the first event\n" +
			"at or after time T) to a Parquet file, reads the file back and compares every record with\n" +
			"the store, and only then, with -yes, truncates them from the store. The newest event is always\n" +
			"kept. An existing FILE is verified, never overwritten: run without -yes, keep the file, run\n" +
			"again with -yes. It refuses when a stream in the range has no snapshot at or after its last\n" +
			"archived version (it could not be loaded afterwards) unless -allow-uncovered is given, and\n" +
			"when a checkpoint is below the range's end (its projection or saga would skip events)\n" +
			"unless -allow-behind is given."},
	{"purge-keys", "purge-keys -ttl D", []string{"delete the idempotency keys older than D"},
		"Deletes the idempotency records recorded more than D (a Go duration, e.g. 720h) ago. Use the\n" +
			"TTL the application opens the store with (WithIdempotencyTTL)."},
}

// usage is the global usage text.
var usage = func() string {
	var b strings.Builder
	b.WriteString("usage: cqrsctl (-pebble DIR | -postgres DSN [-schema NAME]) COMMAND [flags] [args]\n       cqrsctl -version\n\nCommands:\n")
	for _, c := range commands {
		lines := c.summary
		if len(c.synopsis) > 27 {
			fmt.Fprintf(&b, "  %s\n", c.synopsis)
		} else {
			fmt.Fprintf(&b, "  %-27s  %s\n", c.synopsis, lines[0])
			lines = lines[1:]
		}
		for _, l := range lines {
			fmt.Fprintf(&b, "  %-27s  %s\n", "", l)
		}
	}
	b.WriteString("\nStore flags may also follow the command name. Run cqrsctl COMMAND -h for a command's flags.\n")
	return b.String()
}()

// commandHelp writes the help of the command whose flags are fs.
func commandHelp(w io.Writer, fs *flag.FlagSet) {
	for _, c := range commands {
		if c.name != fs.Name() {
			continue
		}
		fmt.Fprintf(w, "usage: cqrsctl (-pebble DIR | -postgres DSN [-schema NAME]) %s\n\n%s\n\nFlags:\n", c.synopsis, c.detail)
		fs.SetOutput(w)
		fs.PrintDefaults()
		return
	}
	fmt.Fprint(w, usage)
}

// storeFlags are the flags naming the store, accepted before and after the
// command name.
type storeFlags struct {
	pebbleDir string
	dsn       string
	schema    string
}

func (s *storeFlags) register(fs *flag.FlagSet, defaults storeFlags) {
	fs.StringVar(&s.pebbleDir, "pebble", defaults.pebbleDir, "Pebble store `directory`")
	fs.StringVar(&s.dsn, "postgres", defaults.dsn, "PostgreSQL `DSN`")
	fs.StringVar(&s.schema, "schema", defaults.schema, "PostgreSQL `schema` of the store")
}

// errUsage marks command-line mistakes (exit code 2).
var errUsage = errors.New("usage")

func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// helpError is a request for a command's help (-h after its name).
type helpError struct{ fs *flag.FlagSet }

func (e helpError) Error() string { return e.fs.Name() + ": help requested" }

// errProblems marks a verify that found problems (exit code 1, report
// already printed).
var errProblems = errors.New("problems found")

// Run runs cqrsctl with args (without the program name) and returns the
// exit code. ctx ends tail and cancels long commands (main cancels it on
// an interrupt).
func Run(ctx context.Context, args []string, env Env) int {
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	err := run(ctx, args, env)
	var help helpError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &help):
		commandHelp(env.Stdout, help.fs)
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(env.Stdout, usage)
		return ExitOK
	case errors.Is(err, errUsage):
		// One line: the mistake and where the help is, not the whole usage.
		fmt.Fprintf(env.Stderr, "cqrsctl: %s (run cqrsctl -h for usage)\n", strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		return ExitUsage
	case errors.Is(err, errProblems):
		return ExitFailed
	default:
		fmt.Fprintf(env.Stderr, "cqrsctl: %v\n", err)
		return ExitFailed
	}
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses args with fs, allowing flags after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, helpError{fs}
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func run(ctx context.Context, args []string, env Env) error {
	var global storeFlags
	gfs := newFlagSet("cqrsctl")
	global.register(gfs, storeFlags{schema: postgres.DefaultSchema})
	showVersion := gfs.Bool("version", false, "print cqrsctl's module version and exit")
	if err := gfs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	if *showVersion {
		fmt.Fprintf(env.Stdout, "cqrsctl %s\n", version.String())
		return nil
	}
	rest := gfs.Args()
	if len(rest) == 0 {
		return usagef("no command")
	}
	cmd, rest := rest[0], rest[1:]
	if cmd == "help" && len(rest) == 1 {
		cmd, rest = rest[0], []string{"-h"} // help COMMAND = COMMAND -h
	}
	fs := newFlagSet(cmd)
	var sf storeFlags
	sf.register(fs, global)
	c := &command{env: env, sf: &sf}
	switch cmd {
	case "stats":
		return c.stats(ctx, fs, rest)
	case "streams":
		return c.streams(ctx, fs, rest)
	case "events":
		return c.events(ctx, fs, rest)
	case "tail":
		return c.tail(ctx, fs, rest)
	case "tree":
		return c.tree(ctx, fs, rest)
	case "verify":
		return c.verify(ctx, fs, rest)
	case "delete":
		return c.deleteStream(ctx, fs, rest)
	case "export":
		return c.export(ctx, fs, rest)
	case "import":
		return c.importLog(ctx, fs, rest)
	case "archive":
		return c.archive(ctx, fs, rest)
	case "purge-keys":
		return c.purgeKeys(ctx, fs, rest)
	case "forget-subject":
		return c.forgetSubject(ctx, fs, rest)
	case "help":
		return flag.ErrHelp
	}
	return usagef("unknown command %q%s", cmd, suggestCommand(cmd))
}

// command carries what every subcommand needs.
type command struct {
	env Env
	sf  *storeFlags
	// parquetLimits bounds Parquet row groups; zero means the defaults
	// (tests set small ones).
	parquetLimits parquetLimits
	// following, when set, is called by follow with the position it
	// follows from, before it reads anything (tests wait for it).
	following func(start uint64)
	// keyTTL is the idempotency key TTL open gives the store (purge-keys).
	keyTTL time.Duration
}

// target is an opened store.
type target struct {
	runtime.Store
	kind  string
	close func() error
}

// logger passes the stores' warnings and errors to stderr and drops the
// rest (Pebble's informational messages among them).
func (c *command) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(c.env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func (c *command) checkStoreFlags() error {
	switch {
	case c.sf.pebbleDir != "" && c.sf.dsn != "":
		return usagef("give -pebble or -postgres, not both")
	case c.sf.pebbleDir == "" && c.sf.dsn == "":
		return usagef("name the store with -pebble DIR or -postgres DSN")
	}
	return nil
}

// open opens the store. create allows a missing Pebble directory (import);
// bulk opens Pebble without a sync per append (Flush makes it durable).
func (c *command) open(ctx context.Context, create, bulk bool) (*target, error) {
	if err := c.checkStoreFlags(); err != nil {
		return nil, err
	}
	if dir := c.sf.pebbleDir; dir != "" {
		if !create {
			if _, err := os.Stat(dir); err != nil {
				return nil, fmt.Errorf("pebble store: %w", err)
			}
		}
		opts := []pebble.Option{pebble.WithLogger(c.logger()), pebble.WithIdempotencyTTL(c.keyTTL)}
		if bulk {
			opts = append(opts, pebble.WithNoSync(0))
		}
		s, err := pebble.Open(dir, opts...)
		if err != nil {
			return nil, err
		}
		return &target{Store: s, kind: "pebble", close: s.Close}, nil
	}
	s, err := postgres.Open(ctx, c.sf.dsn, postgres.WithSchema(c.sf.schema), postgres.WithIdempotencyTTL(c.keyTTL))
	if err != nil {
		return nil, err
	}
	return &target{Store: s, kind: "postgres", close: s.Close}, nil
}

// withStore opens the store, runs f and closes the store, joining errors.
func (c *command) withStore(ctx context.Context, create, bulk bool, f func(t *target) error) error {
	t, err := c.open(ctx, create, bulk)
	if err != nil {
		return err
	}
	err = f(t)
	if cerr := t.close(); err == nil {
		err = cerr
	}
	return err
}

func noArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("%s takes no arguments, got %q", fs.Name(), pos)
	}
	return nil
}

// suggestCommand returns `; did you mean "X"?` for a command near cmd,
// or "".
func suggestCommand(cmd string) string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	if guess := suggest.Closest(cmd, names); guess != "" {
		return fmt.Sprintf("; did you mean %q?", guess)
	}
	return ""
}
