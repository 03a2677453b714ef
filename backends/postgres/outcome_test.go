package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/postgres/pgtest"
	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestAnswerLostOutcomeUnknown sends appends through a proxy that forwards
// the request carrying the append to the server and then drops the
// connection to the store, so the append commits but its answer is lost.
// The store must say so: the error wraps ErrOutcomeUnknown (and
// runtime.ErrUnavailable), and the append is in the log.
func TestAnswerLostOutcomeUnknown(t *testing.T) {
	cases := []struct {
		name   string
		opts   []Option
		key    string
		others bool // as if another process appended: no lone path
		group  bool // straight to runGroup, as a group of one
	}{
		{"lone", nil, "", false, false},                          // appendLone: one statement
		{"keyed lone", nil, "k-lone", false, false},              // appendSync: call, reset, flush
		{"pipelined", []Option{WithGroups(0)}, "k", true, false}, // appendPipelined: BEGIN, call, COMMIT, flush
		{"group", nil, "", true, false},                          // groupPipeline: call, sync, flush, sync
		{"synchronous group", nil, "", false, true},              // groupPipeline alone: call, flush request, sync
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newCutProxy(t)
			schema := pgtest.Schema(t)
			s, err := Open(context.Background(), p.dsn, append([]Option{WithSchema(schema), WithNotify(false)}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			s.lone.others.Store(tc.others)
			direct := openIn(t, schema)
			st := runtime.StreamID{Type: "T", ID: "cut-" + strings.ReplaceAll(tc.name, " ", "-")}
			p.arm([]byte(st.ID))
			req := runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: storetest.Events(2), IdempotencyKey: tc.key}
			if tc.group {
				s.grouper.mu.Lock()
				s.grouper.inFlight++
				s.grouper.mu.Unlock()
				r := s.newGroupReq(req)
				s.runGroup([]*groupReq{r})
				err = (<-r.done).err
			} else {
				_, err = s.Append(t.Context(), req)
			}
			if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, runtime.ErrUnavailable) {
				t.Fatalf("append whose answer was lost: %v; want ErrOutcomeUnknown and runtime.ErrUnavailable", err)
			}
			t.Logf("append whose answer was lost: %v", err)
			// It committed: the server had the whole request.
			for {
				v, err := direct.StreamVersion(t.Context(), st)
				if err != nil {
					t.Fatal(err)
				}
				if v == 2 {
					break
				}
				select {
				case <-t.Context().Done():
					t.Fatalf("the append never showed: stream version %d", v)
				case <-time.After(10 * time.Millisecond):
				}
			}
		})
	}
}

// cutProxy forwards connections to the test server; once armed, from the
// first chunk a client sends that holds the marker on, the server's
// answers to that client are dropped, and its connection is closed 200 ms
// later.
type cutProxy struct {
	dsn string

	mu     sync.Mutex
	marker []byte
}

func (p *cutProxy) arm(marker []byte) {
	p.mu.Lock()
	p.marker = marker
	p.mu.Unlock()
}

// cut reports whether chunk holds the armed marker, disarming it.
func (p *cutProxy) cut(chunk []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.marker == nil || !bytes.Contains(chunk, p.marker) {
		return false
	}
	p.marker = nil
	return true
}

func newCutProxy(t *testing.T) *cutProxy {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cc := cfg.ConnConfig
	network, addr := "tcp", net.JoinHostPort(cc.Host, fmt.Sprint(cc.Port))
	if strings.HasPrefix(cc.Host, "/") {
		network, addr = "unix", fmt.Sprintf("%s/.s.PGSQL.%d", cc.Host, cc.Port)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	u := url.URL{Scheme: "postgres", User: url.UserPassword(cc.User, cc.Password), Host: ln.Addr().String(), Path: "/" + cc.Database, RawQuery: "sslmode=disable"}
	p := &cutProxy{dsn: u.String()}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial(network, addr)
			if err != nil {
				client.Close()
				continue
			}
			var muted atomic.Bool
			go func() {
				defer server.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := server.Read(buf)
					if n > 0 && !muted.Load() {
						if _, werr := client.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						client.Close()
						return
					}
				}
			}()
			go func() {
				defer server.Close()
				_, _ = io.Copy(writerFunc(func(b []byte) (int, error) {
					if !muted.Load() && p.cut(b) {
						// Whatever the client sends with it (the rest of the
						// pipeline) still goes through; the answers do not,
						// and the client's connection drops a moment later.
						muted.Store(true)
						time.AfterFunc(200*time.Millisecond, func() { client.Close() })
					}
					return server.Write(b)
				}), client)
			}()
		}
	}()
	return p
}

// writerFunc is an io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
