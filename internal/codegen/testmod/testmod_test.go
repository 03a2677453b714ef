package testmod

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// TestBuildsAgainstRepository runs testdata/user, a program of a module
// outside this repository that imports it, in a module of its own and in
// the shared one.
func TestBuildsAgainstRepository(t *testing.T) {
	files := Files(t, filepath.Join("testdata", "user"), ".")
	for name, dir := range map[string]string{
		"own":    New(t, "example.com/user", files),
		"shared": Shared(t).Add(t, "user", files),
	} {
		out := MustGo(t, dir, "run", ".")
		if strings.TrimSpace(out) != "1 <nil>" {
			t.Fatalf("%s module: output %q", name, out)
		}
		if out, err := Go(dir, "build", "./missing"); err == nil {
			t.Fatalf("%s module: building a missing package succeeded: %s", name, out)
		}
	}
	if first, again := Shared(t), Shared(t); first != again {
		t.Fatal("Shared returned two modules in one run")
	}
}
