package llmproxy

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/go-llm-proxy/llmproxy/pricing"
	"math/rand/v2"
	"sort"
	"sync/atomic"
	"time"
)

// snapshot is the configuration the request path reads: immutable once
// built, swapped atomically when the stored configuration changes.
type snapshot struct {
	version string
	keys    map[[32]byte]*keyEntry // by SHA-256 of the secret
	aliases map[string][]grant     // every alias, unlimited: the master key's grants
	conns   map[string]*upstream   // by connection ID
}

// upstream is a connection with its provider, reused across reloads while
// the connection is unchanged so upstream connection pools survive.
type upstream struct {
	Connection
	provider Provider
	err      error // why provider is nil
	// firstByte bounds the wait for an upstream's answer headers (for a
	// non-streaming request: the whole answer); idle the silence allowed
	// between stream events.
	firstByte, idle time.Duration
	health          health
}

// target is one model behind an alias, on its upstream.
type target struct {
	model    Model
	upstream *upstream
	weight   int
	// price is what the model's requests cost, when priced: its own
	// override, else the price table's entry for its remote name.
	price  pricing.Price
	priced bool
}

// priceOf is the price model m is charged at on a connection of kind
// provider: its override, else the price table's; ok is false when
// neither knows it.
func priceOf(m Model, provider string) (p pricing.Price, ok bool) {
	if m.Price != nil {
		return *m.Price, true
	}
	p, _, ok = pricing.Lookup(provider, m.Remote)
	return p, ok
}

// grant is a target a key may use, and the assignment whose limits apply.
type grant struct {
	*target
	assignment *Assignment // nil for the master key
	// Limiter keys of the assignment's request bucket and token window.
	rateKey, tokenKey string
}

func newGrant(t *target, a *Assignment) grant {
	return grant{target: t, assignment: a, rateKey: "r:" + a.ID, tokenKey: "t:" + a.ID}
}

type keyEntry struct {
	key    VirtualKey
	grants map[string][]grant // by alias
	models []string           // the aliases, sorted, for /v1/models
}

// loadSnapshot reads the whole configuration. prev, when non-nil, lends
// its providers to unchanged connections.
func (g *Gateway) loadSnapshot(ctx context.Context, prev *snapshot) (*snapshot, error) {
	version, err := g.cfg.Storage.ConfigVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the configuration version: %w", err)
	}
	conns, err := g.cfg.Storage.Connections(ctx, ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("loading connections: %w", err)
	}
	models, err := g.cfg.Storage.Models(ctx, ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("loading models: %w", err)
	}
	keys, err := g.cfg.Storage.Keys(ctx, ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("loading keys: %w", err)
	}
	s := &snapshot{
		version: version,
		keys:    make(map[[32]byte]*keyEntry, len(keys)),
		aliases: make(map[string][]grant),
		conns:   make(map[string]*upstream, len(conns)),
	}
	for _, c := range conns {
		if prev != nil {
			if old := prev.conns[c.ID]; old != nil && old.UpdatedAt.Equal(c.UpdatedAt) && old.Credentials == c.Credentials {
				s.conns[c.ID] = old
				continue
			}
		}
		e := &upstream{Connection: c, firstByte: g.cfg.FirstByteTimeout, idle: g.cfg.StreamIdleTimeout}
		if d, err := settingDuration(c.Settings, SettingFirstByteTimeout); err != nil {
			g.log.Warn("connection setting ignored", "connection", c.ID, "err", err)
		} else if d > 0 {
			e.firstByte = d
		}
		if d, err := settingDuration(c.Settings, SettingIdleTimeout); err != nil {
			g.log.Warn("connection setting ignored", "connection", c.ID, "err", err)
		} else if d > 0 {
			e.idle = d
		}
		if newProvider := g.cfg.Providers[c.Provider]; newProvider == nil {
			e.err = fmt.Errorf("no provider for kind %q", c.Provider)
		} else {
			e.provider, e.err = newProvider(c, ProviderOptions{HTTPClient: g.client, Logger: g.log})
		}
		if e.err != nil {
			g.log.Warn("connection unusable", "connection", c.ID, "name", c.Name, "err", e.err)
		}
		s.conns[c.ID] = e
	}
	g.restoreTokenWindows(ctx, prev, keys)
	g.restoreBudgets(ctx, prev, keys)
	routesByModel := make(map[string]*target, len(models))
	routesByConn := make(map[string][]*target)
	for _, m := range models {
		ce := s.conns[m.ConnectionID]
		if ce == nil {
			continue
		}
		r := &target{model: m, upstream: ce, weight: max(m.Weight, 1)}
		r.price, r.priced = priceOf(m, ce.Provider)
		routesByModel[m.ID] = r
		routesByConn[m.ConnectionID] = append(routesByConn[m.ConnectionID], r)
		s.aliases[m.Name] = append(s.aliases[m.Name], grant{target: r})
	}
	for i := range keys {
		k := &keys[i]
		e := &keyEntry{key: *k, grants: make(map[string][]grant)}
		e.key.Assignments = append([]Assignment(nil), k.Assignments...)
		// A model assignment is more specific than a connection one, so
		// its limits win when both cover a model.
		byModel := make(map[string]grant)
		for j := range e.key.Assignments {
			a := &e.key.Assignments[j]
			if a.ConnectionID != "" {
				for _, r := range routesByConn[a.ConnectionID] {
					if _, ok := byModel[r.model.ID]; !ok {
						byModel[r.model.ID] = newGrant(r, a)
					}
				}
			}
		}
		for j := range e.key.Assignments {
			a := &e.key.Assignments[j]
			if r := routesByModel[a.ModelID]; a.ModelID != "" && r != nil {
				byModel[r.model.ID] = newGrant(r, a)
			}
		}
		for _, gr := range byModel {
			e.grants[gr.model.Name] = append(e.grants[gr.model.Name], gr)
		}
		for alias, gs := range e.grants {
			sort.Slice(gs, func(i, j int) bool { return gs[i].model.ID < gs[j].model.ID })
			e.models = append(e.models, alias)
		}
		sort.Strings(e.models)
		var sum [32]byte
		if n, err := hex.Decode(sum[:], []byte(k.Hash)); err != nil || n != 32 {
			g.log.Warn("key has a malformed hash; it cannot be used", "key", k.ID)
			continue
		}
		s.keys[sum] = e
	}
	return s, nil
}

