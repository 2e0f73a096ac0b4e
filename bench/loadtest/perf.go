package main

import (
	"bytes"
	"debug/elf"
	"debug/gosym"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// -perf counts, with perf stat, what each proxy process (bare and gateway)
// makes the scheduler and the kernel do per request: in the middle of each
// measured round, a window in which perf's counters are enabled, divided
// by the requests the upstream served in that window (each proxied request
// reaches it once).

// perfEvent is one counted event; filter is a tracepoint filter.
type perfEvent struct {
	event, filter, column string
}

// Futex operations (linux/futex.h): Go's runtime and glibc wake a sleeping
// thread with FUTEX_WAKE|FUTEX_PRIVATE_FLAG.
const futexWakePrivate = 129

// perfEvents are counted in this order; a goroutine-creation probe is
// added when perf probe could place it.
var perfEvents = []perfEvent{
	{"task-clock", "", "CPU µs"}, // msec in perf's output, shown in µs
	{"context-switches", "", "ctx-sw"},
	{"cpu-migrations", "", "migrations"},
	{"sched:sched_wakeup", "", "wakeup"},
	{"sched:sched_waking", "", "waking"},
	{"syscalls:sys_enter_futex", "", "futex"},
	{"syscalls:sys_enter_futex", fmt.Sprintf("op == %d", futexWakePrivate), "futex wake"},
	{"syscalls:sys_enter_epoll_pwait", "", "epoll_pwait"},
	{"raw_syscalls:sys_enter", "", "syscalls"},
}

// perfCounts are a row's counts, summed over its windows, and the requests
// served in them, per column (goroutines are counted in a window of their
// own).
type perfCounts struct {
	windows int
	v       []float64 // per column (perfColumns); -1 not counted
	reqs    []int64   // per column: the requests served while it counted
}

// perfSetup is -perf's state for a run: the uprobes it placed on
// runtime.newproc1 (one per executable, by path), removed at the end.
type perfSetup struct {
	dir    string
	probes map[string]string // executable -> perf event
	note   string            // why goroutines are not counted, if they are not
}

// setupPerf checks that perf can count here and places a uprobe on
// runtime.newproc1 (every goroutine the runtime creates) in each
// executable.
func setupPerf(dir string, bins []string) (*perfSetup, error) {
	if _, err := exec.LookPath("perf"); err != nil {
		return nil, fmt.Errorf("-perf: %w", err)
	}
	s := &perfSetup{dir: dir, probes: map[string]string{}}
	for i, bin := range bins {
		if _, ok := s.probes[bin]; ok {
			continue
		}
		name := fmt.Sprintf("llmbench:newproc_%d_%d", os.Getpid(), i)
		off, err := funcOffset(bin, "runtime.newproc1")
		if err != nil {
			s.note = fmt.Sprintf("goroutines not counted: %v", err)
			continue
		}
		// By file offset (which perf probe takes a number for): go run
		// links without a symbol table, which perf probe needs to find
		// a function by name.
		out, err := exec.Command("perf", "probe", "-q", "-x", bin, "-a", fmt.Sprintf("%s=%#x", name, off)).CombinedOutput()
		if err != nil {
			s.note = fmt.Sprintf("goroutines not counted: perf probe on %s: %v: %s", bin, err, lastLine(out))
			continue
		}
		s.probes[bin] = name
	}
	return s, nil
}

// close removes the probes.
func (s *perfSetup) close() {
	if s == nil {
		return
	}
	for _, name := range s.probes {
		exec.Command("perf", "probe", "-q", "-d", name).Run()
	}
}

// funcOffset returns the file offset of the Go function name in the
// executable bin, found by address in its symbol table or, in a binary
// linked without one (go run's), in the table Go keeps for its own stack
// traces.
func funcOffset(bin, name string) (uint64, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	addr, err := symAddr(f, name)
	if err != nil {
		if addr, err = pclnAddr(f, name); err != nil {
			return 0, fmt.Errorf("%s: %w", bin, err)
		}
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && p.Vaddr <= addr && addr < p.Vaddr+p.Filesz {
			return addr - p.Vaddr + p.Off, nil
		}
	}
	return 0, fmt.Errorf("%s: %s at %#x is in no executable segment", bin, name, addr)
}

// symAddr finds the function name in f's symbol table.
func symAddr(f *elf.File, name string) (uint64, error) {
	syms, err := f.Symbols()
	if err != nil {
		return 0, err
	}
	for _, s := range syms {
		if s.Name == name && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			return s.Value, nil
		}
	}
	return 0, fmt.Errorf("no symbol %s", name)
}

