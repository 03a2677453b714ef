package doccheck

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/internal/codegen/testmod"
)

func TestBlocks(t *testing.T) {
	md := "# T\n\n```go\npackage a\n```\n\n<!-- fragment -->\n```go\nx := 1\n```\n\n```sh\nls\n```\n"
	got := Blocks("t.md", []byte(md))
	if len(got) != 2 {
		t.Fatalf("got %d blocks: %+v", len(got), got)
	}
	if got[0].Line != 4 || got[0].Code != "package a\n" || got[0].Fragment {
		t.Errorf("block 0 = %+v", got[0])
	}
	if got[1].Line != 9 || !got[1].Fragment || got[1].Code != "x := 1\n" {
		t.Errorf("block 1 = %+v", got[1])
	}
	if PackageName("// c\n\npackage main\n") != "main" || PackageName("x := 1") != "" {
		t.Error("PackageName")
	}
}

func TestImports(t *testing.T) {
	code := "// fmt.Println in a comment\nfunc f(ctx context.Context) { s := \"errors.New\"; _ = s; runtime.X(); a.fmt.Y() }\n"
	want := []string{"context", "github.com/cqrsgen/cqrsgen/runtime"}
	if got := Imports(code); !reflect.DeepEqual(got, want) {
		t.Fatalf("Imports = %v, want %v", got, want)
	}
}

// TestDocsCompile builds the Go blocks of README.md and docs/*.md: each
// complete file in a module of its own, and each document's declaration
// blocks together as one package. Where the code declares cqrs directives
// cqrsgen runs first, as a user's go generate would.
func TestDocsCompile(t *testing.T) {
	root := testmod.Root(t)
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append([]string{filepath.Join(root, "README.md")}, docs...)
	compiled := 0
	for _, doc := range docs {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, doc)
		var decls []Block
		for _, b := range Blocks(rel, data) {
			switch {
			case b.Fragment:
			case PackageName(b.Code) == "":
				decls = append(decls, b)
			default:
				compiled++
				checkCompiles(t, fmt.Sprintf("%s:%d", b.File, b.Line), b.Code)
			}
		}
		if len(decls) > 0 {
			compiled++
			checkCompiles(t, rel, Assemble("doc", decls))
		}
	}
	if compiled == 0 {
		t.Fatal("no Go blocks found in README.md and docs/")
	}
}

func checkCompiles(t *testing.T, name, code string) {
	t.Run(name, func(t *testing.T) {
		t.Parallel()
		dir := testmod.New(t, "example.com/doc", map[string]string{"doc.go": code})
		if strings.Contains(code, "//cqrs:") {
			testmod.MustGo(t, dir, "run", testmod.ModulePath+"/cmd/cqrsgen", ".")
		}
		if out, err := testmod.Go(dir, "vet", "."); err != nil {
			t.Fatalf("%s does not compile:\n%s\nsource:\n%s", name, out, numbered(code))
		}
		if PackageName(code) == "main" {
			// A documented program must also run cleanly.
			if out, err := testmod.Go(dir, "run", "."); err != nil {
				t.Fatalf("%s fails when run: %v\n%s", name, err, out)
			}
		}
	})
}

func numbered(code string) string {
	var b strings.Builder
	for i, line := range strings.Split(code, "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, line)
	}
	return b.String()
}
