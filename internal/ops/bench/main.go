package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Output file names written into -out.
const (
	MarkdownFile = "benchmarks.md"
	JSONFile     = "benchmarks.json"
)

// Main is the cqrsbench program: it parses args (without the program
// name), runs the benchmarks, writes the reports into -out and prints
// progress to stdout (a single updating line when terminal is true, one
// key=value line per row otherwise) and warnings to stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, terminal bool) error {
	fs := flag.NewFlagSet("cqrsbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		quick  = fs.Bool("quick", false, "small counts and short time caps: the whole run takes under a minute")
		out    = fs.String("out", "bench-out", "directory for "+MarkdownFile+" and "+JSONFile)
		stores = fs.String("stores", "memory,pebble", "comma-separated stores to measure: memory, pebble, postgres")
		dsn    = fs.String("postgres-dsn", "", "PostgreSQL connection string (needed for -stores postgres)")
		dir    = fs.String("dir", filepath.Join(os.TempDir(), "cqrsbench"), "parent of the data directories (must be on a real disk, not tmpfs)")
		only   = fs.String("only", "", "regexp: run only the cases whose name matches (e.g. '^append/batch=1/' or 'load|codec')")
		scale  = fs.Float64("scale", 1, "multiply every operation count by this factor")
		cpuOut = fs.String("cpuprofile", "", "write a CPU profile of the run to this file (with -only: of the cases selected)")
		memOut = fs.String("memprofile", "", "write an allocation profile of the run to this file")
		turns  = fs.String("turnlog", "", "write one line per turn of every alternated case (rates, GCs, Pebble state) to this file")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: cqrsbench [flags]\n\nMeasures cqrsgen's stores and codecs beside raw Pebble, the disk's fsync rate and reflection msgpack.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("cqrsbench: unexpected arguments %q", fs.Args())
	}
	cfg := Config{
		Quick: *quick, Scale: *scale, PostgresDSN: *dsn, Dir: *dir, Log: stderr,
		Command:  strings.TrimSpace("go run ./cmd/cqrsbench " + strings.Join(redactDSN(args), " ")),
		Progress: NewProgress(stdout, terminal),
	}
	for _, s := range strings.Split(*stores, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Stores = append(cfg.Stores, s)
		}
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			return fmt.Errorf("cqrsbench: -only: %w", err)
		}
		cfg.Only = re
	}
	if fsys, err := FilesystemOf("/proc/mounts", *dir); err == nil {
		fmt.Fprintf(stderr, "cqrsbench: data directory %s is on %s (%s at %s)\n", *dir, fsys.Type, fsys.Device, fsys.MountPoint)
	}
	if *turns != "" {
		f, err := os.Create(*turns)
		if err != nil {
			return fmt.Errorf("cqrsbench: -turnlog: %w", err)
		}
		defer f.Close()
		cfg.TurnLog = f
	}
	stopProfiles, err := startProfiles(*cpuOut, *memOut)
	if err != nil {
		return err
	}
	rep, runErr := Run(ctx, cfg)
	if err := stopProfiles(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	if rep == nil {
		return runErr
	}
	if err := writeReports(*out, rep); err != nil {
		return errors.Join(runErr, err)
	}
	if runErr != nil {
		return fmt.Errorf("%w (partial report written to %s)", runErr, *out)
	}
	fmt.Fprintf(stderr, "cqrsbench: wrote %s and %s\n", filepath.Join(*out, MarkdownFile), filepath.Join(*out, JSONFile))
	return nil
}

// redactDSN hides the value of -postgres-dsn (it may hold a password).
func redactDSN(args []string) []string {
	out := make([]string, len(args))
	redact := false
	for i, a := range args {
		switch {
		case redact:
			out[i], redact = "'<dsn>'", false
		case a == "-postgres-dsn" || a == "--postgres-dsn":
			out[i], redact = a, true
		case strings.HasPrefix(a, "-postgres-dsn=") || strings.HasPrefix(a, "--postgres-dsn="):
			name, _, _ := strings.Cut(a, "=")
			out[i] = name + "='<dsn>'"
		default:
			out[i] = a
		}
	}
	return out
}

func writeReports(dir string, rep *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cqrsbench: -out: %w", err)
	}
	write := func(name string, f func(io.Writer, *Report) error) error {
		fh, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("cqrsbench: %w", err)
		}
		if err := f(fh, rep); err != nil {
			fh.Close()
			return err
		}
		return fh.Close()
	}
	if err := write(MarkdownFile, WriteMarkdown); err != nil {
		return err
	}
	for name, c := range Charts(rep.Rows) {
		if err := write(name, func(w io.Writer, _ *Report) error { return c.WriteSVG(w) }); err != nil {
			return err
		}
	}
	return write(JSONFile, WriteJSON)
}
