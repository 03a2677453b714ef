package saga

import (
	"context"
	"errors"
	"fmt"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/retry"
)

// WaitFor blocks until instance id of saga, as persisted in store,
// satisfies done, and returns it: a request handler that must answer
// "transfer completed", or a test, waits for the runner (in this process or
// another) instead of polling Load. A nil done waits for a final status
// (Status.Final). done is called each time WaitFor loads the instance,
// first as it is now, which may be an instance never started (Version 0,
// see Load); versions written between two loads are not all seen.
//
// It does not poll: it sleeps in the store's Wait until the log grows,
// then reads the instance stream's version and loads the instance only if
// its stream moved, so an append to another stream costs one version read.
// It neither starts the saga nor knows whether a runner runs, so bound ctx:
// when ctx is done first, WaitFor returns an error wrapping ctx.Err()
// together with the last instance it loaded (nil if none), which tells the
// caller where the instance stood. An unavailable store
// (runtime.ErrUnavailable) is waited out; any other error of the store or
// of Load (runtime.ErrClosed, a *runtime.DecodeError, an invalid saga or
// id) is returned, again with the last instance loaded.
func WaitFor[S any](ctx context.Context, store runtime.Store, saga *Saga[S], id string, done func(*Instance[S]) bool) (*Instance[S], error) {
	if err := saga.validate(); err != nil {
		return nil, err
	}
	if done == nil {
		done = func(in *Instance[S]) bool { return in.Status.Final() }
	}
	w := &waiter[S]{store: store, saga: saga, id: id, stream: sagaStream(saga.Name, id), done: done}
	for outages := 0; ; {
		ok, err := w.step(ctx)
		switch {
		case ok:
			return w.last, nil
		case err == nil:
			outages = 0
		case ctx.Err() != nil:
			return w.last, fmt.Errorf("cqrsgen: waiting for saga %q instance %q: %w", saga.Name, id, ctx.Err())
		case errors.Is(err, runtime.ErrUnavailable):
			retry.Sleep(ctx, retry.UnavailableDelay(outages))
			outages++
		default:
			return w.last, fmt.Errorf("cqrsgen: waiting for saga %q instance %q: %w", saga.Name, id, err)
		}
	}
}

// waiter is the state of one WaitFor.
type waiter[S any] struct {
	store  runtime.Store
	saga   *Saga[S]
	id     string
	stream runtime.StreamID
	done   func(*Instance[S]) bool

	// head is a log position read before the last look at the instance,
	// once haveHead: an append the look missed lies past it, so waiting
	// for the log to pass head loses no change of the instance.
	head     uint64
	haveHead bool
	last     *Instance[S] // the last instance loaded, nil before the first
}

// step looks at the instance once (loading it only if its stream moved
// since the last load) and, unless done holds (ok), waits for the log to
// grow past head.
func (w *waiter[S]) step(ctx context.Context) (ok bool, err error) {
	if !w.haveHead {
		if w.head, err = w.store.Head(ctx); err != nil {
			return false, err
		}
		w.haveHead = true
	}
	moved := w.last == nil
	if !moved {
		v, err := w.store.StreamVersion(ctx, w.stream)
		if err != nil {
			return false, err
		}
		moved = v != w.last.Version
	}
	if moved {
		in, err := Load(ctx, w.store, w.saga, w.id)
		if err != nil {
			return false, err
		}
		if w.last = in; w.done(in) {
			return true, nil
		}
	}
	head, err := w.store.Wait(ctx, w.head)
	if err != nil {
		return false, err
	}
	w.head = head
	return false, nil
}
