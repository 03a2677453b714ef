package load

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLoadSeveralPackagesHidesOnlyOwnOutput loads two packages at once, one
// importing the other's generated identifiers: the importer must type-check
// against the real generated file, while the generated package itself is
// seen without it.
func TestLoadSeveralPackagesHidesOnlyOwnOutput(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":         "module example.com/m\n\ngo 1.24\n",
		"a/a.go":         "package a\n\ntype Account struct{}\n",
		"a/cqrs_gen.go":  Header + "\n\npackage a\n\nfunc NewAccountRepository() int { return 1 }\n",
		"b/b.go":         "package b\n\nimport \"example.com/m/a\"\n\nvar X = a.NewAccountRepository()\n",
		"c/c.go":         "package c\n\nvar Y = 1\n",
		"c/cqrs_gen.go":  Header + "\n\npackage c\n",
		"d/d_no_gen.go":  "package d\n\nimport \"example.com/m/c\"\n\nvar Z = c.Y\n",
		"a/more_user.go": "package a\n\nvar _ = Account{}\n",
	}
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off")
	pkgs, problems, err := Load(Config{Dir: dir, Patterns: []string{"./..."}, Output: "cqrs_gen.go", Env: env})
	if err != nil || len(problems) > 0 {
		t.Fatalf("Load: %v %v", err, problems)
	}
	byPath := map[string]*Package{}
	for _, p := range pkgs {
		byPath[p.Path] = p
	}
	if len(byPath) != 4 {
		t.Fatalf("loaded %d packages, want 4", len(byPath))
	}
	if b := byPath["example.com/m/b"]; len(b.TypeErrors) != 0 {
		t.Fatalf("importer of a generated package has type errors: %v", b.TypeErrors)
	}
	a := byPath["example.com/m/a"]
	if !a.OutputExists || len(a.Files) != 2 {
		t.Fatalf("package a: OutputExists=%v, %d user files (want true, 2)", a.OutputExists, len(a.Files))
	}
	if a.Types.Scope().Lookup("NewAccountRepository") != nil {
		t.Fatal("package a was type-checked with its generated file")
	}
	if b := byPath["example.com/m/b"]; b.OutputExists {
		t.Fatal("package b has no generated file")
	}
}
