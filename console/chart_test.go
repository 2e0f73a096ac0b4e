package console

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/admin"
)

// svgNode is an SVG element as encoding/xml reads it back.
type svgNode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []svgNode  `xml:",any"`
}

func (n *svgNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// count counts the elements named name under n (n included).
func (n *svgNode) count(name string) int {
	c := 0
	if n.XMLName.Local == name {
		c++
	}
	for i := range n.Children {
		c += n.Children[i].count(name)
	}
	return c
}

// parseSVG reads s strictly as XML, failing the test when it is not
// well-formed, has a style attribute, an event handler or a script.
func parseSVG(t *testing.T, s string) *svgNode {
	t.Helper()
	checkSVG(t, s)
	var root svgNode
	d := xml.NewDecoder(strings.NewReader(s))
	d.Strict = true
	if err := d.Decode(&root); err != nil {
		t.Fatalf("SVG: %v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		t.Fatalf("SVG has more than one root element")
	}
	return &root
}

func hours(n int) (labels, ticks []string) {
	start := time.Date(2026, 3, 9, 16, 0, 0, 0, time.UTC)
	for i := range n {
		h := start.Add(time.Duration(i) * time.Hour)
		labels = append(labels, h.Format("2006-01-02 15:00 UTC"))
		tick := ""
		if h.Hour()%6 == 0 {
			tick = h.Format("15:00")
		}
		ticks = append(ticks, tick)
	}
	return labels, ticks
}

func TestChartSVG(t *testing.T) {
	labels, ticks := hours(24)
	requests := make([]int64, 24)
	errs := make([]int64, 24)
	requests[3], requests[20], requests[23] = 7, 1234, 40
	errs[20] = 34
	for _, tc := range []struct {
		name      string
		spec      chartSpec
		rects     int // bars and legend swatches
		polylines int
		top       string // the highest y-axis label
	}{
		{name: "bars with errors", spec: chartSpec{Title: `Requests & errors <per hour> "24 h"`, XName: "Hour (UTC)",
			Labels: labels, Ticks: ticks, Format: formatNum, Axis: compactNum,
			Series: []chartSeries{{Name: "Requests", Values: requests}, {Name: "Errors", Values: errs}}},
			rects: 3 + 1 + 2, top: "1.5k"},
		{name: "lines", spec: chartSpec{Title: "Spend per hour", XName: "Hour (UTC)", Labels: labels, Ticks: ticks,
			Format: admin.FormatUSD, Axis: compactUSD, Lines: true,
			Series: []chartSeries{{Name: "Spend", Values: requests}}},
			polylines: 1, top: "$0.0015"},
		{name: "no traffic", spec: chartSpec{Title: "Tokens per hour", XName: "Hour (UTC)", Labels: labels, Ticks: ticks,
			Format: formatNum, Axis: compactNum, Series: []chartSeries{{Name: "Tokens", Values: make([]int64, 24)}}},
			top: "1"},
		{name: "one point", spec: chartSpec{Title: "Tokens per day", XName: "Day (UTC)", Labels: []string{"2026-03-10"},
			Ticks: []string{"Mar 10"}, Format: formatNum, Axis: compactNum, Series: []chartSeries{{Name: "Tokens", Values: []int64{5}}}},
			rects: 1, top: "6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newChart(tc.spec)
			root := parseSVG(t, string(c.SVG))
			if root.XMLName.Local != "svg" || root.attr("role") != "img" || root.attr("aria-label") != tc.spec.Title {
				t.Errorf("root <%s role=%q aria-label=%q>", root.XMLName.Local, root.attr("role"), root.attr("aria-label"))
			}
			if len(root.Children) < 2 || root.Children[0].XMLName.Local != "title" || root.Children[0].Text != tc.spec.Title ||
				root.Children[1].XMLName.Local != "desc" || root.Children[1].Text == "" {
				t.Errorf("the SVG does not start with its <title> and <desc>")
			}
			if got := root.count("rect"); got != tc.rects {
				t.Errorf("%d rects, want %d", got, tc.rects)
			}
			if got := root.count("polyline"); got != tc.polylines {
				t.Errorf("%d polylines, want %d", got, tc.polylines)
			}
			// The y-axis labels are the right-aligned texts; the last is
			// the top of the scale, at or above the highest value.
			var yLabels []string
			for _, n := range root.Children {
				if n.XMLName.Local == "text" && n.attr("text-anchor") == "end" {
					yLabels = append(yLabels, n.Text)
				}
			}
			if len(yLabels) < 2 || yLabels[len(yLabels)-1] != tc.top {
				t.Errorf("y-axis %v, want it to end at %s", yLabels, tc.top)
			}
			// The table has a row per point, a cell per series.
			if len(c.Rows) != len(tc.spec.Labels) || len(c.Head) != 1+len(tc.spec.Series) ||
				len(c.Rows[0].Cells) != len(tc.spec.Series) {
				t.Errorf("table %v with %d rows", c.Head, len(c.Rows))
			}
		})
	}
}

func TestChartDescribes(t *testing.T) {
	labels, ticks := hours(3)
	c := newChart(chartSpec{Title: "Spend", XName: "Hour (UTC)", Labels: labels, Ticks: ticks, Format: admin.FormatUSD,
		Axis: compactUSD, Series: []chartSeries{{Name: "Spend", Values: []int64{0, 2500, 500}}}})
	want := "Spend: $0.003 in total, highest $0.0025 at 2026-03-09 17:00 UTC; from 2026-03-09 16:00 UTC to 2026-03-09 18:00 UTC."
	if root := parseSVG(t, string(c.SVG)); root.Children[1].Text != want {
		t.Errorf("desc %q\nwant %q", root.Children[1].Text, want)
	}
	if c.Rows[1].Label != labels[1] || c.Rows[1].Cells[0] != "$0.0025" {
		t.Errorf("table row %+v", c.Rows[1])
	}
}

func TestNiceStep(t *testing.T) {
	for x, want := range map[int64]int64{0: 1, 1: 1, 2: 2, 3: 5, 6: 10, 11: 20, 375: 500, 501: 1000, 2_000_001: 5_000_000} {
		if got := niceStep(x); got != want {
			t.Errorf("niceStep(%d) = %d, want %d", x, got, want)
		}
	}
}

// The figures a page shows are what pageFuncs writes.
func TestPageFuncs(t *testing.T) {
	f := pageFuncs()
	usd := f["usd"].(func(int64) string)
	for micros, want := range map[int64]string{0: "$0.00", 123: "$0.000123", 10_000: "$0.01", 12_500_000: "$12.50", 1740: "$0.00174"} {
		if got := usd(micros); got != want {
			t.Errorf("usd(%d) = %q, want %q", micros, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := formatNum(n); got != want {
			t.Errorf("num(%d) = %q, want %q", n, got, want)
		}
	}
	for x, want := range map[float64]string{0: "0%", 0.25: "25%", 1.0 / 3: "33.3%", 0.0001: "<0.1%", 1.5: "150%"} {
		if got := formatPct(x); got != want {
			t.Errorf("pct(%v) = %q, want %q", x, got, want)
		}
	}
	for d, want := range map[time.Duration]string{0: "0 ms", 400 * time.Microsecond: "0.4 ms", 2 * time.Millisecond: "2 ms",
		97500 * time.Microsecond: "98 ms", 1800 * time.Millisecond: "1.8 s", 12345 * time.Millisecond: "12.35 s"} {
		if got := formatMs(d); got != want {
			t.Errorf("ms(%v) = %q, want %q", d, got, want)
		}
	}
	for d, want := range map[time.Duration]string{0: "0", 1800 * time.Millisecond: "1800", 97500 * time.Microsecond: "97.5",
		1799999999: "1800", 12345678: "12.346"} {
		if got := msValue(d); got != want {
			t.Errorf("msValue(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 950: "950", 1500: "1.5k", 2_000_000: "2M", 12_300_000_000: "12.3G"} {
		if got := compactNum(n); got != want {
			t.Errorf("compactNum(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{0: "$0", 500: "$0.0005", 2_500_000: "$2.50", 1_500_000_000: "$1.5k"} {
		if got := compactUSD(n); got != want {
			t.Errorf("compactUSD(%d) = %q, want %q", n, got, want)
		}
	}
	if got := plural(1, "error", "errors") + ", " + plural(1200, "error", "errors"); got != "1 error, 1,200 errors" {
		t.Errorf("plural: %q", got)
	}
}

// checkSVG checks s is well-formed XML, an accessible img, without a
// style attribute or a script.
func checkSVG(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	d.Strict = true
	first := true
	for {
		tok, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("SVG is not well-formed XML: %v\n%s", err, s)
			}
			break
		}
		el, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		attrs := map[string]string{}
		for _, a := range el.Attr {
			attrs[a.Name.Local] = a.Value
			if a.Name.Local == "style" || strings.HasPrefix(a.Name.Local, "on") {
				t.Errorf("SVG element %s has attribute %s", el.Name.Local, a.Name.Local)
			}
		}
		if el.Name.Local == "script" || el.Name.Local == "style" || el.Name.Local == "foreignObject" {
			t.Errorf("SVG has a <%s>", el.Name.Local)
		}
		if first {
			if el.Name.Local != "svg" || attrs["role"] != "img" || attrs["aria-label"] == "" {
				t.Errorf("SVG root %s %v is not a labelled img", el.Name.Local, attrs)
			}
			first = false
		}
	}
}
