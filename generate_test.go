package cqrsgen_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/internal/codegen"
	"github.com/cqrsgen/cqrsgen/internal/codegen/load"
	"github.com/cqrsgen/cqrsgen/internal/codegen/testmod"
	"github.com/cqrsgen/cqrsgen/internal/codegen/write"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/golden and testdata/errors")

const goldenName = "cqrs_gen.go.golden"

// toolPath is the cqrsgen binary built once by TestMain, so that tests
// exercise the real command line: flags, output, exit status.
var toolPath string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "cqrsgen-tool-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	toolPath = filepath.Join(dir, "cqrsgen")
	if runtime.GOOS == "windows" {
		toolPath += ".exe"
	}
	cmd := exec.Command("go", "build", "-o", toolPath, "./cmd/cqrsgen")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building cqrsgen: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	testmod.Cleanup()
	os.Exit(code)
}

// tool runs cqrsgen in dir and returns its stderr and exit status.
func tool(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	_, stderr, code := toolOutput(t, dir, args...)
	return stderr, code
}

// toolOutput runs cqrsgen in dir and returns its stdout, stderr and exit
// status.
func toolOutput(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(toolPath, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOSUMDB=off", "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &exit):
		return stdout.String(), stderr.String(), exit.ExitCode()
	}
	t.Fatalf("running cqrsgen: %v", err)
	return "", "", -1
}

func cases(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	if len(out) == 0 {
		t.Fatalf("no cases in %s", dir)
	}
	return out
}

// generateCase runs the pipeline (no writes) on one testdata package.
func generateCase(t *testing.T, dir string) []byte {
	t.Helper()
	return generateFile(t, dir, codegen.DefaultOutput)
}

// generateFile runs the pipeline (no writes) on one testdata package and
// returns its output named base (cqrs_gen.go or cqrs.lock).
func generateFile(t *testing.T, dir, base string) []byte {
	t.Helper()
	outs, err := codegen.Generate(codegen.Config{Dir: dir, Patterns: []string{"."}})
	if err != nil {
		t.Fatalf("generate %s: %v", dir, err)
	}
	for _, o := range outs {
		if filepath.Base(o.Path) == base && o.Src != nil {
			return o.Src
		}
	}
	t.Fatalf("generate %s: no %s among %d outputs", dir, base, len(outs))
	return nil
}

// TestGolden generates every testdata/golden/<case> package and compares
// the output with <case>/cqrs_gen.go.golden (-update rewrites it).
func TestGolden(t *testing.T) {
	for _, name := range cases(t, "testdata/golden") {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "golden", name)
			got := generateCase(t, dir)
			golden := filepath.Join(dir, goldenName)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the generated output (-want +got):\n%s", golden, diff(string(want), string(got)))
			}
			if _, err := os.Stat(filepath.Join(dir, codegen.DefaultOutput)); err == nil {
				t.Errorf("generating %s wrote %s", dir, codegen.DefaultOutput)
			}
		})
	}
}

// TestGoldenCompiles builds and vets every golden output with its input,
// in a module outside this repository, as a user would.
func TestGoldenCompiles(t *testing.T) {
	files := map[string]string{}
	for _, name := range cases(t, "testdata/golden") {
		dir := filepath.Join("testdata", "golden", name)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			target := e.Name()
			if target == goldenName {
				target = codegen.DefaultOutput
			}
			files[name+"/"+target] = string(data)
		}
	}
	dir := testmod.Shared(t).Add(t, "golden", files)
	testmod.MustGo(t, dir, "vet", "./...")
}

// TestErrors runs the cqrsgen command on every testdata/errors/<case>
// package and checks that it exits 1, prints exactly <case>/stderr.golden
// (every problem, sorted, as ./file:line:col: message) and writes nothing.
func TestErrors(t *testing.T) {
	for _, name := range cases(t, "testdata/errors") {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "errors", name)
			before := listDir(t, dir)
			stderr, code := tool(t, dir)
			after := listDir(t, dir)
			if !slices.Equal(before, after) {
				t.Errorf("cqrsgen changed the files of %s: before %v, after %v", dir, before, after)
				for _, f := range after {
					if !slices.Contains(before, f) {
						os.Remove(filepath.Join(dir, f))
					}
				}
			}
			if code != 1 {
				t.Errorf("exit status %d, want 1; stderr:\n%s", code, stderr)
			}
			golden := filepath.Join(dir, "stderr.golden")
			if *update {
				if err := os.WriteFile(golden, []byte(stderr), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if stderr != string(want) {
				t.Errorf("stderr differs from %s (-want +got):\n%s", golden, diff(string(want), stderr))
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if !slices.IsSortedFunc(lines, comparePositioned) {
				t.Errorf("problems are not sorted by position:\n%s", stderr)
			}
		})
	}
}

