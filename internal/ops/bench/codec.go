package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// codecImpl is one way of encoding and decoding the sample event.
type codecImpl struct {
	subject string
	kind    string
	encode  func() error
	decode  func() error
	note    string
	// events is how many events one call handles (0: one); the row's
	// figures are per event.
	events int
}

// generatedCodec, when set (generated.go), returns the generated codec of
// the bank example's Deposited event.
var generatedCodec func() ([]codecImpl, error)

func reflectionCodec() codecImpl {
	encoded := samplePayload()
	return codecImpl{
		subject: "reflection msgpack",
		kind:    KindLimit,
		encode: func() error {
			_, err := msgpack.Marshal(&sampleEvent)
			return err
		},
		decode: func() error {
			var d deposited
			return msgpack.Unmarshal(encoded, &d)
		},
	}
}

// codecCases measures encode and decode of the sample event.
func (r *runner) codecCases(ctx context.Context) error {
	impls := []codecImpl{}
	if generatedCodec != nil {
		g, err := generatedCodec()
		if err != nil {
			return err
		}
		impls = append(impls, g...)
	}
	limit := reflectionCodec()
	for _, dir := range []string{"encode", "decode"} {
		name := "codec/" + dir
		if !r.selected(name) {
			continue
		}
		pick := func(c codecImpl) func() error {
			if dir == "encode" {
				return c.encode
			}
			return c.decode
		}
		sides := []codecImpl{limit}
		for _, c := range impls {
			if pick(c) != nil { // an implementation may lack a direction
				sides = append(sides, c)
			}
		}
		ops := make([]func() error, len(sides))
		for i, c := range sides {
			ops[i] = pick(c)
		}
		rows, err := r.measureCodecs(ctx, name, sides, ops)
		if err != nil {
			return err
		}
		rows[0].Note = "msgpack.Marshal / msgpack.Unmarshal of a struct"
		r.add(rows[0])
		// Each generated row is compared with the limit row just before it
		// (the same path with reflection msgpack), or the first one.
		prev := rows[0]
		for i, c := range sides[1:] {
			row := rows[i+1]
			row.Note = c.note
			if c.kind == KindLimit {
				ratioNs(&row, rows[0])
				prev = row
			} else {
				ratioNs(&row, prev)
			}
			r.add(row)
		}
	}
	return nil
}

// codecRounds is how many turns each side of a codec case takes, the sides
// alternating in rotated order, so that the machine's drift falls on all.
const codecRounds = 10

// measureCodecs runs each op in rounds of 1,000 calls, the sides taking
// codecRounds turns of a share of the time cap each, and counts their
// allocations with testing.AllocsPerRun.
func (r *runner) measureCodecs(ctx context.Context, name string, sides []codecImpl, ops []func() error) ([]Row, error) {
	for i, op := range ops {
		if err := op(); err != nil {
			return nil, fmt.Errorf("bench: %s %s: %w", name, sides[i].subject, err)
		}
	}
	const round = 1000
	elapsed := make([]time.Duration, len(ops))
	counts := make([]int64, len(ops))
	var done atomic.Int64
	r.cfg.Progress.Begin(name, 0, &done)
	share := r.lim.codecTime / codecRounds
	for turn := range codecRounds {
		for j := range ops {
			i := (turn + j) % len(ops)
			var opErr error
			start := time.Now()
			for time.Since(start) < share && ctx.Err() == nil {
				for range round {
					if err := ops[i](); err != nil {
						opErr = err
					}
				}
				counts[i] += round
				done.Add(round)
			}
			elapsed[i] += time.Since(start)
			if opErr != nil {
				return nil, fmt.Errorf("bench: %s %s: %w", name, sides[i].subject, opErr)
			}
		}
	}
	rows := make([]Row, len(ops))
	for i, op := range ops {
		per := int64(max(sides[i].events, 1))
		allocs := testing.AllocsPerRun(1000/int(per)+1, func() { _ = op() })
		n := counts[i] * per
		rows[i] = Row{Case: name, Group: "codec", Subject: sides[i].subject, Kind: sides[i].kind, Ops: n, Events: n,
			Seconds: elapsed[i].Seconds(), AllocsPerOp: allocs / float64(per)}
		if n > 0 {
			rows[i].NsPerOp = float64(elapsed[i].Nanoseconds()) / float64(n)
		}
	}
	return rows, nil
}
