package main

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
