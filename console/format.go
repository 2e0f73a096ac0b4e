package console

import (
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy/admin"
)

// pageFuncs are the template functions of every page: how figures read
// on screen. Machine values (data-value) are written raw: integers as
// they are, fractions and milliseconds by frac and msValue.
func pageFuncs() template.FuncMap {
	return template.FuncMap{
		"usd":     admin.FormatUSD,
		"num":     formatNum,
		"pct":     formatPct,
		"ms":      formatMs,
		"msValue": msValue,
		"frac":    frac,
		"day":     func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
		"hour":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:00 UTC") },
		"stamp":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"clock":   func(t time.Time) string { return t.UTC().Format(time.DateTime) }, // under a "(UTC)" heading
		"iso":     func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
		"add":     func(a, b int) int { return a + b },
		"plural":  plural,
	}
}

// plural writes n and the noun in the number n needs: "1 request",
// "2 requests".
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return formatNum(n) + " " + many
}

// formatNum writes n with thousands separators: 1234567 → "1,234,567".
func formatNum(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + b.String()
}

// formatPct writes a fraction as a percentage with at most one decimal:
// 0.125 → "12.5%", 0.5 → "50%"; a non-zero fraction under 0.05% reads
// "<0.1%" rather than a misleading "0%".
func formatPct(f float64) string {
	if f > 0 && f < 0.0005 {
		return "<0.1%"
	}
	s := strconv.FormatFloat(f*100, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + "%"
}

// formatMs writes a latency for people: "0.4 ms", "12 ms", "1.25 s".
func formatMs(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 10:
		return trimZeros(strconv.FormatFloat(ms, 'f', 1, 64)) + " ms"
	case ms < 1000:
		return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
	}
	return trimZeros(strconv.FormatFloat(ms/1000, 'f', 2, 64)) + " s"
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// msValue writes d in milliseconds for a data-value, to the microsecond:
// 12.345.
func msValue(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Round(time.Microsecond))/float64(time.Millisecond), 'f', -1, 64)
}

// frac writes a fraction for a data-value: 0.25.
func frac(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// compactNum writes n briefly for a chart's axis: 950, 1.5k, 12M.
func compactNum(n int64) string {
	units := []struct {
		div  int64
		unit string
	}{{1_000_000_000_000, "T"}, {1_000_000_000, "G"}, {1_000_000, "M"}, {1_000, "k"}}
	for _, u := range units {
		if n >= u.div || -n >= u.div {
			return trimZeros(strconv.FormatFloat(float64(n)/float64(u.div), 'f', 1, 64)) + u.unit
		}
	}
	return strconv.FormatInt(n, 10)
}

// compactUSD writes micro-dollars briefly for a chart's axis: "$0",
// "$0.0005", "$2.50", "$1.5k".
func compactUSD(micros int64) string {
	switch {
	case micros == 0:
		return "$0"
	case micros >= 1_000_000_000:
		return "$" + compactNum(micros/1_000_000)
	}
	return admin.FormatUSD(micros)
}
