package llmproxy

import (
	"testing"
	"time"
)

func TestParseWindow(t *testing.T) {
	for in, want := range map[string]string{"": "0s", "90s": "1m30s", "30d": "720h0m0s", "1m": "1m0s"} {
		d, err := ParseWindow(in)
		if err != nil || d.String() != want {
			t.Errorf("ParseWindow(%q) = %v, %v; want %s", in, d, err, want)
		}
	}
	for _, bad := range []string{"daily", "9999999999d", "1x"} {
		if _, err := ParseWindow(bad); err == nil {
			t.Errorf("ParseWindow(%q) accepted", bad)
		}
	}
	if got := FormatWindow(30 * 24 * time.Hour); got != "30d" {
		t.Errorf("FormatWindow = %q", got)
	}
}