// Connection settings the Gateway itself reads (durations such as "30s").
const (
	SettingFirstByteTimeout = "first_byte_timeout"
	SettingIdleTimeout      = "idle_timeout"
)

func settingDuration(settings map[string]string, name string) (time.Duration, error) {
	v := settings[name]
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s %q is not a positive duration", name, v)
	}
	return d, nil
}

// health tracks a connection's consecutive failures; after
// coolDownAfter of them the connection cools down: it is tried last
// until coolDown has passed.
type health struct {
	failures  atomic.Int32
	coolUntil atomic.Int64 // unix ns
}

const (
	coolDownAfter = 3
	coolDown      = 30 * time.Second
)

// note counts an upstream call's outcome.
func (h *health) note(err error) {
	if err == nil || !retryable(err) {
		h.failures.Store(0)
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	if h.failures.Add(1) >= coolDownAfter {
		h.coolUntil.Store(time.Now().Add(coolDown).UnixNano())
		h.failures.Store(0)
	}
}

func (h *health) cooling(now int64) bool { return now < h.coolUntil.Load() }

// order returns the grants to try for one request: a weighted random first
// choice, then the rest in weighted random order (for fallback), with
// cooling-down connections last.
func (g *Gateway) order(gs []grant) []grant {
	if len(gs) <= 1 {
		return gs
	}
	out := make([]grant, len(gs))
	copy(out, gs)
	now := time.Now().UnixNano()
	defer sort.SliceStable(out, func(i, j int) bool {
		return !out[i].upstream.health.cooling(now) && out[j].upstream.health.cooling(now)
	})
	for i := range out {
		total := 0
		for _, g := range out[i:] {
			total += g.weight
		}
		n := rand.IntN(total)
		for j := i; j < len(out); j++ {
			n -= out[j].weight
			if n < 0 {
				out[i], out[j] = out[j], out[i]
				break
			}
		}
	}
	return out
}

// watch reloads the snapshot whenever the stored version changes, until
// ctx ends. Errors keep the current snapshot: requests go on being served
// from memory while the database is away.
func (g *Gateway) watch(ctx context.Context) {
	defer close(g.watchDone)
	t := time.NewTicker(g.cfg.PollInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := g.refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				g.log.Warn("configuration refresh failed; serving the last snapshot", "err", err)
			}
			failing = true
			continue
		}
		if failing {
			g.log.Info("configuration refresh recovered")
		}
		failing = false
	}
}

// refresh loads a new snapshot if the stored version moved.
func (g *Gateway) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cur := g.snap.Load()
	v, err := g.cfg.Storage.ConfigVersion(ctx)
	if err != nil {
		return err
	}
	if v == cur.version {
		return nil
	}
	s, err := g.loadSnapshot(ctx, cur)
	if err != nil {
		return err
	}
	g.snap.Store(s)
	return nil
}

// restoreTokenWindows seeds the local token windows of assignments new to
// this process from the usage ledger, so that a restart does not hand out
// a fresh window. A shared limiter keeps its own counters.
func (g *Gateway) restoreTokenWindows(ctx context.Context, prev *snapshot, keys []VirtualKey) {
	if g.limiter != Limiter(g.local) {
		return
	}
	known := map[string]bool{}
	if prev != nil {
		for _, e := range prev.keys {
			for _, a := range e.key.Assignments {
				known[a.ID] = a.TokenLimit > 0
			}
		}
	}
	now := time.Now()
	for _, k := range keys {
		for _, a := range k.Assignments {
			if a.TokenLimit <= 0 || known[a.ID] {
				continue
			}
			used, _, err := SpentSince(ctx, g.cfg.Storage, UsageFilter{AssignmentID: a.ID}, windowStart(now, a.TokenWindow))
			if err != nil {
				g.log.Warn("cannot restore a token window from the ledger", "assignment", a.ID, "err", err)
				continue
			}
			g.local.SetTokensUsed(newGrant(nil, &a).tokenKey, used, a.TokenWindow, now)
		}
	}
}
