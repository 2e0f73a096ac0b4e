package main

import (
	"errors"
	"flag"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"
)

func newFlagSet() *flag.FlagSet { return flag.NewFlagSet("loadtest", flag.ContinueOnError) }

func numCPU() int { return runtime.NumCPU() }

// options are the command's flags.
type options struct {
	scenarios   string
	duration    time.Duration
	warmup      time.Duration
	conns       int
	rate        int
	workers     int
	idleStreams int
	up          upstreamConfig
	repo        string
	bin         string
	keep        bool
	gatewayEnv  string
	idleH1      bool
	idleHold    time.Duration
	noBare      bool
	rounds      int
	clients     []string // upstream clients, each with a bare and a gateway row
	variants    []variant
	perf        bool
}

// variant is a further gateway row (-variant): the gateway with extra
// environment, or another build of it, to compare with the standard one
// in the same run.
type variant struct {
	name   string   // the row's label, in the client column
	client string   // its upstream client, whose bare proxy it is compared with
	bin    string   // "" the run's llm-proxy
	env    []string // KEY=VALUE
}

// parseVariant reads -variant's NAME:KEY=VALUE;KEY=VALUE. BIN=path runs
// another llm-proxy binary; UPSTREAM_CLIENT picks the upstream client
// (net/http unless given).
func parseVariant(v string, taken []string) (variant, error) {
	name, kvs, _ := strings.Cut(v, ":")
	if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-.") != "" || len(name) > 20 || contains(taken, name) {
		return variant{}, fmt.Errorf("-variant %q: want NAME:KEY=VALUE;… with a new NAME of up to 20 of a-z, 0-9, '-' and '.'", v)
	}
	out := variant{name: name, client: upstreamClients[0]}
	for _, kv := range strings.Split(kvs, ";") {
		if kv == "" {
			continue
		}
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return variant{}, fmt.Errorf("-variant %q: %q is not KEY=VALUE", v, kv)
		}
		switch k {
		case "BIN":
			out.bin = val
		case "UPSTREAM_CLIENT":
			if !contains(upstreamClients, val) {
				return variant{}, fmt.Errorf("-variant %q: UPSTREAM_CLIENT %q is unknown; known: %s", v, val, strings.Join(upstreamClients, ", "))
			}
			out.client = val
		default:
			out.env = append(out.env, kv)
		}
	}
	return out, nil
}

// variantFlag collects -variant flags.
type variantFlag struct {
	o *options
}

func (f variantFlag) String() string { return "" }

func (f variantFlag) Set(v string) error {
	taken := slices.Clone(upstreamClients)
	for _, x := range f.o.variants {
		taken = append(taken, x.name)
	}
	x, err := parseVariant(v, taken)
	if err != nil {
		return err
	}
	f.o.variants = append(f.o.variants, x)
	return nil
}

// Scenario names, in the order they run.
var allScenarios = []string{"closed-50", "serial", "open-1k", "stream-50", "stream-1", "msg-serial", "msg-stream-1",
	"resp-serial", "resp-stream-1", "resp-tr-serial", "resp-tr-stream-1", "idle-10k"}

func parseFlags(args []string) (options, error) {
	var o options
	fs := newFlagSet()
	fs.StringVar(&o.scenarios, "scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run: "+strings.Join(allScenarios, ", "))
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time of each run (each scenario runs direct, through the bare proxy, then through the gateway)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before each run")
	fs.IntVar(&o.conns, "conns", 50, "connections of the closed-loop throughput scenarios (closed-50, stream-50)")
	fs.IntVar(&o.rate, "rate", 1000, "requests per second of the open-loop scenario (open-1k)")
	fs.IntVar(&o.workers, "open-conns", 64, "connections the open-loop scenario may use")
	fs.IntVar(&o.idleStreams, "idle-streams", 10000, "streams held open by idle-10k (through the bare proxy, then the gateway)")
	fs.BoolVar(&o.idleH1, "idle-h1", false, "idle-10k: reach the upstream over HTTP/1.1 (one connection per stream: needs 2 descriptors per stream in each proxy) instead of HTTP/2")
	fs.IntVar(&o.rounds, "rounds", 3, "each scenario's -duration is split into this many rounds in which direct, bare and gateway rows take turns")
	fs.DurationVar(&o.idleHold, "idle-hold", 0, "idle-10k: keep the streams open this long after measuring, through the bare proxy and then the gateway (to profile them through their /debug/pprof/ listeners)")
	fs.DurationVar(&o.up.Latency, "latency", 0, "fake upstream: wait before answering")
	fs.IntVar(&o.up.RespBytes, "resp-bytes", 400, "fake upstream: size of a non-streaming answer in bytes")
	fs.IntVar(&o.up.Chunks, "chunks", 20, "fake upstream: content chunks per stream")
	fs.DurationVar(&o.up.ChunkGap, "chunk-gap", 0, "fake upstream: wait between stream chunks")
	fs.StringVar(&o.repo, "repo", ".", "repository root to build ./cmd/llm-proxy from")
	fs.StringVar(&o.bin, "llm-proxy", "", "use this llm-proxy binary instead of building one")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (database, binary) for inspection")
	fs.BoolVar(&o.noBare, "no-bare", false, "skip the bare net/http proxy rows (direct and gateway only)")
	fs.StringVar(&o.gatewayEnv, "gateway-env", "", "extra environment for the gateway process, comma-separated KEY=VALUE (e.g. GOGC=200)")
	fs.Var(variantFlag{&o}, "variant", "another gateway row, repeatable: NAME:KEY=VALUE;KEY=VALUE, its extra environment (BIN=path runs another llm-proxy build, UPSTREAM_CLIENT its upstream client, net/http by default), e.g. -variant gogc400:GOGC=400 or -variant old:BIN=/tmp/llm-proxy-main")
	fs.BoolVar(&o.perf, "perf", false, "count each proxy's scheduling per request with perf stat (context switches, migrations, wake-ups, futex and other system calls, goroutines created); needs perf and root")
	clients := fs.String("clients", strings.Join(upstreamClients, ","), "upstream clients, each with a bare proxy and a gateway of its own: "+strings.Join(upstreamClients, ", "))
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, c := range strings.Split(*clients, ",") {
		if !contains(upstreamClients, c) || contains(o.clients, c) {
			return o, fmt.Errorf("-clients: %q is unknown or repeated; known: %s", c, strings.Join(upstreamClients, ", "))
		}
		o.clients = append(o.clients, c)
	}
	if o.duration <= 0 || o.duration > 10*time.Minute || o.warmup < 0 || o.warmup > time.Minute {
		return o, errors.New("-duration must be in (0, 10m] and -warmup in [0, 1m]")
	}
	if o.conns < 1 || o.conns > 5000 || o.workers < 1 || o.workers > 5000 || o.rate < 1 || o.rate > 200000 {
		return o, errors.New("-conns and -open-conns must be in [1, 5000], -rate in [1, 200000]")
	}
	if o.rounds < 1 || o.rounds > 100 {
		return o, errors.New("-rounds must be in [1, 100]")
	}
	if o.idleStreams < 1 || o.idleStreams > 50000 {
		return o, errors.New("-idle-streams must be in [1, 50000]")
	}
	for _, s := range strings.Split(o.scenarios, ",") {
		if !contains(allScenarios, s) {
			return o, fmt.Errorf("unknown scenario %q; known: %s", s, strings.Join(allScenarios, ", "))
		}
	}
	return o, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
