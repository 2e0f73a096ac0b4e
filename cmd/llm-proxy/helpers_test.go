package main

import (
	"testing"
	"time"
)

// liveWithin is how soon a running server must use a change made with
// the CLI: README's promise (the Gateway polls the configuration version
// every second).
const liveWithin = 2 * time.Second

// eventuallyLive checks that a running server uses a change made at
// changed: it calls try until it succeeds, and fails the test if a try
// begun liveWithin after the change still does not.
func eventuallyLive(t *testing.T, changed time.Time, what string, try func() bool) {
	t.Helper()
	for {
		began := time.Now()
		if try() {
			return
		}
		if began.Sub(changed) > liveWithin {
			t.Fatalf("the running server did not use %s within %v", what, liveWithin)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ptrTo[T any](v T) *T { return &v }
