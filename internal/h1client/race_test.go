//go:build race

package h1client_test

// The race detector's instrumentation allocates a little more.
const raceEnabled = true
