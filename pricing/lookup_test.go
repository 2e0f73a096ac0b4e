package pricing

import (
	"math"
	"net/url"
	"testing"
	"time"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		provider, model string
		entry, match    string
		input           float64
	}{
		{"openai", "gpt-4o", "gpt-4o", "exact", 2.5},
		{"azure", "gpt-4o-mini", "gpt-4o-mini", "exact", 0.15},
		{"openai", "gpt-4o-2024-08-06", "gpt-4o", "date-suffix", 2.5},
		{"anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "date-suffix", 3},
		{"anthropic", "claude-opus-4-20250514", "claude-opus-4-0", "date-suffix", 15},
		{"anthropic", "claude-sonnet-4-0", "claude-sonnet-4-0", "exact", 3},
		{"google", "models/gemini-2.5-flash", "gemini-2.5-flash", "models-prefix", 0.3},
		{"bedrock", "global.anthropic.claude-haiku-4-5-20251001-v1:0", "global.anthropic.claude-haiku-4-5-20251001-v1:0", "exact", 1},
		{"bedrock", "us.anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0", "bedrock-geo-prefix", 1.1},
		{"bedrock", "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock-geo-prefix", 3.3},
		{"bedrock", "eu.anthropic.claude-sonnet-4-6", "anthropic.claude-sonnet-4-6", "bedrock-geo-prefix", 3.3},
		{"bedrock", "anthropic.claude-haiku-4-5-20251001-v1", "anthropic.claude-haiku-4-5-20251001-v1:0", "version-suffix", 1.1},
		{"bedrock", "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0", "arn", 1.1},
		{"bedrock", "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-opus-4-7", "global.anthropic.claude-opus-4-7", "arn", 5},
		{"bedrock", "global.anthropic.claude-sonnet-4-6-v1:0", "global.anthropic.claude-sonnet-4-6", "version-suffix", 3},
		{"bedrock", "amazon.titan-embed-text-v2:0", "amazon.titan-embed-text-v2:0", "exact", 0.02},
		{"openai", "gpt-5-2025-08-07", "gpt-5", "date-suffix", 1.25},
		{"azure", "gpt-4.1-nano", "gpt-4.1-nano", "exact", 0.1},
		{"openai", "gpt-4.1-mini-2025-04-14", "gpt-4.1-mini", "date-suffix", 0.4},
		{"openai", "o3", "o3", "exact", 2},
		{"openai", "o4-mini-2025-04-16", "o4-mini", "date-suffix", 1.1},
		{"openai", "text-embedding-ada-002", "text-embedding-ada-002", "exact", 0.1},
		{"google", "models/gemini-2.0-flash", "gemini-2.0-flash", "models-prefix", 0.1},
		{"google", "gemini-embedding-001", "gemini-embedding-001", "exact", 0.15},
		{"bedrock", "us.anthropic.claude-3-7-sonnet-20250219-v1:0", "anthropic.claude-3-7-sonnet-20250219-v1:0", "bedrock-geo-prefix", 3},
		{"bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", "anthropic.claude-3-5-haiku-20241022-v1:0", "exact", 0.8},
	}
	for _, tt := range tests {
		p, src, ok := Lookup(tt.provider, tt.model)
		if !ok {
			t.Errorf("Lookup(%q, %q): not found", tt.provider, tt.model)
			continue
		}
		if src.Entry != tt.entry || src.Match != tt.match || p.Input != tt.input {
			t.Errorf("Lookup(%q, %q) = %v from %+v, want input %v from entry %q by %q",
				tt.provider, tt.model, p, src, tt.input, tt.entry, tt.match)
		}
		if src.URL == "" || src.Checked == "" {
			t.Errorf("Lookup(%q, %q): source without URL or date: %+v", tt.provider, tt.model, src)
		}
	}
}

func TestLookupUnknown(t *testing.T) {
	for _, c := range [][2]string{
		{"openai", "gpt-nonexistent"},
		{"openai", ""},
		{"compatible", "gpt-4o"},             // no table for arbitrary servers
		{"bedrock", "claude-sonnet-4-5"},     // Bedrock has its own ids
		{"anthropic", "gpt-4o"},              // other provider's table
		{"bedrock", "anthropic.claude-v2:1"}, // retired, left out
		{"bedrock", "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"},
	} {
		if p, src, ok := Lookup(c[0], c[1]); ok {
			t.Errorf("Lookup(%q, %q) = %v from %+v, want not found", c[0], c[1], p, src)
		}
	}
}

// TestTableWellFormed checks every entry: known provider and kind,
// positive finite prices where they must be, a source URL and a date, and
// no two entries one id matches ambiguously.
func TestTableWellFormed(t *testing.T) {
	seen := map[string]string{}
	for _, e := range Entries() {
		where := e.Provider + "/" + e.ID
		if tableFor(e.Provider) != e.Provider {
			t.Errorf("%s: unknown provider table", where)
		}
		fin := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0 }
		switch e.Kind {
		case "chat":
			if !(e.Input > 0 && e.Output > 0) {
				t.Errorf("%s: input and output prices must be positive", where)
			}
		case "embedding":
			if !(e.Input > 0) || e.Output != 0 {
				t.Errorf("%s: an embedding has a positive input price and no output price", where)
			}
		default:
			t.Errorf("%s: kind %q", where, e.Kind)
		}
		for _, v := range []float64{e.Input, e.Output, e.CachedInput, e.CacheWrite, e.CacheWrite1h} {
			if !fin(v) {
				t.Errorf("%s: price %v", where, v)
			}
		}
		if e.CachedInput > e.Input {
			t.Errorf("%s: cached input dearer than input", where)
		}
		if u, err := url.Parse(e.Source); err != nil || u.Scheme != "https" || u.Host == "" {
			t.Errorf("%s: source %q is not an https URL", where, e.Source)
		}
		if _, err := time.Parse(time.DateOnly, e.Checked); err != nil {
			t.Errorf("%s: checked %q: %v", where, e.Checked, err)
		}
		for _, id := range append([]string{e.ID}, e.Aliases...) {
			k := e.Provider + "/" + canon(id)
			if prev, dup := seen[k]; dup && prev != e.ID {
				t.Errorf("%s: %q matches both %s and %s", where, id, prev, e.ID)
			}
			seen[k] = e.ID
		}
	}
}