// pclnAddr finds the function name in f's .gopclntab.
func pclnAddr(f *elf.File, name string) (uint64, error) {
	pcln, text := f.Section(".gopclntab"), f.Section(".text")
	if pcln == nil || text == nil {
		return 0, errors.New("no symbol table nor .gopclntab")
	}
	data, err := pcln.Data()
	if err != nil {
		return 0, err
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return 0, err
	}
	fn := tab.LookupFunc(name)
	if fn == nil {
		return 0, fmt.Errorf("no function %s", name)
	}
	return fn.Entry, nil
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// goroutineEvent returns the probe counting goroutines created in the
// process running bin, if one could be placed.
func (s *perfSetup) goroutineEvent(bin string) (perfEvent, bool) {
	probe, ok := s.probes[bin]
	return perfEvent{probe, "", "goroutines"}, ok
}

// columns are every column a row may have: perfEvents', then goroutines.
func perfColumns() []string {
	var c []string
	for _, e := range perfEvents {
		c = append(c, e.column)
	}
	return append(c, "goroutines")
}

// perfStat is a perf stat attached to a process, its counters disabled
// until enable, controlled through two FIFOs.
type perfStat struct {
	cmd      *exec.Cmd
	ctl, ack *os.File
	out      string
	stderr   bytes.Buffer
	n        int // events
}

// startPerf attaches perf stat to pid, counting events, disabled; it
// returns once perf answers on its control FIFO.
func startPerf(dir string, pid int, events []perfEvent) (*perfStat, error) {
	sdir, err := os.MkdirTemp(dir, "perf-")
	if err != nil {
		return nil, err
	}
	ctlPath, ackPath := filepath.Join(sdir, "ctl"), filepath.Join(sdir, "ack")
	for _, f := range []string{ctlPath, ackPath} {
		if err := syscall.Mkfifo(f, 0o600); err != nil {
			return nil, err
		}
	}
	p := &perfStat{out: filepath.Join(sdir, "stat.csv"), n: len(events)}
	// Read-write, so that opening does not wait for perf's end.
	if p.ctl, err = os.OpenFile(ctlPath, os.O_RDWR, 0); err != nil {
		return nil, err
	}
	if p.ack, err = os.OpenFile(ackPath, os.O_RDWR, 0); err != nil {
		p.ctl.Close()
		return nil, err
	}
	args := []string{"stat", "-x", ",", "-o", p.out, "-D", "-1", "--control", "fifo:" + ctlPath + "," + ackPath, "-p", strconv.Itoa(pid)}
	for _, e := range events {
		args = append(args, "-e", e.event)
		if e.filter != "" {
			args = append(args, "--filter", e.filter)
		}
	}
	p.cmd = exec.Command("perf", args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stderr, &p.stderr
	if err := p.cmd.Start(); err != nil {
		p.close()
		return nil, err
	}
	if err := p.command("ping"); err != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		p.close()
		return nil, fmt.Errorf("perf stat did not start: %w: %s", err, strings.TrimSpace(p.stderr.String()))
	}
	return p, nil
}

// command sends perf a control command and waits for its acknowledgement.
func (p *perfStat) command(c string) error {
	if _, err := p.ctl.WriteString(c + "\n"); err != nil {
		return err
	}
	p.ack.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ack [5]byte // "ack\n\x00"
	if _, err := io.ReadFull(p.ack, ack[:]); err != nil {
		return err
	}
	if !bytes.HasPrefix(ack[:], []byte("ack\n")) {
		return fmt.Errorf("perf answered %q to %s", ack, c)
	}
	return nil
}

func (p *perfStat) close() {
	p.ctl.Close()
	p.ack.Close()
}

// finish stops perf and returns its counts, in the events' order (-1 for
// one not counted).
func (p *perfStat) finish() ([]float64, error) {
	defer p.close()
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
	out, err := os.ReadFile(p.out)
	if err != nil {
		return nil, err
	}
	v, err := parsePerfCSV(out, p.n)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, strings.TrimSpace(p.stderr.String()))
	}
	return v, nil
}

// parsePerfCSV reads perf stat -x, output: one line per event, in order,
// "value,unit,event,…"; "<not counted>" and "<not supported>" give -1.
// perf may write its control messages ("Events disabled") into the file
// too, even on a counter's line, after it.
func parsePerfCSV(out []byte, n int) ([]float64, error) {
	var v []float64
	for line := range strings.Lines(string(out)) {
		f := strings.Split(line, ",")
		if strings.HasPrefix(line, "#") || len(f) < 4 {
			continue
		}
		x, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			x = -1
		}
		v = append(v, x)
	}
	if len(v) != n {
		return nil, fmt.Errorf("perf stat printed %d counts, not %d", len(v), n)
	}
	return v, nil
}

