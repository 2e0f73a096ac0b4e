package console

import (
	"html"
	"html/template"
	"strconv"
	"strings"
)

// Charts are drawn on the server as inline SVG: no chart library and no
// script, and the Content-Security-Policy forbids style attributes, so
// the colours are SVG presentation attributes (which app.css may
// override through the classes: chart, chart-grid, chart-axis,
// chart-label, chart-bar, chart-line, chart-alt, chart-legend). Its size
// is 560×240 unless CSS scales it (max-width: 100%; height: auto keeps
// its proportions on a narrow screen). Each chart
// is an img to assistive technology, named by aria-label and <title>,
// described by a <desc> summary, and carries its figures as a table for
// the page to show beside it.

// chartSeries is one series of a chart.
type chartSeries struct {
	Name   string // e.g. "Requests"
	Values []int64
}

// chartSpec describes a chart to draw.
type chartSpec struct {
	Title  string   // the accessible name, e.g. "Requests per hour, last 24 h"
	XName  string   // the heading of the labels in the table, e.g. "Hour (UTC)"
	Labels []string // one full label per point, e.g. "2026-01-02 14:00 UTC"
	// Ticks are the short x-axis labels, one per point; "" leaves a
	// point unlabelled.
	Ticks []string
	// Series: the first is the main one; a second (e.g. the errors
	// among the requests) is drawn over it in another colour.
	Series []chartSeries
	Format func(int64) string // a value in the table, tooltips and <desc>
	Axis   func(int64) string // a y-axis tick label (compact)
	Lines  bool               // lines instead of bars, for many points
}

// chart is a drawn chart: the SVG and the same figures as a table.
type chart struct {
	Title string
	SVG   template.HTML
	Head  []string // the table's headings: XName, then the series' names
	Rows  []chartRow
}

// chartRow is one point of a chart as a table row.
type chartRow struct {
	Label string
	Cells []string
}

// The drawing's geometry, in viewBox units.
const (
	chartW      = 560
	chartH      = 240
	chartLeft   = 64
	chartRight  = 12
	chartTop    = 26
	chartBottom = 30
	plotW       = chartW - chartLeft - chartRight
	plotH       = chartH - chartTop - chartBottom
	yTicks      = 4
)

// Colours of the series, overridable by CSS through chart-bar/chart-line
// and chart-alt.
var seriesColours = [...]string{"#3366cc", "#cc4125"}

// newChart draws s.
func newChart(s chartSpec) *chart {
	c := &chart{Title: s.Title, Head: []string{s.XName}}
	for _, se := range s.Series {
		c.Head = append(c.Head, se.Name)
	}
	for i, l := range s.Labels {
		row := chartRow{Label: l}
		for _, se := range s.Series {
			row.Cells = append(row.Cells, s.Format(value(se.Values, i)))
		}
		c.Rows = append(c.Rows, row)
	}
	c.SVG = template.HTML(drawSVG(s))
	return c
}

func value(vs []int64, i int) int64 {
	if i < len(vs) {
		return vs[i]
	}
	return 0
}

// niceStep is the smallest of 1, 2 or 5 times a power of ten that is at
// least x (and at least 1): the y-axis step, so ticks read as round
// numbers.
func niceStep(x int64) int64 {
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if m*p >= x {
				return m * p
			}
		}
		if p > (1<<62)/10 {
			return x
		}
	}
}

