// Package testmod builds throwaway Go modules that depend on this
// repository, for tests that must compile and run generated or documented
// code the way a user would: outside this module, through the go command.
//
// The module reuses this repository's requirements and go.sum and resolves
// everything from the local module cache (GOPROXY=off), so tests never
// touch the network and never edit the repository's go.mod.
package testmod

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// ModulePath is this repository's module path.
const ModulePath = "github.com/cqrsgen/cqrsgen"

// Root returns the repository root: the directory of the go.mod that
// declares ModulePath, found from this source file.
func Root(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testmod: cannot locate source file")
	}
	dir := filepath.Dir(file)
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module "+ModulePath+"\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("testmod: no go.mod for %s above %s", ModulePath, file)
		}
		dir = parent
	}
}

var moduleLine = regexp.MustCompile(`(?m)^module .*$`)

// New writes a module named name into a fresh temporary directory, with
// files (relative slash paths → contents), and returns the directory. The
// module requires this repository (replaced by its working tree) and every
// module this repository requires, at the same versions.
func New(t testing.TB, name string, files map[string]string) string {
	t.Helper()
	root := Root(t)
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	gosum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	mod := moduleLine.ReplaceAllLiteralString(string(gomod), "module "+name)
	// A tool directive of this repository would name a package the new
	// module does not contain.
	mod = regexp.MustCompile(`(?m)^tool .*$`).ReplaceAllLiteralString(mod, "")
	mod += "\nrequire " + ModulePath + " v0.0.0\n\nreplace " + ModulePath + " => " + root + "\n"

	dir := t.TempDir()
	write := func(rel string, data []byte) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", []byte(mod))
	write("go.sum", gosum)
	for rel, content := range files {
		write(rel, []byte(content))
	}
	return dir
}

// Go runs the go command with args in dir, offline, and returns its
// combined output and error.
func Go(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GOPROXY=off", "GOSUMDB=off", "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// MustGo is Go that fails the test, showing the output, on error.
func MustGo(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := Go(dir, args...)
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return out
}
