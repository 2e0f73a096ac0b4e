package llmproxy

import (
	"testing"
	"time"
)

func TestAppendResetMatchesDurationString(t *testing.T) {
	for _, d := range []time.Duration{1, 499 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 20 * time.Millisecond,
		999*time.Millisecond + 600*time.Microsecond, 999 * time.Millisecond, time.Second, 1500 * time.Millisecond, 59 * time.Second,
		60 * time.Second, 6 * time.Minute, 90*time.Minute + 5*time.Second, 25 * time.Hour, 30 * 24 * time.Hour} {
		var want string
		if d < time.Second {
			want = d.Round(time.Millisecond).String()
		} else {
			want = d.Round(time.Second).String()
		}
		if got := formatReset(d); got != want {
			t.Errorf("formatReset(%v) = %q, want %q", d, got, want)
		}
	}
	if got := formatReset(0); got != "0s" {
		t.Errorf("formatReset(0) = %q", got)
	}
}
