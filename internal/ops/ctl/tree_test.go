package ctl

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
)

func TestTree(t *testing.T) {
	b := pebbleBackend(t)
	s := b.open(t)
	ctx := context.Background()
	md := func(corr, cause string) map[string]string {
		m := map[string]string{}
		if corr != "" {
			m[runtime.MetadataCorrelation] = corr
		}
		if cause != "" {
			m[runtime.MetadataCausation] = cause
		}
		return m
	}
	for _, e := range []struct {
		typ, id, name string
		md            map[string]string
	}{
		{"order", "o1", "placed", md("req-1", "")},         // 1: root of req-1
		{"stock", "s1", "reserved", md("req-1", "1")},      // 2
		{"ship", "p1", "scheduled", md("req-1", "2")},      // 3
		{"mail", "m1", "sent", md("req-1", "1")},           // 4
		{"order", "o2", "placed", nil},                     // 5: root of "5"
		{"stock", "s2", "reserved", md("5", "5")},          // 6
		{"audit", "x1", "noted", md("req-1", "ext:queue")}, // 7: caused from outside
	} {
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: runtime.StreamID{Type: e.typ, ID: e.id},
			Events: []runtime.EventData{{Name: e.name, Schema: 1, Data: []byte{0x80}, Metadata: e.md}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		args []string
		want string
	}{
		{[]string{"tree", "-text", "req-1"}, "1 order/\"o1\" v1 placed\n  2 stock/\"s1\" v1 reserved\n    3 ship/\"p1\" v1 scheduled\n  4 mail/\"m1\" v1 sent\n7 audit/\"x1\" v1 noted\n"},
		{[]string{"tree", "-text", "5"}, "5 order/\"o2\" v1 placed\n  6 stock/\"s2\" v1 reserved\n"},
	}
	for _, tt := range tests {
		r := b.run(t, tt.args...)
		if r.code != ExitOK || r.stdout != tt.want {
			t.Errorf("%v: exit %d, stdout\n%s\nstderr %q; want\n%s", tt.args, r.code, r.stdout, r.stderr, tt.want)
		}
	}

	r := b.run(t, "tree", "req-1")
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var e treeJSON
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		got = append(got, strings.Join([]string{e.Stream.ID, strconv.Itoa(e.Depth), strconv.FormatUint(e.Parent, 10)}, ":"))
	}
	if want := "o1:0:0 s1:1:1 p1:2:2 m1:1:1 x1:0:0"; strings.Join(got, " ") != want {
		t.Errorf("JSON tree %q, want %q", got, want)
	}

	if r := b.run(t, "tree", "nobody"); r.code != ExitFailed || !strings.Contains(r.stderr, `no event has correlation id "nobody"`) {
		t.Errorf("unknown id: exit %d stderr %q", r.code, r.stderr)
	}
	if r := b.run(t, "tree"); r.code != ExitUsage {
		t.Errorf("no id: exit %d stderr %q", r.code, r.stderr)
	}
}
