// Command cqrsgen generates typed event-sourcing code (sealed event and
// command interfaces, apply/decide dispatch, reflection-free codecs and a
// typed repository) from //cqrs:… directives. Run it with go generate:
//
//	//go:generate go tool cqrsgen
//
// Usage:
//
//	cqrsgen [-check] [-accept-breaking] [-output file] [packages]
//	cqrsgen -version
//	cqrsgen -h
//
// Without packages it generates for the package in the current directory
// (under go generate: the package of $GOFILE). It writes one file per
// package with directives, cqrs_gen.go unless -output says otherwise,
// leaves an unchanged file alone, and removes a generated file whose
// package no longer has directives. With -check it writes nothing and
// fails when any file would change.
//
// Beside the generated file it keeps cqrs.lock, the schema lock: the
// stored shape of every aggregate state, event and upcaster input. A
// change that stored data could not be read with (a removed or retyped
// event field, a changed wire name, …) is an error unless the version is
// bumped with an upcaster, or -accept-breaking accepts it and rewrites the
// lock.
//
// Problems in the input are printed as file:line:col: message, all of
// them, sorted, and nothing is written. Exit status: 0 success, 1 problems
// in the input or (with -check) stale files, 2 bad usage. Every directive
// and error is described in docs/directives.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cqrsgen/cqrsgen/internal/codegen"
	"github.com/cqrsgen/cqrsgen/internal/codegen/write"
	"github.com/cqrsgen/cqrsgen/internal/version"
)

const usageLine = "usage: cqrsgen [-check] [-accept-breaking] [-output file] [packages]"

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	var usage usageError
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &usage):
		fmt.Fprintf(os.Stderr, "cqrsgen: %v\n%s\nRun cqrsgen -h for the flags.\n", usage.err, usageLine)
		os.Exit(2)
	case errors.Is(err, errReported):
		os.Exit(1)
	default:
		fmt.Fprintf(os.Stderr, "cqrsgen: %v\n", err)
		os.Exit(1)
	}
}

// usageError is a bad command line (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

// errReported means the problems were already printed (exit status 1).
var errReported = errors.New("problems reported")

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cqrsgen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	check := fs.Bool("check", false, "write nothing; exit 1 if any generated file is stale")
	accept := fs.Bool("accept-breaking", false, "accept breaking schema changes and rewrite cqrs.lock")
	output := fs.String("output", codegen.DefaultOutput, "base name of the generated file in each package")
	showVersion := fs.Bool("version", false, "print cqrsgen's module version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			// Asked for: the flags go to stdout and it is a success.
			fmt.Fprintf(stdout, "%s\n\nGenerates cqrs_gen.go and cqrs.lock for the packages (default: the\ncurrent directory). Directives and errors: docs/directives.md.\n\nFlags:\n", usageLine)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil
		}
		return usageError{err}
	}
	if *showVersion {
		fmt.Fprintf(stdout, "cqrsgen %s\n", version.String())
		return nil
	}
	if *output == "" || *output != filepath.Base(*output) || !strings.HasSuffix(*output, ".go") || strings.HasSuffix(*output, "_test.go") {
		return usageError{fmt.Errorf("-output %q: want a file name ending in .go (not _test.go), without a directory", *output)}
	}
	cwd, err := os.Getwd()
	if err != nil {
		return err
	}
	// go generate runs us in the directory of $GOFILE, so "." is its
	// package.
	patterns := fs.Args()
	if len(patterns) == 0 {
		patterns = []string{"."}
	}
	outs, err := codegen.Generate(codegen.Config{Dir: cwd, Patterns: patterns, Output: *output, AcceptBreaking: *accept})
	var problems codegen.Problems
	if errors.As(err, &problems) {
		for _, p := range problems {
			if p.Pos.File == "" { // a go list error about no file
				fmt.Fprintf(stderr, "cqrsgen: %s\n", p.Msg)
				continue
			}
			fmt.Fprintf(stderr, "%s:%d:%d: %s\n", relative(cwd, p.Pos.File), p.Pos.Line, p.Pos.Col, p.Msg)
		}
		return errReported
	}
	if err != nil {
		return err
	}
	if *check {
		res, err := write.Check(outs)
		if err != nil {
			return err
		}
		stale := false
		for _, r := range res {
			if r.Change != write.Unchanged {
				stale = true
				fmt.Fprintf(stderr, "%s: stale: go generate would have %s it\n", relative(cwd, r.Path), r.Change)
			}
		}
		if stale {
			return errReported
		}
		return nil
	}
	_, err = write.Apply(outs)
	return err
}

// relative shortens file to a path relative to dir the way the go command
// does: ./x.go below dir, the shorter of relative and absolute otherwise.
func relative(dir, file string) string {
	rel, err := filepath.Rel(dir, file)
	switch {
	case err != nil:
		return file
	case !strings.HasPrefix(rel, ".."):
		return "." + string(filepath.Separator) + rel
	case len(rel) < len(file):
		return rel
	}
	return file
}
