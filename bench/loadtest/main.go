// Command loadtest measures the gateway against its upstream, side by side
// in the same run, on loopback: it starts a fake OpenAI-compatible upstream,
// a bare net/http proxy in front of it (the floor of any proxy built like
// the gateway) and the real llm-proxy server (built from ./cmd/llm-proxy,
// SQLite store, configured through its CLI with a virtual key whose limits
// are checked on every request but never bite, usage ledger on), the bare
// proxy and the gateway once per upstream client (-clients), then drives
// them all with a closed-loop and an open-loop load generator and prints
// one table.
//
//	go run ./bench/loadtest                 # every standard scenario
//	go run ./bench/loadtest -scenarios closed-50,serial -duration 10s
//	go run ./bench/loadtest upstream -addr 127.0.0.1:9000   # the fake alone
//	go run ./bench/loadtest bareproxy -upstream 127.0.0.1:9000   # the bare proxy alone
//
// See bench/README.md for what each column means.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "upstream" {
		if err := runUpstream(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest upstream:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "bareproxy" {
		if err := runBareProxy(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest bareproxy:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

const (
	chatBody   = `{"model":"%s","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello in a short sentence, please."}],"temperature":0.2,"max_tokens":64}`
	streamBody = `{"model":"%s","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello in a short sentence, please."}],"temperature":0.2,"max_tokens":64,"stream":true,"stream_options":{"include_usage":true}}`
	// Anthropic's Messages API (the msg-* scenarios): through the gateway
	// to an anthropic connection, passed through natively.
	msgBody       = `{"model":"%s","system":"You are terse.","messages":[{"role":"user","content":"Say hello in a short sentence, please."}],"temperature":0.2,"max_tokens":64}`
	msgStreamBody = `{"model":"%s","system":"You are terse.","messages":[{"role":"user","content":"Say hello in a short sentence, please."}],"temperature":0.2,"max_tokens":64,"stream":true}`
	// OpenAI's Responses API (the resp-* scenarios): natively to a
	// compatible connection that serves it, or (resp-tr-*) translated to
	// chat; store false, as Codex sends it.
	respBody       = `{"model":"%s","instructions":"You are terse.","input":"Say hello in a short sentence, please.","temperature":0.2,"max_output_tokens":64,"store":false}`
	respStreamBody = `{"model":"%s","instructions":"You are terse.","input":"Say hello in a short sentence, please.","temperature":0.2,"max_output_tokens":64,"store":false,"stream":true}`
)

// bench is a running setup: the upstream, and a bare proxy (none with
// -no-bare) and a gateway per upstream client.
type bench struct {
	opt      options
	up       *process
	bares    []*process
	gws      []*process // gws[0] (and bares[0]) also serve idle-10k
	key      string
	peakNote bool       // VmHWM could be reset between runs
	perf     *perfSetup // -perf
	perfOnce sync.Once
}

func run(ctx context.Context, args []string, out io.Writer) error {
	opt, err := parseFlags(args)
	if err != nil {
		return err
	}
	// idle-10k needs a descriptor per stream in the load generator, and in
	// the proxy holding them one more per stream if its upstream side is
	// HTTP/1.1 (-idle-h1); each process has the limit to itself.
	need := uint64(opt.idleStreams + 1000)
	if opt.idleH1 {
		need += uint64(opt.idleStreams)
	}
	if lim, err := raiseFileLimit(65536); contains(strings.Split(opt.scenarios, ","), "idle-10k") && lim < need {
		fmt.Fprintf(out, "note: file descriptor limit is %d (%v), %d wanted; idle-10k may fail\n", lim, err, need)
	}
	dir, err := os.MkdirTemp("", "llmproxy-bench-")
	if err != nil {
		return err
	}
	if opt.keep {
		fmt.Fprintln(out, "temporary directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin := opt.bin
	if bin == "" {
		fmt.Fprintln(out, "building llm-proxy …")
		if bin, err = buildGateway(ctx, opt.repo, dir); err != nil {
			return err
		}
	}
	b := &bench{opt: opt}
	certFile, keyFile, err := writeCert(dir)
	if err != nil {
		return err
	}
	if b.up, err = startUpstream(ctx, opt.up, certFile, keyFile); err != nil {
		return err
	}
	defer b.up.stop()
	for _, client := range opt.clients {
		if opt.noBare {
			break
		}
		p, err := startBare(ctx, b.up, certFile, client)
		if err != nil {
			return err
		}
		defer p.stop()
		b.bares = append(b.bares, p)
	}
	// Each gateway has a database of its own, so that neither waits for
	// the other's ledger.
	gateways := make([]variant, 0, len(opt.clients)+len(opt.variants))
	for _, client := range opt.clients {
		gateways = append(gateways, variant{name: client, client: client})
	}
	gateways = append(gateways, opt.variants...)
	for i, v := range gateways {
		env := append(os.Environ(), "DB_TYPE=sqlite", "DB_DSN="+filepath.Join(dir, fmt.Sprintf("bench-%d.db", i)), "MASTER_KEY=", "REDIS_URL=",
			"SSL_CERT_FILE="+certFile)
		gbin := bin
		if v.bin != "" {
			gbin = v.bin
		}
		setup, err := configureGateway(ctx, gbin, env, b.up)
		if err != nil {
			return err
		}
		b.key = setup.key
		env = append(env, "UPSTREAM_CLIENT="+v.client)
		if opt.gatewayEnv != "" {
			env = append(env, strings.Split(opt.gatewayEnv, ",")...)
		}
		env = append(env, v.env...) // the last of a key wins
		gw, err := startGateway(ctx, gbin, env)
		if err != nil {
			return fmt.Errorf("gateway %s: %w", v.name, err)
		}
		gw.client = v.name
		defer func() {
			gw.stop()
			if opt.keep {
				fmt.Fprintf(out, "\ngateway (%s) log (first MiB):\n%s", v.name, gw.logs.String())
			}
		}()
		b.gws = append(b.gws, gw)
		b.peakNote = resetPeak(gw.cmd.Process.Pid)
	}
	if opt.perf {
		var bins []string
		for _, p := range append(slices.Clip(b.bares), b.gws...) {
			bins = append(bins, p.bin)
		}
		if b.perf, err = setupPerf(dir, bins); err != nil {
			return err
		}
		defer b.perf.close()
	}
	fmt.Fprintf(out, "upstream %s (pid %d)", b.up.addr, b.up.cmd.Process.Pid)
	for _, p := range append(slices.Clip(b.bares), b.gws...) {
		fmt.Fprintf(out, ", %s %s %s (pid %d)", p.name, p.client, p.addr, p.cmd.Process.Pid)
	}
	fmt.Fprintf(out, "; %d CPUs; %s per run after %s warm-up\n", numCPU(), opt.duration, opt.warmup)
	var rows []row
	var idle []idleResult
	for _, sc := range strings.Split(opt.scenarios, ",") {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintf(out, "running %s …\n", sc)
		switch sc {
		case "idle-10k":
			r, err := b.idleStreams(ctx, opt.idleStreams)
			if err != nil {
				return fmt.Errorf("idle-10k: %w", err)
			}
			idle = r
		default:
			rows = append(rows, b.scenario(sc)...)
		}
	}
	printTable(out, rows, idle)
	printTargets(out, rows, idle, opt.clients)
	printVsBare(out, rows, gateways)
	printClients(out, rows, opt.clients)
	if b.perf != nil {
		printPerf(out, rows, opt.clients, b.perf.note)
	}
	return nil
}

// row is one run: a scenario through one target.
type row struct {
	scenario, via string
	client        string // the proxy's upstream client; "" direct
	o             outcome
	rounds        []roundStat
	proxy, up     procUsage // deltas (cpu) and end values (memory); proxy is the bare proxy's or the gateway's, zero direct
	proxyPeak     int64
	stream        bool
	perf          perfCounts // -perf: the proxy's, summed over its rounds
}

// roundStat is what one round of a row measured, to compare rows round
// by round.
type roundStat struct {
	rps, eps  float64 // requests and SSE events per second
	p50, ttfc time.Duration
}

// targets are a scenario's targets: direct, the bare proxies (unless
// -no-bare), the gateways. The bare proxies get the direct request (the
// upstream's model and key), as they forward it as is.
// The direct and bare rows send the upstream's own API; the gateway rows
// the scenario's (for resp-tr-*, the Responses API translated to the
// chat the others send).
func (b *bench) targets(scenario string) []target {
	stream := strings.Contains(scenario, "stream")
	pick := func(plain, streaming string) string {
		if stream {
			return streaming
		}
		return plain
	}
	body, path, alias := pick(chatBody, streamBody), "/v1/chat/completions", "bench"
	gwBody, gwPath := body, path
	switch {
	case strings.HasPrefix(scenario, "msg-"):
		body, path, alias = pick(msgBody, msgStreamBody), "/v1/messages", "bench-msg"
		gwBody, gwPath = body, path
	case strings.HasPrefix(scenario, "resp-tr-"):
		gwBody, gwPath, alias = pick(respBody, respStreamBody), "/v1/responses", "bench-resp-tr"
	case strings.HasPrefix(scenario, "resp-"):
		body, path, alias = pick(respBody, respStreamBody), "/v1/responses", "bench-resp"
		gwBody, gwPath = body, path
	}
	plain := []byte(fmt.Sprintf(body, "fake"))
	ts := []target{{name: "direct", addr: b.up.addr,
		req: buildRequest(b.up.addr, path, "sk-upstream", plain)}}
	for _, p := range b.bares {
		ts = append(ts, target{name: "bare", addr: p.addr, proxy: p,
			req: buildRequest(p.addr, path, "sk-upstream", plain)})
	}
	for _, p := range b.gws {
		ts = append(ts, target{name: "gateway", addr: p.addr, proxy: p,
			req: buildRequest(p.addr, gwPath, b.key, []byte(fmt.Sprintf(gwBody, alias)))})
	}
	return ts
}

// scenario runs one scenario through every target, in rounds.
func (b *bench) scenario(name string) []row {
	stream := strings.Contains(name, "stream")
	targets := b.targets(name)
	rows := make([]row, len(targets))
	for i, t := range targets {
		rows[i] = row{scenario: name, via: t.name, stream: stream}
		if t.proxy != nil {
			rows[i].client = t.proxy.client
		}
	}
	// The targets take turns, round after round, so that a machine whose
	// speed drifts (other virtual machines on the host) is felt by all of
	// them alike rather than by whichever ran during the slow seconds;
	// every other round runs them in reverse, so that no row always
	// follows the same one.
	rounds := b.opt.rounds
	d := b.opt.duration / time.Duration(rounds)
	for n := range rounds {
		for j := range targets {
			i := j
			if n%2 == 1 {
				i = len(targets) - 1 - j
			}
			rows[i].add(b.runOnce(name, targets[i], d))
		}
	}
	for i := range rows {
		rows[i].o.finish()
	}
	return rows
}

// measured is what one run of a target cost the processes in its path.
type measured struct {
	proxy, up procUsage // cpu: delta over the run; memory: at its end
	peak      int64
	perf      *perfCounts // -perf: the proxy's window in the run; nil none
}

// measureTarget returns a function that, called after a run, says what it
// cost since measureTarget was called.
func (b *bench) measureTarget(t target) func() measured {
	proxy := t.proxy // the proxy in the path: its CPU and peak memory are the row's
	upPid := b.up.cmd.Process.Pid
	var px0 procUsage
	if proxy != nil {
		resetPeak(proxy.cmd.Process.Pid)
		px0, _ = readUsage(proxy.cmd.Process.Pid)
	}
	up0, _ := readUsage(upPid)
	return func() measured {
		var m measured
		m.up, _ = readUsage(upPid)
		m.up.cpu -= up0.cpu
		if proxy != nil {
			m.proxy, _ = readUsage(proxy.cmd.Process.Pid)
			m.peak = m.proxy.hwm
			m.proxy.cpu -= px0.cpu
		}
		return m
	}
}

// runOnce runs one scenario against one target for d (after the warm-up).
// What the processes spent is measured from the end of the warm-up, when
// the load generator starts counting requests.
func (b *bench) runOnce(name string, t target, d time.Duration) func() (outcome, measured) {
	return func() (outcome, measured) {
		measuring := make(chan func() measured, 1)
		time.AfterFunc(b.opt.warmup, func() { measuring <- b.measureTarget(t) })
		// -perf counts in the middle of the measured time, away from
		// its edges.
		perfDone := func() *perfCounts { return nil }
		if margin := min(d/10, 250*time.Millisecond); b.perf != nil && t.proxy != nil && d-2*margin >= 100*time.Millisecond {
			perfDone = b.perfWindow(t.proxy, b.opt.warmup+margin, d-2*margin)
		}
		var o outcome
		switch name {
		case "closed-50":
			o = closedLoop(t, b.opt.conns, b.opt.warmup, d, false)
		case "serial", "msg-serial", "resp-serial", "resp-tr-serial":
			o = closedLoop(t, 1, b.opt.warmup, d, false)
		case "open-1k":
			o = openLoop(t, b.opt.rate, b.opt.workers, b.opt.warmup, d)
		case "stream-50":
			o = closedLoop(t, b.opt.conns, b.opt.warmup, d, true)
		case "stream-1", "msg-stream-1", "resp-stream-1", "resp-tr-stream-1":
			o = closedLoop(t, 1, b.opt.warmup, d, true)
		}
		m := (<-measuring)()
		m.perf = perfDone()
		return o, m
	}
}

// add runs one round through run and adds it to the row.
func (r *row) add(run func() (outcome, measured)) {
	o, m := run()
	rs := roundStat{rps: o.rps(), eps: float64(o.events) / o.elapsed.Seconds(), p50: pct(o.lat, 50), ttfc: pct(o.ttfc, 50)}
	r.rounds = append(r.rounds, rs)
	r.o.merge(o)
	r.up.cpu += m.up.cpu
	r.up.rss, r.up.hwm, r.up.threads, r.up.fds = m.up.rss, m.up.hwm, m.up.threads, m.up.fds
	cpu := r.proxy.cpu + m.proxy.cpu
	r.proxy = m.proxy
	r.proxy.cpu = cpu
	r.proxyPeak = max(r.proxyPeak, m.peak)
	r.perf.add(m.perf)
}

// idleResult is what idle-10k measured through one proxy.
type idleResult struct {
	via, client                    string // "bare" or "gateway", and its upstream client
	streams, opened, ended, failed int
	held                           procUsage // the proxy while every stream is open
	after                          procUsage // the proxy once they all ended
	before                         procUsage
	gBefore, gHeld, gAfter         int   // the proxy's goroutines; -1 unknown
	heapHeld, stackHeld            int64 // the proxy's live heap and stacks while held; -1 unknown
	upHeld                         procUsage
	upStreamingAfter               int64
	took                           time.Duration
	firstErr                       string
	upstreamProto                  string
}

// idleStreams runs idle-10k through the bare proxy of the first upstream
// client (unless -no-bare), then through its gateway: one after the other,
// so that the load generator and the upstream hold n streams at a time.
func (b *bench) idleStreams(ctx context.Context, n int) ([]idleResult, error) {
	model, barePath, proto := "hold", h2Prefix+"v1/chat/completions", "HTTP/2 over TLS"
	if b.opt.idleH1 {
		barePath, proto = "/v1/chat/completions", "HTTP/1.1"
	}
	var out []idleResult
	if len(b.bares) > 0 {
		p := b.bares[0]
		req := buildRequest(p.addr, barePath, "sk-upstream", []byte(fmt.Sprintf(streamBody, model)))
		r, err := b.idleStreamsVia(ctx, p, req, n)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	gwModel := "bench-hold"
	if b.opt.idleH1 {
		gwModel = "bench-hold-h1"
	}
	p := b.gws[0]
	req := buildRequest(p.addr, "/v1/chat/completions", b.key, []byte(fmt.Sprintf(streamBody, gwModel)))
	r, err := b.idleStreamsVia(ctx, p, req, n)
	if err != nil {
		return nil, err
	}
	out = append(out, r)
	for i := range out {
		out[i].upstreamProto = proto
	}
	return out, nil
}

// idleStreamsVia opens n streams through the proxy p (each sending req)
// that the upstream holds after their first chunk, measures p with all of
// them open, releases them, and checks that they all end.
func (b *bench) idleStreamsVia(ctx context.Context, p *process, req []byte, n int) (idleResult, error) {
	res := idleResult{via: p.name, client: p.client, streams: n}
	pid := p.cmd.Process.Pid
	resetPeak(pid)
	res.before, _ = readUsage(pid)
	res.gBefore = p.goroutines()
	began := time.Now()
	var wg sync.WaitGroup
	var opened, ended, failed atomic.Int64
	var errOnce sync.Once
	conns := make(chan *conn, n)
	sem := make(chan struct{}, 200) // dials in flight: stay within the listen backlog
	for range n {
		sem <- struct{}{}
		c, err := dial(p.addr)
		<-sem
		if err != nil {
			failed.Add(1)
			errOnce.Do(func() { res.firstErr = err.Error() })
			continue
		}
		opened.Add(1)
		conns <- c
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.do(req, time.Now().Add(3*time.Minute))
			if err != nil || r.status != 200 || r.events < 2 {
				failed.Add(1)
				errOnce.Do(func() { res.firstErr = fmt.Sprintf("status %d, %d events, %v", r.status, r.events, err) })
				return
			}
			ended.Add(1)
		}()
	}
	close(conns)
	defer func() {
		for c := range conns {
			c.close()
		}
	}()
	// Wait until the upstream holds every stream (each has had its first
	// chunk), bounded.
	deadline := time.Now().Add(90 * time.Second)
	for {
		st, err := b.upStats()
		if err == nil && st.Holding >= opened.Load()-failed.Load() {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			res.firstErr = fmt.Sprintf("only %d of %d streams reached the upstream in 90s", st.Holding, opened.Load())
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // let first chunks reach the clients
	// Memory first: reading the goroutine count allocates a little.
	res.held, _ = readUsage(pid)
	res.upHeld, _ = readUsage(b.up.cmd.Process.Pid)
	res.gHeld = p.goroutines()
	res.heapHeld, res.stackHeld = p.liveMem()
	res.took = time.Since(began)
	if b.opt.idleHold > 0 {
		fmt.Fprintf(os.Stderr, "holding %d streams through the %s for %s\n", opened.Load(), p.name, b.opt.idleHold)
		time.Sleep(b.opt.idleHold)
	}
	if resp, err := http.Post("http://"+b.up.addr+"/control/release", "text/plain", nil); err == nil {
		resp.Body.Close()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		res.firstErr = "streams still open 2 minutes after release"
	}
	for c := range conns {
		c.close()
	}
	time.Sleep(2 * time.Second) // the proxy notices the closed connections
	res.after, _ = readUsage(pid)
	res.gAfter = p.goroutines()
	if st, err := b.upStats(); err == nil {
		res.upStreamingAfter = st.Streaming
	}
	res.opened, res.ended, res.failed = int(opened.Load()), int(ended.Load()), int(failed.Load())
	return res, nil
}

func (b *bench) upStats() (upstreamStats, error) {
	resp, err := http.Get("http://" + b.up.addr + "/control/stats")
	if err != nil {
		return upstreamStats{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return upstreamStats{}, err
	}
	return decodeStats(body)
}

func us(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
}

func mb(n int64) string { return fmt.Sprintf("%.0fMB", float64(n)/(1<<20)) }

func printTable(out io.Writer, rows []row, idle []idleResult) {
	defer printIdle(out, idle)
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tvia\tclient\treq/s\tof direct\tp50\tp90\tp99\tp99.9\tadded p50\tadded p99\tTTFC p50\tTTFC p99\tevents/s\tproxy CPU s/1k\tup CPU s/1k\tproxy peak RSS\terrors\t")
	var direct *row
	for i := range rows {
		r := &rows[i]
		if r.via == "direct" {
			direct = r
		}
		o := &r.o
		ratio, addP50, addP99 := "", "", ""
		if r.via != "direct" && direct != nil && direct.scenario == r.scenario {
			ratio = fmt.Sprintf("%.0f%%", 100*o.rps()/direct.o.rps())
			addP50 = us(pct(o.lat, 50) - pct(direct.o.lat, 50))
			addP99 = us(pct(o.lat, 99) - pct(direct.o.lat, 99))
			if r.stream {
				addP50 = us(pct(o.ttfc, 50)-pct(direct.o.ttfc, 50)) + " ttfc"
			}
		}
		ttfc50, ttfc99, evs := "", "", ""
		if r.stream {
			ttfc50, ttfc99 = us(pct(o.ttfc, 50)), us(pct(o.ttfc, 99))
			evs = fmt.Sprintf("%.0f", float64(o.events)/o.elapsed.Seconds())
		}
		pxCPU, peak := "", ""
		if r.via != "direct" {
			pxCPU = fmt.Sprintf("%.3f", cpuPer1k(r.proxy.cpu, o.requests))
			peak = mb(r.proxyPeak)
		}
		errs := itoa(int(o.errors))
		if o.firstErr != "" {
			errs += " (" + trunc(o.firstErr, 40) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.3f\t%s\t%s\t\n",
			r.scenario, r.via, r.client, o.rps(), ratio, us(pct(o.lat, 50)), us(pct(o.lat, 90)), us(pct(o.lat, 99)), us(pct(o.lat, 99.9)),
			addP50, addP99, ttfc50, ttfc99, evs, pxCPU, cpuPer1k(r.up.cpu, o.requests), peak, errs)
	}
	tw.Flush()
}

// printIdle prints idle-10k's rows, bare then gateway, and the gateway's
// RSS as a multiple of the bare proxy's.
func printIdle(out io.Writer, idle []idleResult) {
	if len(idle) == 0 {
		return
	}
	r0 := idle[0]
	fmt.Fprintf(out, "\nidle-10k: %d streams held open through each proxy in turn (upstream over %s); proxy figures while they are held, then after release:\n",
		r0.streams, r0.upstreamProto)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "via\tclient\theld\topened in\tRSS before\tRSS held\tpeak RSS\tper stream\tgoroutines\tlive heap\tstacks\tthreads\tfds\tup RSS\t|\tended\tfailed\tRSS after\tgoroutines after\tthreads after\tfds after\tup streams left\t")
	for _, r := range idle {
		perStream := float64(r.held.rss-r.before.rss) / float64(max(r.opened-r.failed, 1)) / 1024
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%.1fKiB\t%s\t%s\t%s\t%d\t%d\t%s\t|\t%d\t%d\t%s\t%s\t%d\t%d\t%d\t\n",
			r.via, r.client, r.opened-r.failed, r.took.Round(time.Millisecond), mb(r.before.rss), mb(r.held.rss), mb(r.held.hwm), perStream,
			count(r.gHeld), mbOr(r.heapHeld), mbOr(r.stackHeld), r.held.threads, r.held.fds, mb(r.upHeld.rss),
			r.ended, r.failed, mb(r.after.rss), count(r.gAfter), r.after.threads, r.after.fds, r.upStreamingAfter)
	}
	tw.Flush()
	for _, r := range idle {
		if r.firstErr != "" {
			fmt.Fprintf(out, "  %s first error: %s\n", r.via, r.firstErr)
		}
	}
	if b, g := idleRow(idle, "bare"), idleRow(idle, "gateway"); b != nil && g != nil {
		fmt.Fprintf(out, "  gateway / bare (%s): RSS held x%.2f (%s vs %s), peak RSS x%.2f, RSS added by the streams x%.2f; live heap + stacks x%.2f; goroutines %s vs %s\n",
			g.client, ratioOf(g.held.rss, b.held.rss), mb(g.held.rss), mb(b.held.rss), ratioOf(g.held.hwm, b.held.hwm),
			ratioOf(g.held.rss-g.before.rss, b.held.rss-b.before.rss), ratioOf(g.heapHeld+g.stackHeld, b.heapHeld+b.stackHeld), count(g.gHeld), count(b.gHeld))
	}
	fmt.Fprintln(out, "  (per stream: RSS held minus RSS before, over the streams held; goroutines, live heap (after a collection) and stacks from each process's /debug/pprof/, read after RSS)")
}

// idleRow returns idle-10k's row through via, or nil.
func idleRow(idle []idleResult, via string) *idleResult {
	for i := range idle {
		if idle[i].via == via {
			return &idle[i]
		}
	}
	return nil
}

// mbOr formats a size that may be unknown (-1).
func mbOr(n int64) string {
	if n < 0 {
		return "-"
	}
	return mb(n)
}

func ratioOf(a, b int64) float64 { return float64(a) / float64(max(b, 1)) }

// count formats a count that may be unknown (-1).
func count(n int) string {
	if n < 0 {
		return "-"
	}
	return itoa(n)
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func cpuPer1k(cpu time.Duration, requests int64) float64 {
	if requests == 0 {
		return 0
	}
	return cpu.Seconds() / float64(requests) * 1000
}

// printTargets checks the targets against this run, for the
// gateway with each upstream client.
func printTargets(out io.Writer, rows []row, idle []idleResult, clients []string) {
	fmt.Fprintln(out, "\ntargets (gateway vs direct, this run):")
	for _, client := range clients {
		printClientTargets(out, rows, client)
	}
	if g := idleRow(idle, "gateway"); g != nil {
		check := checker(out, g.client)
		check(fmt.Sprintf("%d idle streams: gateway RSS <= 300MB", g.streams), g.held.rss <= 300<<20 && g.failed == 0, mb(g.held.rss))
		if b := idleRow(idle, "bare"); b != nil {
			r := ratioOf(g.held.rss, b.held.rss)
			check(fmt.Sprintf("%d idle streams: gateway RSS <= 1.15 x bare", g.streams), r <= 1.15 && g.failed == 0 && b.failed == 0,
				fmt.Sprintf("x%.2f (%s vs %s)", r, mb(g.held.rss), mb(b.held.rss)))
		}
		check("idle streams all end (no leak)", g.ended == g.opened && g.upStreamingAfter == 0,
			fmt.Sprintf("%d of %d ended; gateway threads %d -> %d, goroutines %s -> %s", g.ended, g.opened, g.held.threads, g.after.threads, count(g.gHeld), count(g.gAfter)))
	}
	fmt.Fprintln(out, "  (allocations per request: go test -run '^$' -bench . -benchmem ./bench ; see bench/README.md)")
}

// checker returns a function that prints one target's line.
func checker(out io.Writer, client string) func(name string, ok bool, got string) {
	return func(name string, ok bool, got string) {
		mark := "MISS"
		if ok {
			mark = "ok"
		}
		fmt.Fprintf(out, "  %-4s %-9s %-52s %s\n", mark, client, name, got)
	}
}

func printClientTargets(out io.Writer, rows []row, client string) {
	find := func(sc, via string) *row {
		if via == "direct" {
			return findRow(rows, sc, via, "")
		}
		return findRow(rows, sc, via, client)
	}
	check := checker(out, client)
	if d, g := find("closed-50", "direct"), find("closed-50", "gateway"); d != nil && g != nil {
		r := g.o.rps() / d.o.rps()
		check("closed loop, 50 conns: >= 30% of direct throughput", r >= 0.30, fmt.Sprintf("%.0f%% (%.0f of %.0f req/s)", 100*r, g.o.rps(), d.o.rps()))
	}
	if d, g := find("serial", "direct"), find("serial", "gateway"); d != nil && g != nil {
		a := pct(g.o.lat, 50) - pct(d.o.lat, 50)
		check("one at a time: added p50 <= 100µs", a <= 100*time.Microsecond, us(a))
	}
	if d, g := find("open-1k", "direct"), find("open-1k", "gateway"); d != nil && g != nil {
		a := pct(g.o.lat, 99) - pct(d.o.lat, 99)
		check("open loop 1,000 req/s: added p99 <= 1ms", a <= time.Millisecond, us(a))
	}
	if d, g := find("stream-50", "direct"), find("stream-50", "gateway"); d != nil && g != nil {
		r := float64(g.o.events) / float64(max(d.o.events, 1)) * d.o.elapsed.Seconds() / g.o.elapsed.Seconds()
		check("streams: >= 40% of direct stream throughput (events/s)", r >= 0.40, fmt.Sprintf("%.0f%%", 100*r))
	}
	if d, g := find("stream-1", "direct"), find("stream-1", "gateway"); d != nil && g != nil {
		a := pct(g.o.ttfc, 50) - pct(d.o.ttfc, 50)
		check("streams: time to first chunk added <= 200µs (p50)", a <= 200*time.Microsecond, us(a))
	}
}

// findRow returns the row of scenario sc via via with the upstream client
// client ("" for direct), or nil.
func findRow(rows []row, sc, via, client string) *row {
	for i := range rows {
		if rows[i].scenario == sc && rows[i].via == via && rows[i].client == client {
			return &rows[i]
		}
	}
	return nil
}

// signedUS formats a difference in microseconds with its sign.
func signedUS(d time.Duration) string {
	return fmt.Sprintf("%+.0fµs", float64(d)/float64(time.Microsecond))
}

// evRate is a run's SSE events per second.
func evRate(r *row) float64 { return float64(r.o.events) / r.o.elapsed.Seconds() }

// printVsBare compares the gateway with the bare net/http proxy of the same
// run and upstream client, scenario by scenario: what is left is the cost
// of the gateway's own logic (auth, limits, body handling, ledger, logs,
// metrics), the process hop, net/http's server and the upstream client
// being common to both.
func printVsBare(out io.Writer, rows []row, gateways []variant) {
	var lines []string
	for _, sc := range allScenarios {
		for _, v := range gateways {
			client := v.name
			b, g := findRow(rows, sc, "bare", v.client), findRow(rows, sc, "gateway", v.name)
			if b == nil || g == nil || b.o.requests == 0 {
				continue
			}
			cpu := fmt.Sprintf("CPU %.3f vs %.3f s/1k", cpuPer1k(g.proxy.cpu, g.o.requests), cpuPer1k(b.proxy.cpu, b.o.requests))
			var l string
			switch sc {
			case "closed-50":
				l = fmt.Sprintf("%.0f%% of bare's throughput (%.0f of %.0f req/s); p50 %s", 100*g.o.rps()/b.o.rps(), g.o.rps(), b.o.rps(),
					signedUS(pct(g.o.lat, 50)-pct(b.o.lat, 50)))
			case "serial":
				l = fmt.Sprintf("added p50 %s, p99 %s over bare", signedUS(pct(g.o.lat, 50)-pct(b.o.lat, 50)), signedUS(pct(g.o.lat, 99)-pct(b.o.lat, 99)))
			case "open-1k":
				l = fmt.Sprintf("added p50 %s, p99 %s over bare", signedUS(pct(g.o.lat, 50)-pct(b.o.lat, 50)), signedUS(pct(g.o.lat, 99)-pct(b.o.lat, 99)))
			case "stream-50":
				l = fmt.Sprintf("%.0f%% of bare's events/s (%.0f of %.0f)", 100*evRate(g)/max(evRate(b), 1e-9), evRate(g), evRate(b))
			case "stream-1":
				l = fmt.Sprintf("TTFC p50 %s, p99 %s over bare; whole stream p50 %s", signedUS(pct(g.o.ttfc, 50)-pct(b.o.ttfc, 50)),
					signedUS(pct(g.o.ttfc, 99)-pct(b.o.ttfc, 99)), signedUS(pct(g.o.lat, 50)-pct(b.o.lat, 50)))
			default:
				continue
			}
			lines = append(lines, fmt.Sprintf("  %-10s %-9s %s; %s", sc, client, l, cpu))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(out, "\ngateway vs bare net/http proxy (the gateway's own logic, this run):")
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
}

// printClients compares each upstream client with the first (net/http by
// default), bare proxy with bare proxy and gateway with gateway, in the
// same run: the whole run's figure, and the least, median and greatest of
// the paired rounds (each round ran both rows one after the other).
func printClients(out io.Writer, rows []row, clients []string) {
	if len(clients) < 2 {
		return
	}
	ref := clients[0]
	fmt.Fprintf(out, "\nupstream clients vs %s (same proxy, this run; [least, median, greatest] of the paired rounds):\n", ref)
	ratio := func(x, y float64) float64 { return 100 * (x/max(y, 1e-9) - 1) }
	for _, client := range clients[1:] {
		for _, sc := range allScenarios {
			for _, via := range []string{"bare", "gateway"} {
				a, b := findRow(rows, sc, via, client), findRow(rows, sc, via, ref)
				if a == nil || b == nil || a.o.requests == 0 || b.o.requests == 0 || len(a.rounds) != len(b.rounds) {
					continue
				}
				// per applies f to every pair of rounds and formats the
				// least, the median and the greatest.
				per := func(f func(x, y roundStat) float64, format string) string {
					v := make([]float64, len(a.rounds))
					for i := range a.rounds {
						v[i] = f(a.rounds[i], b.rounds[i])
					}
					slices.Sort(v)
					return fmt.Sprintf("["+format+", "+format+", "+format+"]", v[0], v[len(v)/2], v[len(v)-1])
				}
				usDiff := func(x, y time.Duration) float64 { return float64(x-y) / float64(time.Microsecond) }
				var l string
				switch sc {
				case "closed-50", "open-1k":
					l = fmt.Sprintf("req/s %+.1f%% %s; p50 %s", ratio(a.o.rps(), b.o.rps()),
						per(func(x, y roundStat) float64 { return ratio(x.rps, y.rps) }, "%+.1f%%"), signedUS(pct(a.o.lat, 50)-pct(b.o.lat, 50)))
				case "serial":
					l = fmt.Sprintf("p50 %s %s, p99 %s; req/s %+.1f%%", signedUS(pct(a.o.lat, 50)-pct(b.o.lat, 50)),
						per(func(x, y roundStat) float64 { return usDiff(x.p50, y.p50) }, "%+.0fµs"),
						signedUS(pct(a.o.lat, 99)-pct(b.o.lat, 99)), ratio(a.o.rps(), b.o.rps()))
				case "stream-50":
					l = fmt.Sprintf("events/s %+.1f%% %s", ratio(evRate(a), evRate(b)),
						per(func(x, y roundStat) float64 { return ratio(x.eps, y.eps) }, "%+.1f%%"))
				case "stream-1":
					l = fmt.Sprintf("TTFC p50 %s %s; whole stream p50 %s %s", signedUS(pct(a.o.ttfc, 50)-pct(b.o.ttfc, 50)),
						per(func(x, y roundStat) float64 { return usDiff(x.ttfc, y.ttfc) }, "%+.0fµs"),
						signedUS(pct(a.o.lat, 50)-pct(b.o.lat, 50)),
						per(func(x, y roundStat) float64 { return usDiff(x.p50, y.p50) }, "%+.0fµs"))
				default:
					continue
				}
				fmt.Fprintf(out, "  %-10s %-9s %-7s %s; CPU %.3f vs %.3f s/1k\n", sc, client, via, l,
					cpuPer1k(a.proxy.cpu, a.o.requests), cpuPer1k(b.proxy.cpu, b.o.requests))
			}
		}
	}
}