// comparePositioned orders "./file:line:col: msg" lines by file, then
// line and column numerically.
func comparePositioned(a, b string) int {
	pa, pb := strings.SplitN(a, ":", 4), strings.SplitN(b, ":", 4)
	if len(pa) < 4 || len(pb) < 4 {
		return strings.Compare(a, b)
	}
	if c := strings.Compare(pa[0], pb[0]); c != 0 {
		return c
	}
	for i := 1; i <= 2; i++ {
		var x, y int
		fmt.Sscan(pa[i], &x)
		fmt.Sscan(pb[i], &y)
		if x != y {
			return x - y
		}
	}
	return strings.Compare(pa[3], pb[3])
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestDeterministic generates each golden case twice, and again with the
// package's files handed to the pipeline in shuffled orders: the bytes
// must not change.
func TestDeterministic(t *testing.T) {
	for _, name := range cases(t, "testdata/golden") {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "golden", name)
			first := generateCase(t, dir)
			if again := generateCase(t, dir); !bytes.Equal(first, again) {
				t.Fatalf("second run differs:\n%s", diff(string(first), string(again)))
			}
			pkgs, problems, err := load.Load(load.Config{Dir: dir, Patterns: []string{"."}, Output: codegen.DefaultOutput})
			if err != nil || len(problems) > 0 || len(pkgs) != 1 {
				t.Fatalf("load: %v %v (%d packages)", err, problems, len(pkgs))
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range 5 {
				pkg := pkgs[0]
				rng.Shuffle(len(pkg.Files), func(i, j int) { pkg.Files[i], pkg.Files[j] = pkg.Files[j], pkg.Files[i] })
				out, errs := codegen.Package(pkg)
				if len(errs) > 0 || out == nil {
					t.Fatalf("shuffle %d: %v", i, errs)
				}
				// Generate formats; Package does not.
				outs := []write.Output{*out}
				if err := write.Format(outs); err != nil {
					t.Fatal(err)
				}
				if got := outs[0].Src; !bytes.Equal(got, first) {
					t.Fatalf("shuffle %d: output differs:\n%s", i, diff(string(first), string(got)))
				}
			}
		})
	}
}

