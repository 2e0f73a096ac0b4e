package accesslog_test

import (
	"testing"
	"time"
)

const (
	upstreamKey = "sk-real-upstream-secret"
	masterKey   = "master-secret-key"
	keyConn     = "sk-proxy-123"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor fails t unless ok becomes true within 2s.
func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 2s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
