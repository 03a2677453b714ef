package testmod

import (
	"strings"
	"testing"
)

func TestBuildsAgainstRepository(t *testing.T) {
	dir := New(t, "example.com/user", map[string]string{
		"main.go": `package main

import (
	"context"
	"fmt"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
)

func main() {
	s := memory.New()
	res, err := s.Append(context.Background(), runtime.AppendRequest{
		Stream: runtime.StreamID{Type: "T", ID: "1"},
		Events: []runtime.EventData{{Name: "E"}},
	})
	fmt.Println(res.LastPosition, err)
}
`,
	})
	out := MustGo(t, dir, "run", ".")
	if strings.TrimSpace(out) != "1 <nil>" {
		t.Fatalf("output %q", out)
	}
	if out, err := Go(dir, "build", "./missing"); err == nil {
		t.Fatalf("building a missing package succeeded: %s", out)
	}
}