// perfWindow counts the proxy p's events while the load runs: once skip
// has passed (the warm-up and a margin), the scheduling events for the
// first three quarters of d, then goroutine creation for the rest. The
// probe that counts goroutines traps on every one (from when its event is
// opened), which on this kind of virtual machine costs tens of µs each:
// counted together, it would slow
// the proxy and inflate every event that comes with time (timer ticks,
// idle threads parking) per request. Each part is divided by the requests
// the upstream served during it. A nil result means the window could not
// be measured.
func (b *bench) perfWindow(p *process, skip, d time.Duration) func() *perfCounts {
	nop := func() *perfCounts { return nil }
	pid := p.cmd.Process.Pid
	sched, err := startPerf(b.perf.dir, pid, perfEvents)
	if err != nil {
		b.perfErr(err)
		return nop
	}
	gev, probed := b.perf.goroutineEvent(p.bin)
	began := time.Now()
	res := make(chan *perfCounts, 1)
	go func() {
		c := &perfCounts{windows: 1, v: make([]float64, len(perfColumns())), reqs: make([]int64, len(perfColumns()))}
		for i := range c.v {
			c.v[i] = -1
		}
		time.Sleep(time.Until(began.Add(skip)))
		// count runs ps for dt and fills the columns of events.
		count := func(ps *perfStat, events []perfEvent, dt time.Duration) error {
			st0, err0 := b.upStats()
			errOn := ps.command("enable")
			time.Sleep(dt)
			errOff := ps.command("disable")
			st1, err1 := b.upStats()
			v, err := ps.finish()
			if err := errors.Join(err0, errOn, errOff, err1, err); err != nil {
				return err
			}
			for i, e := range events {
				j := columnIndex(e.column)
				c.v[j], c.reqs[j] = v[i], st1.Served-st0.Served
			}
			return nil
		}
		var errG error
		errS := count(sched, perfEvents, d*3/4)
		if probed {
			// Only now: a uprobe traps from when its event is opened,
			// enabled or not.
			gor, err := startPerf(b.perf.dir, pid, []perfEvent{gev})
			if err == nil {
				err = count(gor, []perfEvent{gev}, d/4)
			}
			errG = err
		}
		if err := errors.Join(errS, errG); err != nil {
			b.perfErr(err)
			res <- nil
			return
		}
		res <- c
	}()
	return func() *perfCounts { return <-res }
}

func columnIndex(col string) int {
	for i, c := range perfColumns() {
		if c == col {
			return i
		}
	}
	panic("no perf column " + col)
}

// perfErr reports the first error of -perf, once.
func (b *bench) perfErr(err error) {
	b.perfOnce.Do(func() { fmt.Fprintln(os.Stderr, "loadtest -perf:", err) })
}

// add sums another window into c.
func (c *perfCounts) add(x *perfCounts) {
	if x == nil {
		return
	}
	if c.v == nil {
		c.v = make([]float64, len(x.v))
		c.reqs = make([]int64, len(x.v))
	}
	c.windows += x.windows
	for i, v := range x.v {
		c.reqs[i] += x.reqs[i]
		if v < 0 || c.v[i] < 0 {
			c.v[i] = -1
			continue
		}
		c.v[i] += v
	}
}

// perReq is column i per request (task-clock's msec as µs), or -1.
func (c *perfCounts) perReq(i int) float64 {
	if c == nil || c.v == nil || c.reqs[i] <= 0 || c.v[i] < 0 {
		return -1
	}
	v := c.v[i] / float64(c.reqs[i])
	if perfColumns()[i] == "CPU µs" {
		v *= 1000
	}
	return v
}

// printPerf prints each proxy row's counts per request, and the gateway
// minus the bare proxy of the same upstream client.
func printPerf(out io.Writer, rows []row, clients []string, note string) {
	has := false
	for i := range rows {
		has = has || rows[i].perf.windows > 0
	}
	if !has {
		return
	}
	cols := perfColumns()
	fmt.Fprintln(out, "\nper request, in each proxy process (-perf: perf stat -p PID in the middle of each measured round, goroutines in the last quarter of that window, apart; per request the upstream served meanwhile):")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\tvia\tclient\trequests\t%s\t\n", strings.Join(cols, "\t"))
	line := func(sc, via, client string, reqs string, v func(i int) string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t", sc, via, client, reqs)
		for i := range cols {
			fmt.Fprintf(tw, "%s\t", v(i))
		}
		fmt.Fprintln(tw)
	}
	num := func(x float64) string {
		if x < 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", x)
	}
	for _, sc := range allScenarios {
		for _, client := range clients {
			b, g := findRow(rows, sc, "bare", client), findRow(rows, sc, "gateway", client)
			for _, r := range []*row{b, g} {
				if r != nil && r.perf.windows > 0 {
					line(sc, r.via, client, strconv.FormatInt(r.perf.reqs[0], 10), func(i int) string { return num(r.perf.perReq(i)) })
				}
			}
			if b != nil && g != nil && b.perf.windows > 0 && g.perf.windows > 0 {
				line(sc, "gw - bare", client, "", func(i int) string {
					x, y := g.perf.perReq(i), b.perf.perReq(i)
					if x < 0 || y < 0 {
						return "-"
					}
					return fmt.Sprintf("%+.2f", x-y)
				})
			}
		}
	}
	tw.Flush()
	fmt.Fprintln(out, "  (waking: wake-ups this process's threads did, of their own threads and of the peers their socket writes wake; wakeup: wake-ups completed while one of its threads ran, which misses")
	fmt.Fprintln(out, "  some remote ones; futex wake: FUTEX_WAKE_PRIVATE calls; goroutines: created, counted by a uprobe on runtime.newproc1. Counting slows the proxies: take latency and throughput from a run without -perf)")
	if note != "" {
		fmt.Fprintln(out, "  "+note)
	}
}
