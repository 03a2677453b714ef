package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/postgres/pgtest"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
	"github.com/jackc/pgx/v5"
)

// fillVerify writes three streams, a snapshot, a checkpoint and an
// idempotency key into a fresh schema and returns the store and schema.
func fillVerify(t *testing.T) (*Store, string) {
	t.Helper()
	schema := pgtest.Schema(t)
	s := openIn(t, schema)
	ctx := context.Background()
	at := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	appendN := func(st runtime.StreamID, n int, key string) {
		var evs []runtime.EventData
		for i := range n {
			evs = append(evs, runtime.EventData{Name: fmt.Sprintf("E%d", i), Schema: 1, Time: at, Data: []byte{0x80}})
		}
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: evs, IdempotencyKey: key}); err != nil {
			t.Fatal(err)
		}
	}
	appendN(runtime.StreamID{Type: "account", ID: "a1"}, 2, "")
	appendN(runtime.StreamID{Type: "order", ID: "o1"}, 1, "req-1")
	appendN(runtime.StreamID{Type: "account", ID: "a2"}, 3, "")
	appendN(runtime.StreamID{Type: "account", ID: "a1"}, 1, "")
	if err := s.SaveSnapshot(ctx, runtime.Snapshot{Stream: runtime.StreamID{Type: "account", ID: "a1"}, Version: 2, Schema: "x", Data: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "proj", 5); err != nil {
		t.Fatal(err)
	}
	return s, schema
}

func TestVerifyFindsDamage(t *testing.T) {
	tests := []struct {
		name string
		sql  []string // {{S}} is the schema
		want []string
	}{
		{"clean", nil, nil},
		{"bad metadata", []string{`UPDATE {{S}}.events SET metadata = '\x05'::bytea WHERE (commit_id, off) = (SELECT commit_id, off FROM {{S}}.event_log WHERE position = 4)`}, []string{ProblemRecord}},
		{"deleted event", []string{`DELETE FROM {{S}}.events WHERE (commit_id, off) = (SELECT commit_id, off FROM {{S}}.event_log WHERE position = 5)`},
			[]string{ProblemPositionGap, ProblemVersionGap}},
		{"deleted last event", []string{`DELETE FROM {{S}}.events WHERE (commit_id, off) = (SELECT commit_id, off FROM {{S}}.event_log WHERE position = 7)`},
			[]string{ProblemIndexAhead, ProblemHead}},
		{"streams row behind", []string{`UPDATE {{S}}.streams SET version = 1 WHERE stream_id = 'a2'::bytea`}, []string{ProblemIndexMissing}},
		{"head ahead", []string{`UPDATE {{S}}.log_head SET position = 9`}, []string{ProblemHead}},
		{"durable head ahead", []string{`UPDATE {{S}}.log_durable SET position = 9`}, []string{ProblemHead}},
		{"checkpoint and snapshot ahead", []string{
			`UPDATE {{S}}.checkpoints SET position = 99`,
			`UPDATE {{S}}.snapshots SET version = 7`,
		}, []string{ProblemSnapshot, ProblemCheckpoint}},
		{"idempotency past its stream", []string{`UPDATE {{S}}.idempotency SET version = 5`}, []string{ProblemIdempotency}},
		{"positions out of order", []string{`DO $$
DECLARE c1 bigint; o1 bigint; c2 bigint; o2 bigint;
BEGIN
	SELECT commit_id, off INTO c1, o1 FROM {{S}}.event_log WHERE position = 1;
	SELECT commit_id, off INTO c2, o2 FROM {{S}}.event_log WHERE position = 2;
	UPDATE {{S}}.events SET commit_id = -1 WHERE commit_id = c1 AND off = o1;
	UPDATE {{S}}.events SET commit_id = c1, off = o1 WHERE commit_id = c2 AND off = o2;
	UPDATE {{S}}.events SET commit_id = c2, off = o2 WHERE commit_id = -1;
END $$`}, []string{ProblemVersionOrder}},
		{"row without its commit", []string{`UPDATE {{S}}.events SET commit_id = 999 WHERE (commit_id, off) = (SELECT commit_id, off FROM {{S}}.event_log WHERE position = 3)`},
			[]string{ProblemPositionGap, ProblemRecord}},
		{"commits overlap", []string{`UPDATE {{S}}.commits SET first = first - 1 WHERE last = 6`},
			[]string{ProblemPositionGap, ProblemPositionGap, ProblemRecord}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, schema := fillVerify(t)
			S := pgx.Identifier{schema}.Sanitize()
			for _, q := range tt.sql {
				if err := pgtest.Exec(context.Background(), strings.ReplaceAll(q, "{{S}}", S)); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := s.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, p := range rep.Problems {
				kinds = append(kinds, p.Kind)
				t.Log(p)
			}
			if !slices.Equal(kinds, tt.want) {
				t.Errorf("problems %q, want %q", kinds, tt.want)
			}
			if rep.OK() != (len(tt.want) == 0) {
				t.Errorf("OK() = %v", rep.OK())
			}
			if tt.sql == nil {
				want := storekit.VerifyReport{Events: 7, Streams: 3, Snapshots: 1, Checkpoints: 1, IdempotencyKeys: 1, Head: 7}
				rep.Problems = nil
				if fmt.Sprint(rep) != fmt.Sprint(want) {
					t.Errorf("report %+v, want %+v", rep, want)
				}
			}
		})
	}
}

func TestStreamsListing(t *testing.T) {
	s, _ := fillVerify(t)
	ctx := context.Background()
	list := func(typ string, after runtime.StreamID, limit int) []string {
		t.Helper()
		var out []string
		for info, err := range s.Streams(ctx, typ, after) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s v%d p%d", info.Stream, info.Version, info.LastPosition))
			if len(out) == limit {
				break
			}
		}
		return out
	}
	tests := []struct {
		name  string
		typ   string
		after runtime.StreamID
		limit int
		want  []string
	}{
		{"all", "", runtime.StreamID{}, 0, []string{`account/"a1" v3 p7`, `account/"a2" v3 p6`, `order/"o1" v1 p3`}},
		{"type", "order", runtime.StreamID{}, 0, []string{`order/"o1" v1 p3`}},
		{"page 2", "", runtime.StreamID{Type: "account", ID: "a1"}, 1, []string{`account/"a2" v3 p6`}},
		{"type after", "account", runtime.StreamID{Type: "account", ID: "a2"}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := list(tt.typ, tt.after, tt.limit); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