func coord(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// esc escapes text and attribute values for XML as for HTML.
func esc(s string) string { return html.EscapeString(s) }

func drawSVG(s chartSpec) string {
	n := len(s.Labels)
	var top int64
	for _, se := range s.Series {
		for _, v := range se.Values {
			top = max(top, v)
		}
	}
	// At most yTicks round steps, as few as reach the highest value.
	step := niceStep((top + yTicks - 1) / yTicks)
	ticks := max((top+step-1)/step, 1)
	ymax := float64(step * ticks)
	y := func(v int64) float64 { return chartTop + plotH*(1-float64(max(v, 0))/ymax) }
	slot := float64(plotW) / float64(max(n, 1))

	var b strings.Builder
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" focusable="false" viewBox="0 0 ` +
		strconv.Itoa(chartW) + " " + strconv.Itoa(chartH) + `" width="` + strconv.Itoa(chartW) + `" height="` + strconv.Itoa(chartH) +
		`" preserveAspectRatio="xMidYMid meet" aria-label="` +
		esc(s.Title) + `">`)
	b.WriteString("<title>" + esc(s.Title) + "</title>")
	b.WriteString("<desc>" + esc(describe(s)) + "</desc>")

	// Grid and y-axis labels.
	for i := int64(0); i <= ticks; i++ {
		v := step * i
		yy := coord(y(v))
		b.WriteString(`<line class="chart-grid" x1="` + strconv.Itoa(chartLeft) + `" x2="` + strconv.Itoa(chartLeft+plotW) +
			`" y1="` + yy + `" y2="` + yy + `" stroke="#d9d9d9" stroke-width="1"/>`)
		b.WriteString(`<text class="chart-label" x="` + strconv.Itoa(chartLeft-6) + `" y="` + coord(y(v)+5) +
			`" text-anchor="end" font-size="13" fill="currentColor">` + esc(s.Axis(v)) + `</text>`)
	}
	// Baseline and x-axis labels.
	base := coord(y(0))
	b.WriteString(`<line class="chart-axis" x1="` + strconv.Itoa(chartLeft) + `" x2="` + strconv.Itoa(chartLeft+plotW) +
		`" y1="` + base + `" y2="` + base + `" stroke="currentColor" stroke-width="1"/>`)
	for i := 0; i < n && i < len(s.Ticks); i++ {
		if s.Ticks[i] == "" {
			continue
		}
		x := coord(chartLeft + (float64(i)+0.5)*slot)
		b.WriteString(`<line class="chart-axis" x1="` + x + `" x2="` + x + `" y1="` + base + `" y2="` + coord(y(0)+4) +
			`" stroke="currentColor" stroke-width="1"/>`)
		b.WriteString(`<text class="chart-label" x="` + x + `" y="` + strconv.Itoa(chartH-8) +
			`" text-anchor="middle" font-size="13" fill="currentColor">` + esc(s.Ticks[i]) + `</text>`)
	}

	for k, se := range s.Series {
		class, colour := "chart-bar", seriesColours[min(k, len(seriesColours)-1)]
		if s.Lines {
			class = "chart-line"
		}
		if k > 0 {
			class += " chart-alt"
		}
		if s.Lines {
			pts := make([]string, n)
			for i := range n {
				pts[i] = coord(chartLeft+(float64(i)+0.5)*slot) + "," + coord(y(value(se.Values, i)))
			}
			b.WriteString(`<polyline class="` + class + `" fill="none" stroke="` + colour +
				`" stroke-width="2" stroke-linejoin="round" points="` + strings.Join(pts, " ") + `"/>`)
			continue
		}
		for i := range n {
			v := value(se.Values, i)
			if v <= 0 {
				continue
			}
			yy := y(v)
			b.WriteString(`<rect class="` + class + `" x="` + coord(chartLeft+float64(i)*slot+slot*0.15) + `" y="` + coord(yy) +
				`" width="` + coord(slot*0.7) + `" height="` + coord(y(0)-yy) + `" fill="` + colour + `"><title>` +
				esc(s.Labels[i]+": "+s.Format(v)+" "+strings.ToLower(se.Name)) + `</title></rect>`)
		}
	}

	// A legend when there is more than one series.
	if len(s.Series) > 1 {
		x := chartLeft
		for k, se := range s.Series {
			colour := seriesColours[min(k, len(seriesColours)-1)]
			b.WriteString(`<rect class="chart-legend" x="` + strconv.Itoa(x) + `" y="5" width="12" height="12" fill="` + colour + `"/>`)
			b.WriteString(`<text class="chart-label" x="` + strconv.Itoa(x+16) + `" y="16" font-size="13" fill="currentColor">` +
				esc(se.Name) + `</text>`)
			x += 28 + 8*len(se.Name)
		}
	}
	b.WriteString("</svg>")
	return b.String()
}

// describe summarises s in words for <desc>: each series' total and its
// highest point.
func describe(s chartSpec) string {
	var parts []string
	for _, se := range s.Series {
		var total, best int64
		at := -1
		for i, v := range se.Values {
			total += v
			if v > best {
				best, at = v, i
			}
		}
		p := se.Name + ": " + s.Format(total) + " in total"
		if at >= 0 && at < len(s.Labels) {
			p += ", highest " + s.Format(best) + " at " + s.Labels[at]
		}
		parts = append(parts, p)
	}
	if len(s.Labels) > 0 {
		parts = append(parts, "from "+s.Labels[0]+" to "+s.Labels[len(s.Labels)-1])
	}
	return strings.Join(parts, "; ") + "."
}
