package llmproxy

import (
	"testing"
	"time"
)

// SetBudgetClock makes budgets read the time from now until t ends. It is
// for the tests of this package (outside ones included); tests using it
// must not run in parallel.
func SetBudgetClock(t testing.TB, now func() time.Time) {
	clock.Store(&now)
	t.Cleanup(func() { clock.Store(nil) })
}

func TestBudgetPeriod(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		period, tz, now, start, end string
	}{
		// Bangkok's midnight, not UTC's: 23:59:59 UTC is 06:59:59 there.
		{BudgetDaily, "Asia/Bangkok", "2026-03-10T23:59:59Z", "2026-03-11T00:00:00+07:00", "2026-03-12T00:00:00+07:00"},
		{BudgetDaily, "Asia/Bangkok", "2026-03-10T16:59:59Z", "2026-03-10T00:00:00+07:00", "2026-03-11T00:00:00+07:00"},
		{BudgetDaily, "Asia/Bangkok", "2026-03-10T17:00:00Z", "2026-03-11T00:00:00+07:00", "2026-03-12T00:00:00+07:00"},
		{BudgetDaily, "", "2026-03-10T23:59:59Z", "2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z"},
		// New York springs forward on 2026-03-08: a 23-hour day.
		{BudgetDaily, "America/New_York", "2026-03-08T12:00:00-04:00", "2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00"},
		// 2026-03-16 is a Monday; Sunday is the last day of a week.
		{BudgetWeekly, "", "2026-03-15T23:59:59Z", "2026-03-09T00:00:00Z", "2026-03-16T00:00:00Z"},
		{BudgetWeekly, "", "2026-03-16T00:00:00Z", "2026-03-16T00:00:00Z", "2026-03-23T00:00:00Z"},
		{BudgetWeekly, "Asia/Bangkok", "2026-03-15T17:00:00Z", "2026-03-16T00:00:00+07:00", "2026-03-23T00:00:00+07:00"},
		{BudgetWeekly, "America/New_York", "2026-03-10T09:00:00-04:00", "2026-03-09T00:00:00-04:00", "2026-03-16T00:00:00-04:00"},
		{BudgetMonthly, "", "2026-02-28T23:59:59Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"},
		{BudgetMonthly, "America/New_York", "2026-03-31T23:59:59-04:00", "2026-03-01T00:00:00-05:00", "2026-04-01T00:00:00-04:00"},
		{BudgetMonthly, "Asia/Bangkok", "2026-12-31T17:00:00Z", "2027-01-01T00:00:00+07:00", "2027-02-01T00:00:00+07:00"},
	}
	for _, c := range cases {
		b := &Budget{USD: 1, Period: c.period, TZ: c.tz}
		start, end := b.period(at(c.now))
		if !start.Equal(at(c.start)) || !end.Equal(at(c.end)) {
			t.Errorf("%s %q at %s: %s to %s, want %s to %s", c.period, c.tz, c.now, start.Format(time.RFC3339), end.Format(time.RFC3339), c.start, c.end)
		}
	}
	if start, end := (&Budget{USD: 1, Period: BudgetTotal}).period(time.Now()); !start.IsZero() || !end.IsZero() {
		t.Errorf("total: %v to %v", start, end)
	}
}

func TestFormatUSD(t *testing.T) {
	for micros, want := range map[int64]string{10000: "0.01", 4200: "0.0042", 0: "0.00", 1: "0.000001", 12_340_000: "12.34", 1_000_000: "1.00"} {
		if got := formatUSD(micros); got != want {
			t.Errorf("formatUSD(%d) = %q, want %q", micros, got, want)
		}
	}
}

// The local limiter drops an expired counter on a sweep at least a minute
// after the last, and keeps the others.
func TestLocalCountersExpire(t *testing.T) {
	l := NewLocalLimiter()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	l.SetTokensUsed("b:a:1", 5, 0, now)
	l.SetTokensUsed("b:a:2", 7, 0, now)
	l.ExpireTokens(t.Context(), "b:a:1", time.Hour, now)
	l.ExpireTokens(t.Context(), "b:a:2", 48*time.Hour, now.Add(30*time.Second))
	if len(l.windows) != 2 {
		t.Fatalf("windows %v before any expiry", l.windows)
	}
	l.ExpireTokens(t.Context(), "b:a:3", 48*time.Hour, now.Add(2*time.Hour))
	if _, ok := l.windows["b:a:1"]; ok || l.windows["b:a:2"] == nil || len(l.expires) != 2 {
		t.Errorf("after the sweep: windows %v, expires %v; want b:a:1 gone, b:a:2 kept", l.windows, l.expires)
	}
}