// TestCheckAndWrite drives the command on a package of the shared module:
// -check on a missing file, generation, -check when fresh, unchanged output
// left alone, -check when stale, and removal when the directives are gone.
func TestCheckAndWrite(t *testing.T) {
	src, err := os.ReadFile("testdata/golden/account/account.go")
	if err != nil {
		t.Fatal(err)
	}
	dir := testmod.Shared(t).Add(t, "check/account", map[string]string{"account.go": string(src)})
	gen := filepath.Join(dir, codegen.DefaultOutput)

	stderr, code := tool(t, dir, "-check")
	if code != 1 || !strings.Contains(stderr, "./"+codegen.DefaultOutput+": stale") {
		t.Fatalf("-check without a generated file: exit %d, stderr %q; want 1 naming the file", code, stderr)
	}
	if _, err := os.Stat(gen); err == nil {
		t.Fatal("-check wrote the file")
	}

	if stderr, code := tool(t, dir); code != 0 {
		t.Fatalf("generate: exit %d\n%s", code, stderr)
	}
	golden, err := os.ReadFile("testdata/golden/account/" + goldenName)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(gen); !bytes.Equal(got, golden) {
		t.Fatalf("written file differs from the golden output:\n%s", diff(string(golden), string(got)))
	}
	if stderr, code := tool(t, dir, "-check"); code != 0 || stderr != "" {
		t.Fatalf("-check when fresh: exit %d, stderr %q", code, stderr)
	}

	// Unchanged output is not rewritten: the old mtime survives.
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(gen, old, old); err != nil {
		t.Fatal(err)
	}
	if stderr, code := tool(t, dir); code != 0 {
		t.Fatalf("regenerate: exit %d\n%s", code, stderr)
	}
	if fi, err := os.Stat(gen); err != nil || !fi.ModTime().Equal(old) {
		t.Fatalf("unchanged output was rewritten (mtime %v, want %v)", fi.ModTime(), old)
	}

	// A new event makes the file stale; -check says so and writes nothing.
	stale := string(src) + "\n//cqrs:event Account\ntype Closed struct{}\n\nfunc (a *Account) ApplyClosed(Closed) { a.Open = false }\n"
	if err := os.WriteFile(filepath.Join(dir, "account.go"), []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr, code = tool(t, dir, "-check")
	if code != 1 || !strings.Contains(stderr, codegen.DefaultOutput) {
		t.Fatalf("-check when stale: exit %d, stderr %q; want 1 naming the file", code, stderr)
	}
	if got, _ := os.ReadFile(gen); !bytes.Equal(got, golden) {
		t.Fatal("-check modified the stale file")
	}
	if stderr, code := tool(t, dir); code != 0 {
		t.Fatalf("regenerate after change: exit %d\n%s", code, stderr)
	}
	if got, _ := os.ReadFile(gen); !bytes.Contains(got, []byte("ClosedEventName")) {
		t.Fatal("regenerated file lacks the new event")
	}

	// Without directives the generated file is obsolete and removed.
	plain := "package account\n\n// Account has no directives any more.\ntype Account struct{}\n"
	if err := os.WriteFile(filepath.Join(dir, "account.go"), []byte(plain), 0o644); err != nil {
		t.Fatal(err)
	}
	if stderr, code := tool(t, dir, "-check"); code != 1 || !strings.Contains(stderr, "removed") {
		t.Fatalf("-check with an obsolete file: exit %d, stderr %q", code, stderr)
	}
	if stderr, code := tool(t, dir); code != 0 {
		t.Fatalf("generate with no directives: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(gen); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("obsolete generated file still exists (%v)", err)
	}
}

// TestUsage checks the command-line errors: exit status 2.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"-nosuchflag"}, {"-output", "sub/x.go"}, {"-output", "x.txt"}, {"-output", "x_test.go"}} {
		stderr, code := tool(t, ".", args...)
		if code != 2 || !strings.Contains(stderr, "usage: cqrsgen") {
			t.Errorf("cqrsgen %v: exit %d, stderr %q; want 2 with usage", args, code, stderr)
		}
	}
}

// TestHelpAndVersion checks that -h lists every flag on stdout and
// succeeds (a user asked for it), and that -version names the module
// version.
func TestHelpAndVersion(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		stdout, stderr, code := toolOutput(t, ".", arg)
		if code != 0 || stderr != "" {
			t.Errorf("cqrsgen %s: exit %d, stderr %q; want 0 and nothing on stderr", arg, code, stderr)
		}
		for _, flag := range []string{"-check", "-accept-breaking", "-output", "-version", "usage: cqrsgen"} {
			if !strings.Contains(stdout, flag) {
				t.Errorf("cqrsgen %s does not mention %s:\n%s", arg, flag, stdout)
			}
		}
	}
	stdout, stderr, code := toolOutput(t, ".", "-version")
	if code != 0 || stderr != "" || !regexp.MustCompile(`^cqrsgen (v\d+\.\d+\.\d+|\(devel\))\S*( .*)?\n$`).MatchString(stdout) {
		t.Errorf("cqrsgen -version: exit %d, stdout %q, stderr %q; want 0 and \"cqrsgen <version>\"", code, stdout, stderr)
	}
}

// TestE2E generates code for the golden account package in the shared
// module outside this repository, then vets it and runs the behaviour
// tests of testdata/e2e/account on the generated repository over the
// memory store, pointers included.
func TestE2E(t *testing.T) {
	src, err := os.ReadFile("testdata/golden/account/account.go")
	if err != nil {
		t.Fatal(err)
	}
	files := testmod.Files(t, "testdata/e2e/account", ".")
	files["account.go"] = string(src)
	dir := testmod.Shared(t).Add(t, "account", files)
	if stderr, code := tool(t, dir); code != 0 {
		t.Fatalf("generate: exit %d\n%s", code, stderr)
	}
	testmod.MustGo(t, dir, "vet", "./...")
	out := testmod.MustGo(t, dir, "test", "-race", "-count=1", "-v", "./...")
	for _, name := range []string{"TestBehaviour", "TestPointers", "TestTablesAtPackageInit"} {
		if !strings.Contains(out, "--- PASS: "+name) {
			t.Fatalf("%s did not run:\n%s", name, out)
		}
	}
}

