package main

import (
	"flag"
	"runtime"
)

func newFlagSet() *flag.FlagSet { return flag.NewFlagSet("loadtest", flag.ContinueOnError) }

func numCPU() int { return runtime.NumCPU() }
