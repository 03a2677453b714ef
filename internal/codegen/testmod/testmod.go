// Package testmod builds throwaway Go modules that depend on this
// repository, for tests that must compile and run generated or documented
// code the way a user would: outside this module, through the go command.
//
// The module reuses this repository's requirements and go.sum and resolves
// everything from the local module cache (GOPROXY=off), so tests never
// touch the network and never edit the repository's go.mod. Tests of one
// test binary share one module (Shared), each in a directory of its own,
// so the module is written and its graph loaded once per run.
package testmod

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// ModulePath is this repository's module path.
const ModulePath = "github.com/cqrsgen/cqrsgen"

// Root returns the repository root: the directory of the go.mod that
// declares ModulePath, found from this source file.
func Root(t testing.TB) string {
	t.Helper()
	root, err := findRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func findRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("testmod: cannot locate source file")
	}
	dir := filepath.Dir(file)
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module "+ModulePath+"\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("testmod: no go.mod for %s above %s", ModulePath, file)
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
	dir := t.TempDir()
	if err := create(dir, name); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, files)
	return dir
}

// create writes go.mod and go.sum of a module named name into dir.
func create(dir, name string) error {
	root, err := findRoot()
	if err != nil {
		return err
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return err
	}
	gosum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		return err
	}
	mod := moduleLine.ReplaceAllLiteralString(string(gomod), "module "+name)
	// A tool directive of this repository would name a package the new
	// module does not contain.
	mod = regexp.MustCompile(`(?m)^tool .*$`).ReplaceAllLiteralString(mod, "")
	mod += "\nrequire " + ModulePath + " v0.0.0\n\nreplace " + ModulePath + " => " + root + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "go.sum"), gosum, 0o644)
}

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// SharedPath is the module path of the shared module.
const SharedPath = "example.com/e2e"

// Module is the module the tests of one test binary share: each test adds
// its packages under a directory of its own (Add) and runs the go command
// there, so `./...` names its packages only.
type Module struct {
	// Dir is the module's root directory.
	Dir string

	mu   sync.Mutex
	used map[string]bool
}

var shared struct {
	once sync.Once
	mod  *Module
	err  error
}

// Shared returns the module shared by this test binary's tests, named
// SharedPath, creating it on first use. TestMain removes it with Cleanup.
func Shared(t testing.TB) *Module {
	t.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "cqrsgen-e2e-")
		if err == nil {
			err = create(dir, SharedPath)
		}
		shared.mod, shared.err = &Module{Dir: dir, used: map[string]bool{}}, err
	})
	if shared.err != nil {
		t.Fatalf("testmod: shared module: %v", shared.err)
	}
	return shared.mod
}

// Cleanup removes the shared module, if one was created. Call it from
// TestMain after m.Run.
func Cleanup() {
	if shared.mod != nil {
		os.RemoveAll(shared.mod.Dir)
	}
}

// Add writes files (relative slash paths → contents) under the directory
// sub of the module and returns that directory; its packages' import paths
// start with SharedPath + "/" + sub. A directory belongs to one test: a
// second Add of the same sub fails the test.
func (m *Module) Add(t testing.TB, sub string, files map[string]string) string {
	t.Helper()
	m.mu.Lock()
	taken := m.used[sub]
	m.used[sub] = true
	m.mu.Unlock()
	if taken {
		t.Fatalf("testmod: directory %s of the shared module is already in use", sub)
	}
	dir := filepath.Join(m.Dir, filepath.FromSlash(sub))
	writeFiles(t, dir, files)
	return dir
}

// Files reads the files of the directory dir (not its subdirectories) into
// a map for New or Add, under the slash path prefix + "/" + name.
func Files(t testing.TB, dir, prefix string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[prefix+"/"+e.Name()] = string(data)
	}
	return out
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