// diff is a small line diff (longest common subsequence) in unified style,
// enough to read a golden mismatch.
func diff(want, got string) string {
	a, b := strings.Split(want, "\n"), strings.Split(got, "\n")
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&sb, "@@ %d +%s\n", j+1, b[j])
			j++
		default:
			fmt.Fprintf(&sb, "@@ %d -%s\n", i+1, a[i])
			i++
		}
	}
	return sb.String()
}

// syntheticPackage writes a package of aggregates × events (each event
// with three fields, each aggregate with one command) for the generation
// benchmark.
func syntheticPackage(aggregates, events int) string {
	var sb strings.Builder
	sb.WriteString("package synthetic\n\nimport \"time\"\n\nvar _ time.Time\n")
	for a := range aggregates {
		fmt.Fprintf(&sb, "\n//cqrs:aggregate snapshot=100\ntype Agg%d struct {\n\tN int64\n\tName string\n\tAt time.Time\n}\n", a)
		fmt.Fprintf(&sb, "\n//cqrs:command Agg%d\ntype Cmd%d struct{ N int64 }\n", a, a)
		fmt.Fprintf(&sb, "\nfunc (s *Agg%d) HandleCmd%d(c Cmd%d) ([]Agg%dEvent, error) { return []Agg%dEvent{Ev%d_0{N: c.N}}, nil }\n", a, a, a, a, a, a)
		for e := range events {
			fmt.Fprintf(&sb, "\n//cqrs:event Agg%d\ntype Ev%d_%d struct {\n\tN int64\n\tLabel string\n\tTags []string\n}\n", a, a, e)
			fmt.Fprintf(&sb, "\nfunc (s *Agg%d) ApplyEv%d_%d(e Ev%d_%d) { s.N += e.N }\n", a, a, e, a, e)
		}
	}
	return sb.String()
}

// BenchmarkGenerate measures a whole generation (load through go list and
// the type checker, parse, build, validate, emit, format) of a package of
// 50 aggregates with 10 events each.
func BenchmarkGenerate(b *testing.B) {
	mod := testmod.New(b, "example.com/bench", map[string]string{"synthetic/s.go": syntheticPackage(50, 10)})
	dir := filepath.Join(mod, "synthetic")
	b.Setenv("GOFLAGS", "-mod=mod")
	b.Setenv("GOPROXY", "off")
	var size int
	for b.Loop() {
		outs, err := codegen.Generate(codegen.Config{Dir: dir, Patterns: []string{"."}})
		if err != nil {
			b.Fatal(err)
		}
		size = len(outs[0].Src)
	}
	b.ReportMetric(float64(size), "output-bytes")
}

// BenchmarkEmit measures the pure part (parse directives, build, validate,
// emit, format) on an already loaded package of 50 aggregates × 10 events.
func BenchmarkEmit(b *testing.B) {
	mod := testmod.New(b, "example.com/bench", map[string]string{"synthetic/s.go": syntheticPackage(50, 10)})
	dir := filepath.Join(mod, "synthetic")
	b.Setenv("GOFLAGS", "-mod=mod")
	b.Setenv("GOPROXY", "off")
	pkgs, problems, err := load.Load(load.Config{Dir: dir, Patterns: []string{"."}, Output: codegen.DefaultOutput})
	if err != nil || len(problems) > 0 {
		b.Fatal(err, problems)
	}
	for b.Loop() {
		out, errs := codegen.Package(pkgs[0])
		if len(errs) > 0 {
			b.Fatal(errs)
		}
		if err := write.Format([]write.Output{*out}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDirectivesDocCurrent checks that docs/directives.md quotes every
// error case's input and exact output, so the reference cannot drift from
// the tool.
func TestDirectivesDocCurrent(t *testing.T) {
	doc, err := os.ReadFile("docs/directives.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range cases(t, "testdata/errors") {
		stderr, err := os.ReadFile(filepath.Join("testdata", "errors", name, "stderr.golden"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(doc, stderr) {
			t.Errorf("docs/directives.md lacks the current output of testdata/errors/%s:\n%s", name, stderr)
		}
	}
}
