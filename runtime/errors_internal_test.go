package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestWrapPrefixOnce: however deep the wrapping, an error's text starts
// "cqrsgen: " once and never repeats it, and errors.Is still sees the
// cause.
func TestWrapPrefixOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	inner := fmt.Errorf("cqrsgen: wait: %w", ctx.Err())
	err := wrapf(inner, "subscription after position %d", 7)
	want := "cqrsgen: subscription after position 7: wait: context canceled"
	if err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if !errors.Is(err, context.Canceled) {
		t.Error("errors.Is lost the cause")
	}
	deeper := wrapf(wrapf(ErrClosed, "read"), "projection %q", "p")
	if got := deeper.Error(); strings.Count(got, "cqrsgen:") != 1 || !errors.Is(deeper, ErrClosed) {
		t.Errorf("got %q (errors.Is ErrClosed: %v)", got, errors.Is(deeper, ErrClosed))
	}
}
