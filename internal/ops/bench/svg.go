package bench

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// chartLinks returns Markdown image links to the report's charts, in file
// name order.
func chartLinks(rows []Row) string {
	charts := Charts(rows)
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(charts)) {
		fmt.Fprintf(&b, "![%s](%s)\n", charts[name].Title, name)
	}
	return b.String()
}

// Chart is one SVG line chart: one line per series over categorical x
// values, on a logarithmic y axis (throughputs and latencies span orders
// of magnitude).
type Chart struct {
	Title  string
	XLabel string
	YLabel string
	X      []string
	Series []Series
	// Format prints a y value for tick labels.
	Format func(float64) string
}

// Series is one line; NaN or non-positive values are gaps.
type Series struct {
	Name   string
	Values []float64
	Dashed bool // limit rows are dashed
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// WriteSVG renders c as a standalone SVG image.
func (c Chart) WriteSVG(w io.Writer) error {
	const (
		width, height          = 760, 420
		left, right, top, bott = 80, 250, 40, 50
	)
	pw, ph := float64(width-left-right), float64(height-top-bott)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for _, v := range s.Values {
			if v > 0 && !math.IsInf(v, 0) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, xmlEscape(c.Title))
	if math.IsInf(lo, 0) {
		b.WriteString(`<text x="80" y="200">no data</text></svg>` + "\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	// Decade-aligned log axis.
	ylo, yhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yhi == ylo {
		yhi++
	}
	ypos := func(v float64) float64 { return float64(top) + ph*(1-(math.Log10(v)-ylo)/(yhi-ylo)) }
	xpos := func(i int) float64 {
		if len(c.X) == 1 {
			return float64(left) + pw/2
		}
		return float64(left) + pw*float64(i)/float64(len(c.X)-1)
	}
	format := c.Format
	if format == nil {
		format = formatRate
	}
	for d := ylo; d <= yhi; d++ {
		y := ypos(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, float64(left)+pw, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y+4, xmlEscape(format(math.Pow(10, d))))
	}
	for i, x := range c.X {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", xpos(i), top+int(ph)+18, xmlEscape(x))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle">%s</text>`+"\n", float64(left)+pw/2, height-8, xmlEscape(c.XLabel))
	fmt.Fprintf(&b, `<text x="16" y="%.0f" text-anchor="middle" transform="rotate(-90 16 %.0f)">%s</text>`+"\n", float64(top)+ph/2, float64(top)+ph/2, xmlEscape(c.YLabel))
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#888"/>`+"\n", left, top, pw, ph)
	for si, s := range c.Series {
		color := palette[si%len(palette)]
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		var pts []string
		for i, v := range s.Values {
			if i >= len(c.X) || !(v > 0) || math.IsInf(v, 0) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xpos(i), ypos(v)))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %s</title></circle>`+"\n", xpos(i), ypos(v), color, xmlEscape(s.Name), xmlEscape(format(v)))
		}
		if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), color, dash)
		}
		ly := top + 10 + 20*si
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", width-right+12, ly, width-right+36, ly, color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", width-right+42, ly+4, xmlEscape(s.Name))
	}
	b.WriteString("</svg>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("bench: writing SVG: %w", err)
	}
	return nil
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// Charts builds the report's charts: append throughput against writers
// for each batch size, and load p99 latency against aggregate size. The
// map key is the file name.
func Charts(rows []Row) map[string]Chart {
	charts := map[string]Chart{}
	for _, batch := range appendBatches {
		c := Chart{
			Title:  fmt.Sprintf("Append throughput, %d event(s) per append", batch),
			XLabel: "concurrent writers", YLabel: "events/s (log)",
		}
		for _, w := range appendWriters {
			c.X = append(c.X, strconv.Itoa(w))
		}
		c.Series = seriesBy(rows, "append", func(r Row) (int, float64, bool) {
			if r.Batch != batch {
				return 0, 0, false
			}
			for i, w := range appendWriters {
				if r.Writers == w {
					return i, r.EventsPerSec, true
				}
			}
			return 0, 0, false
		})
		if len(c.Series) > 0 {
			charts[fmt.Sprintf("append-batch%d.svg", batch)] = c
		}
	}
	for _, q := range []struct {
		name string
		pick func(*Percentiles) int64
	}{{"p50", func(p *Percentiles) int64 { return p.P50 }}, {"p99", func(p *Percentiles) int64 { return p.P99 }}, {"p99.9", func(p *Percentiles) int64 { return p.P999 }}} {
		c := Chart{Title: "Load latency " + q.name + ", no snapshots", XLabel: "events in the aggregate", YLabel: q.name + " latency (log)",
			Format: func(v float64) string { return formatNs(int64(v)) }}
		for _, s := range loadSizes {
			c.X = append(c.X, strconv.Itoa(s))
		}
		c.Series = seriesBy(rows, "load", func(r Row) (int, float64, bool) {
			if !strings.HasSuffix(r.Case, "/no-snapshot") || r.Latency == nil {
				return 0, 0, false
			}
			for i, s := range loadSizes {
				if r.Batch == s {
					return i, float64(q.pick(r.Latency)), true
				}
			}
			return 0, 0, false
		})
		if len(c.Series) > 0 {
			charts["load-"+strings.ReplaceAll(q.name, ".", "")+".svg"] = c
		}
	}
	return charts
}

// seriesBy groups the rows of group by subject, in first-seen order,
// placing each at the x index pick returns.
func seriesBy(rows []Row, group string, pick func(Row) (int, float64, bool)) []Series {
	var out []Series
	index := map[string]int{}
	for _, r := range rows {
		if r.Group != group {
			continue
		}
		i, v, ok := pick(r)
		if !ok {
			continue
		}
		si, seen := index[r.Subject]
		if !seen {
			si = len(out)
			index[r.Subject] = si
			name, _, _ := strings.Cut(r.Subject, " (")
			if r.Kind == KindLimit {
				name = "limit: " + name
			}
			out = append(out, Series{Name: name, Values: make([]float64, 8), Dashed: r.Kind == KindLimit})
		}
		out[si].Values[i] = v
	}
	return out
}
