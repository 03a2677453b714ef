package cqrsgen_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/internal/codegen/testmod"
)

// section returns the part of markdown under a level-2 heading, up to the
// next level-2 heading.
func section(t *testing.T, markdown, heading string) string {
	t.Helper()
	_, rest, ok := strings.Cut(markdown, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("no %q heading", heading)
	}
	rest, _, _ = strings.Cut(rest, "\n## ")
	return rest
}

// fenced returns the contents of the ```lang blocks of markdown, in order.
func fenced(markdown, lang string) []string {
	var blocks []string
	var cur *strings.Builder
	sc := bufio.NewScanner(strings.NewReader(markdown))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```"+lang:
			cur = &strings.Builder{}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return blocks
}

// TestInstallRecipe follows the guide's "Getting started" as a newcomer
// would, in a fresh module outside this repository: every shell command
// it shows (the clone replaced by this working tree), its main.go, and the
// program's documented output, twice (the second run reads the first
// one's events from disk). The go command runs without -mod=mod, so a
// missing go mod tidy fails here as it would for the user. README's
// install commands must be among the guide's. Then cqrsctl is installed
// as docs/operations.md says.
func TestInstallRecipe(t *testing.T) {
	root := testmod.Root(t)
	guide, err := os.ReadFile(filepath.Join(root, "docs", "guide.md"))
	if err != nil {
		t.Fatal(err)
	}
	start := section(t, string(guide), "## Getting started")
	shells, programs := fenced(start, "sh"), fenced(start, "go")
	if len(shells) != 2 || len(programs) != 1 {
		t.Fatalf("Getting started has %d sh and %d go blocks, want 2 (set up; generate and run) and 1 (main.go)", len(shells), len(programs))
	}

	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	installs := fenced(section(t, string(readme), "## Install"), "sh")
	if len(installs) != 1 {
		t.Fatalf("README's Install has %d sh blocks, want 1", len(installs))
	}
	for _, line := range strings.Split(strings.TrimSpace(installs[0]), "\n") {
		if !strings.Contains(shells[0], line+"\n") {
			t.Errorf("README's install line %q is not in the guide's tested recipe", line)
		}
	}

	dir := t.TempDir()
	env := append(os.Environ(), "GOPROXY=off", "GOSUMDB=off", "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
	run := func(block string) string {
		var last string
		for _, line := range strings.Split(block, "\n") {
			line = strings.TrimSpace(line)
			switch {
			case line == "", strings.HasPrefix(line, "#"):
				continue
			case line == "mkdir library && cd library":
				dir = filepath.Join(dir, "library")
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				continue
			case strings.HasPrefix(line, "git clone https://github.com/cqrsgen/cqrsgen ../cqrsgen"):
				continue // this working tree stands in for the clone
			case !strings.HasPrefix(line, "go "):
				t.Fatalf("the recipe has a step this test does not know: %q", line)
			}
			args := strings.Fields(strings.ReplaceAll(line, "=../cqrsgen", "="+root))[1:]
			cmd := exec.Command("go", args...)
			cmd.Dir, cmd.Env = dir, env
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: %v\n%s%s", line, err, stdout.String(), stderr.String())
			}
			last = stdout.String()
		}
		return last
	}
	run(shells[0])
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(programs[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if out := run(shells[1]); out != "Dune 1\n" {
			t.Fatalf("run %d printed %q, want the documented \"Dune 1\"", i+1, out)
		}
	}
	// cqrsctl as operations.md installs it, in the same module.
	ops, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	ctl := fenced(section(t, string(ops), "## cqrsctl"), "sh")
	if len(ctl) == 0 {
		t.Fatal("operations.md's cqrsctl section has no sh block")
	}
	if out := run(ctl[0]); !strings.Contains(out, "usage: cqrsctl") {
		t.Errorf("the cqrsctl install ended with %q, want its usage", out)
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(gomod, []byte("\tgithub.com/cqrsgen/cqrsgen v0.0.0\n")) && !bytes.Contains(gomod, []byte("require github.com/cqrsgen/cqrsgen v0.0.0\n")) {
		t.Errorf("go.mod does not require cqrsgen directly:\n%s", gomod)
	}
	for _, f := range []string{"cqrs_gen.go", "cqrs.lock"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("go generate did not write %s: %v", f, err)
		}
	}
}
