// Package doccheck extracts the Go code blocks of the project's Markdown
// documents so that a test can compile every one of them: documentation
// that does not build is a bug like any other.
//
// A block is a fenced ```go block, of one of three kinds:
//   - a complete file, starting with a package clause: compiled on its own;
//   - top-level declarations without a package clause: all such blocks of
//     one document are compiled together as one package, with the imports
//     they use added (see Imports), so a guide can declare a domain in one
//     block and use it in the next;
//   - a block whose fence is preceded by the line <!-- fragment -->: an
//     intentional excerpt, not compiled.
package doccheck

import (
	"bufio"
	"bytes"
	"go/scanner"
	"go/token"
	"sort"
	"strings"
)

// KnownImports maps the package names documentation may use without an
// import line to their import paths.
var KnownImports = map[string]string{
	"context":    "context",
	"errors":     "errors",
	"fmt":        "fmt",
	"iter":       "iter",
	"os":         "os",
	"filepath":   "path/filepath",
	"slog":       "log/slog",
	"strings":    "strings",
	"sync":       "sync",
	"time":       "time",
	"runtime":    "github.com/cqrsgen/cqrsgen/runtime",
	"tenant":     "github.com/cqrsgen/cqrsgen/runtime/tenant",
	"projection": "github.com/cqrsgen/cqrsgen/runtime/projection",
	"saga":       "github.com/cqrsgen/cqrsgen/runtime/saga",
	"lease":      "github.com/cqrsgen/cqrsgen/runtime/lease",
	"instrument": "github.com/cqrsgen/cqrsgen/runtime/instrument",
	"storekit":   "github.com/cqrsgen/cqrsgen/runtime/storekit",
	"telemetry":  "github.com/cqrsgen/cqrsgen/runtime/telemetry",
	"registry":   "github.com/cqrsgen/cqrsgen/runtime/registry",
	"lifecycle":  "github.com/cqrsgen/cqrsgen/runtime/lifecycle",
	"natsjs":     "github.com/cqrsgen/cqrsgen/publish/natsjs",
	"nats":       "github.com/nats-io/nats.go",
	"jetstream":  "github.com/nats-io/nats.go/jetstream",
	"memory":     "github.com/cqrsgen/cqrsgen/backends/memory",
	"pebble":     "github.com/cqrsgen/cqrsgen/backends/pebble",
	"postgres":   "github.com/cqrsgen/cqrsgen/backends/postgres",
}

// Imports returns the import paths of the KnownImports that code uses as
// qualifiers (an identifier followed by a dot), sorted. Comments and
// strings are skipped by the Go scanner.
func Imports(code string) []string {
	fset := token.NewFileSet()
	src := []byte(code)
	var sc scanner.Scanner
	sc.Init(fset.AddFile("", fset.Base(), len(src)), src, nil, 0)
	used := map[string]bool{}
	// prevIdent is the identifier just scanned, when it was not itself
	// preceded by a dot (a.fmt.X does not use package fmt).
	prevIdent, lastDot := "", false
	for {
		_, tok, lit := sc.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.PERIOD && prevIdent != "" {
			if path, ok := KnownImports[prevIdent]; ok {
				used[path] = true
			}
		}
		if tok == token.IDENT && !lastDot {
			prevIdent = lit
		} else {
			prevIdent = ""
		}
		lastDot = tok == token.PERIOD
	}
	paths := make([]string, 0, len(used))
	for p := range used {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// Assemble returns the source of the package formed by the declaration
// blocks of one document: package clause, imports, then the blocks.
func Assemble(pkg string, blocks []Block) string {
	var body strings.Builder
	for _, b := range blocks {
		body.WriteString("\n// " + b.File + ":" + itoa(b.Line) + "\n")
		body.WriteString(b.Code)
	}
	var src strings.Builder
	src.WriteString("package " + pkg + "\n\n")
	if imps := Imports(body.String()); len(imps) > 0 {
		src.WriteString("import (\n")
		for _, p := range imps {
			src.WriteString("\t\"" + p + "\"\n")
		}
		src.WriteString(")\n")
	}
	src.WriteString(body.String())
	return src.String()
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// Block is one fenced Go code block.
type Block struct {
	// File and Line locate the block's first code line.
	File string
	Line int
	// Code is the block's text.
	Code string
	// Fragment reports that the block is marked as an excerpt.
	Fragment bool
}

// FragmentMarker is the comment that marks an intentionally partial block.
const FragmentMarker = "<!-- fragment -->"

// Blocks returns the Go code blocks of a Markdown document, in order.
func Blocks(file string, markdown []byte) []Block {
	var (
		blocks   []Block
		inGo     bool
		cur      Block
		code     strings.Builder
		previous string // last non-blank line outside a block
		lineNo   int
	)
	sc := bufio.NewScanner(bytes.NewReader(markdown))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case !inGo && (trimmed == "```go" || trimmed == "```golang"):
			inGo = true
			cur = Block{File: file, Line: lineNo + 1, Fragment: previous == FragmentMarker}
			code.Reset()
		case inGo && trimmed == "```":
			inGo = false
			cur.Code = code.String()
			blocks = append(blocks, cur)
			previous = ""
		case inGo:
			code.WriteString(line)
			code.WriteByte('\n')
		case trimmed != "":
			previous = trimmed
		}
	}
	return blocks
}

// PackageName returns the name in the block's package clause, or "" when
// the block has none (comments and blank lines before it are allowed).
func PackageName(code string) string {
	for _, line := range strings.Split(code, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "//"):
			continue
		case strings.HasPrefix(line, "package "):
			return strings.TrimSpace(strings.TrimPrefix(line, "package "))
		}
		return ""
	}
	return ""
}
