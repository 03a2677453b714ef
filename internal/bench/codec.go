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
		limitRow, err := r.measureCodec(ctx, name, limit.subject, limit.kind, pick(limit))
		if err != nil {
			return err
		}
		limitRow.Note = "msgpack.Marshal / msgpack.Unmarshal of a struct"
		r.add(limitRow)
		// Each generated row is compared with the limit row just before it
		// (the same path with reflection msgpack), or the raw one.
		prev := limitRow
		for _, c := range impls {
			if pick(c) == nil {
				continue // this implementation has no such direction
			}
			row, err := r.measureCodec(ctx, name, c.subject, c.kind, pick(c))
			if err != nil {
				return err
			}
			row.Note = c.note
			if c.kind == KindLimit {
				ratioNs(&row, limitRow)
				prev = row
			} else {
				ratioNs(&row, prev)
			}
			r.add(row)
		}
	}
	return nil
}

// measureCodec runs op in rounds of 1,000 calls until the time cap, and
// counts its allocations with testing.AllocsPerRun.
func (r *runner) measureCodec(ctx context.Context, name, subject, kind string, op func() error) (Row, error) {
	if err := op(); err != nil {
		return Row{}, fmt.Errorf("bench: %s %s: %w", name, subject, err)
	}
	var done atomic.Int64
	r.cfg.Progress.Begin(name+" "+subject, 0, &done)
	const round = 1000
	var opErr error
	start := time.Now()
	for time.Since(start) < r.lim.codecTime && ctx.Err() == nil {
		for range round {
			if err := op(); err != nil {
				opErr = err
			}
		}
		done.Add(round)
	}
	elapsed := time.Since(start)
	if opErr != nil {
		return Row{}, fmt.Errorf("bench: %s %s: %w", name, subject, opErr)
	}
	allocs := testing.AllocsPerRun(1000, func() { _ = op() })
	n := done.Load()
	row := Row{Case: name, Group: "codec", Subject: subject, Kind: kind, Ops: n, Events: n, Seconds: elapsed.Seconds(), AllocsPerOp: allocs}
	if n > 0 {
		row.NsPerOp = float64(elapsed.Nanoseconds()) / float64(n)
	}
	return row, nil
}
