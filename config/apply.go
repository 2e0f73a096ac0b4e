package config

import (
	"context"
	"errors"
	"fmt"
	"github.com/go-llm-proxy/llmproxy/pricing"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

// Options change what Apply does.
type Options struct {
	// DryRun computes the changes without writing anything.
	DryRun bool
	// Prune deletes the connections, models and keys the file does not
	// list. Without it they are left alone.
	Prune bool
}

// Change is one record that Apply creates, updates or deletes.
type Change struct {
	Op   string // "create", "update" or "delete"
	Kind string // "connection", "model" or "key"
	Name string // a model's is "alias on connection"
	// Details says what changes, field by field; never a secret's value.
	Details []string
	// Secret is the secret generated for a new key whose file entry has
	// none (empty on a dry run): shown once, stored only as a hash.
	Secret string
}

// String writes c as a line of a diff: "+ key Mobile-App", "~ connection
// google-ai: endpoint …", "- model …".
func (c Change) String() string {
	sign := map[string]string{"create": "+", "update": "~", "delete": "-"}[c.Op]
	s := sign + " " + c.Kind + " " + c.Name
	if len(c.Details) > 0 {
		s += ": " + strings.Join(c.Details, "; ")
	}
	return s
}

// Apply makes the connections, models and keys of a's Storage match f:
// it creates what is missing and updates what differs, through the
// Admin's validated operations; with opts.Prune it also deletes what f
// does not list. Records are matched by name (a model by alias and
// connection). Applying the same file again changes nothing.
//
// Apply first runs on an in-memory copy of the configuration, so that an
// invalid file is refused before anything is written. The changes are
// returned in the order they were (or, on a dry run, would be) made.
func Apply(ctx context.Context, a *admin.Service, f *File, opts Options) ([]Change, error) {
	if err := checkNames(f); err != nil {
		return nil, err
	}
	trial, err := copyConfig(ctx, a.Storage)
	if err != nil {
		return nil, err
	}
	changes, err := apply(ctx, &admin.Service{Storage: trial, Kinds: a.Kinds, Providers: a.Providers}, f, opts)
	if err != nil || opts.DryRun {
		for i := range changes {
			if changes[i].Secret != "" {
				changes[i].Secret = ""
			}
		}
		return changes, err
	}
	return apply(ctx, a, f, opts)
}

// checkNames refuses duplicate names, which would make the file say two
// things of one record.
func checkNames(f *File) error {
	seen := map[string]bool{}
	dup := func(kind, name string) error {
		if strings.TrimSpace(name) == "" {
			return fmt.Errorf("%w: a %s without a name", llmproxy.ErrInvalid, kind)
		}
		k := kind + "\x00" + name
		if seen[k] {
			return fmt.Errorf("%w: %s %q is listed twice", llmproxy.ErrInvalid, kind, name)
		}
		seen[k] = true
		return nil
	}
	for _, c := range f.Connections {
		if err := dup("connection", c.Name); err != nil {
			return err
		}
	}
	for _, m := range f.Models {
		if err := dup("model", m.Name+" on "+m.Connection); err != nil {
			return err
		}
	}
	for _, k := range f.Keys {
		if err := dup("key", k.Name); err != nil {
			return err
		}
	}
	return nil
}

// copyConfig copies the connections, models and keys of s, IDs included,
// into a new in-memory store.
func copyConfig(ctx context.Context, s llmproxy.Storage) (llmproxy.Storage, error) {
	m := memory.New()
	conns, err := s.Connections(ctx, llmproxy.ListOptions{})
	if err != nil {
		return nil, err
	}
	for i := range conns {
		if err := m.CreateConnection(ctx, &conns[i]); err != nil {
			return nil, err
		}
	}
	models, err := s.Models(ctx, llmproxy.ListOptions{})
	if err != nil {
		return nil, err
	}
	for i := range models {
		if err := m.CreateModel(ctx, &models[i]); err != nil {
			return nil, err
		}
	}
	keys, err := s.Keys(ctx, llmproxy.ListOptions{})
	if err != nil {
		return nil, err
	}
	for i := range keys {
		if err := m.CreateKey(ctx, &keys[i]); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// state is the configuration as stored, indexed by name.
type state struct {
	conns     []llmproxy.Connection
	connByN   map[string]*llmproxy.Connection
	connName  map[string]string // ID -> name
	models    []llmproxy.Model
	modelName map[string]string // ID -> "alias on connection"
}

func load(ctx context.Context, a *admin.Service) (*state, error) {
	s := &state{connByN: map[string]*llmproxy.Connection{}, connName: map[string]string{}, modelName: map[string]string{}}
	var err error
	if s.conns, err = a.ListConnections(ctx, llmproxy.ListOptions{}); err != nil {
		return nil, err
	}
	for i := range s.conns {
		s.connByN[s.conns[i].Name] = &s.conns[i]
		s.connName[s.conns[i].ID] = s.conns[i].Name
	}
	if s.models, err = a.ListModels(ctx, llmproxy.ListOptions{}); err != nil {
		return nil, err
	}
	for _, m := range s.models {
		s.modelName[m.ID] = m.Name + " on " + s.connName[m.ConnectionID]
	}
	return s, nil
}

func apply(ctx context.Context, a *admin.Service, f *File, opts Options) ([]Change, error) {
	var changes []Change
	add := func(c Change) { changes = append(changes, c) }

	// ---- connections ----
	st, err := load(ctx, a)
	if err != nil {
		return nil, err
	}
	for _, fc := range f.Connections {
		want, err := normalizeConnection(ctx, a, fc)
		if err != nil {
			return changes, err
		}
		cur := st.connByN[want.Name]
		if cur == nil {
			if err := a.AddConnection(ctx, want); err != nil {
				return changes, err
			}
			add(Change{Op: "create", Kind: "connection", Name: want.Name, Details: []string{"provider " + want.Provider}})
			continue
		}
		d := connectionDiff(cur, want)
		if len(d) == 0 {
			continue
		}
		up := *cur
		up.Provider, up.Endpoint, up.Settings, up.Credentials = want.Provider, want.Endpoint, want.Settings, want.Credentials
		if err := a.Storage.UpdateConnection(ctx, &up); err != nil {
			return changes, fmt.Errorf("updating connection %q: %w", up.Name, err)
		}
		add(Change{Op: "update", Kind: "connection", Name: want.Name, Details: d})
	}

	// ---- models ----
	if st, err = load(ctx, a); err != nil {
		return changes, err
	}
	for _, fm := range f.Models {
		name := fm.Name + " on " + fm.Connection
		conn := st.connByN[fm.Connection]
		if conn == nil {
			return changes, fmt.Errorf("%w: model %q: connection %q not found (list it under connections)", llmproxy.ErrNotFound, fm.Name, fm.Connection)
		}
		i := slices.IndexFunc(st.models, func(m llmproxy.Model) bool { return m.Name == fm.Name && m.ConnectionID == conn.ID })
		if i < 0 {
			m := &llmproxy.Model{Name: fm.Name, Remote: fm.Remote, ConnectionID: conn.ID, Weight: fm.Weight, Price: fm.Price.price()}
			if err := a.AddModel(ctx, m); err != nil {
				return changes, err
			}
			add(Change{Op: "create", Kind: "model", Name: name, Details: []string{"remote " + m.Remote}})
			continue
		}
		cur := st.models[i]
		var d []string
		var u admin.ModelUpdate
		if remote := strings.TrimSpace(fm.Remote); cur.Remote != remote {
			d = append(d, fmt.Sprintf("remote %q -> %q", cur.Remote, remote))
			u.Remote = &remote
		}
		if max(cur.Weight, 1) != max(fm.Weight, 1) {
			d = append(d, fmt.Sprintf("weight %d -> %d", max(cur.Weight, 1), max(fm.Weight, 1)))
			u.Weight = &fm.Weight
		}
		// A price the file no longer has is cleared, as limits are.
		if want := fm.Price.price(); !samePrice(cur.Price, want) {
			d = append(d, fmt.Sprintf("price %s -> %s", priceText(cur.Price), priceText(want)))
			u.Price, u.ClearPrice = want, want == nil
		}
		if len(d) == 0 {
			continue
		}
		// The CLI's and the admin API's checks, so that a file cannot
		// store what they refuse.
		if _, err := a.UpdateModel(ctx, cur.ID, u); err != nil {
			return changes, err
		}
		add(Change{Op: "update", Kind: "model", Name: name, Details: d})
	}

	// ---- keys ----
	if st, err = load(ctx, a); err != nil {
		return changes, err
	}
	keys, err := a.ListKeys(ctx, llmproxy.ListOptions{})
	if err != nil {
		return changes, err
	}
	for _, fk := range f.Keys {
		want, err := st.assignments(fk)
		if err != nil {
			return changes, err
		}
		budget, err := checkedBudget(fk.Budget, fmt.Sprintf("key %q budget", fk.Name))
		if err != nil {
			return changes, err
		}
		i := slices.IndexFunc(keys, func(k llmproxy.VirtualKey) bool { return k.Name == fk.Name })
		if i < 0 {
			k := &llmproxy.VirtualKey{Name: fk.Name, ExpiresAt: fk.ExpiresAt, Budget: budget, Assignments: want}
			secret, err := a.AddKey(ctx, k, fk.Key)
			if err != nil {
				return changes, err
			}
			c := Change{Op: "create", Kind: "key", Name: fk.Name}
			if budget != nil {
				c.Details = append(c.Details, "budget "+budgetText(budget))
			}
			for _, as := range want {
				c.Details = append(c.Details, "+ "+st.describe(&as))
			}
			if fk.Key == "" {
				c.Secret = secret
				c.Details = append(c.Details, "secret generated")
			}
			add(c)
			continue
		}
		c, err := st.updateKey(ctx, a, keys, &keys[i], fk, budget, want)
		if err != nil {
			return changes, err
		}
		if len(c.Details) > 0 {
			add(c)
		}
	}

	// ---- prune: keys, then models, then connections ----
	if !opts.Prune {
		return changes, nil
	}
	inFile := map[string]bool{}
	for _, k := range f.Keys {
		inFile["key\x00"+k.Name] = true
	}
	for _, m := range f.Models {
		inFile["model\x00"+m.Name+" on "+m.Connection] = true
	}
	for _, c := range f.Connections {
		inFile["connection\x00"+c.Name] = true
	}
	for _, k := range keys {
		if !inFile["key\x00"+k.Name] {
			if _, err := a.DeleteKey(ctx, k.ID); err != nil {
				return changes, err
			}
			add(Change{Op: "delete", Kind: "key", Name: k.Name})
		}
	}
	for _, m := range st.models {
		if name := st.modelName[m.ID]; !inFile["model\x00"+name] {
			if _, err := a.DeleteModel(ctx, m.ID); err != nil {
				return changes, err
			}
			add(Change{Op: "delete", Kind: "model", Name: name})
		}
	}
	for _, c := range st.conns {
		if !inFile["connection\x00"+c.Name] {
			if _, err := a.DeleteConnection(ctx, c.ID); err != nil {
				return changes, err
			}
			add(Change{Op: "delete", Kind: "connection", Name: c.Name})
		}
	}
	return changes, nil
}

// normalizeConnection validates fc and fills in defaults exactly as
// Admin.AddConnection does, by adding it to a scratch store.
func normalizeConnection(ctx context.Context, a *admin.Service, fc Connection) (*llmproxy.Connection, error) {
	c := &llmproxy.Connection{Name: fc.Name, Provider: fc.Provider, Endpoint: fc.Endpoint, Settings: maps.Clone(fc.Settings),
		Credentials: llmproxy.Credentials{APIKey: fc.APIKey, AccessKeyID: fc.AccessKeyID, SecretAccessKey: fc.SecretAccessKey, SessionToken: fc.SessionToken}}
	scratch := &admin.Service{Storage: memory.New(), Kinds: a.Kinds, Providers: a.Providers}
	if err := scratch.AddConnection(ctx, c); err != nil {
		return nil, err
	}
	return &llmproxy.Connection{Name: c.Name, Provider: c.Provider, Endpoint: c.Endpoint, Settings: c.Settings, Credentials: c.Credentials}, nil
}

// connectionDiff describes how want differs from cur, naming changed
// credentials without their values.
func connectionDiff(cur, want *llmproxy.Connection) []string {
	var d []string
	if cur.Provider != want.Provider {
		d = append(d, fmt.Sprintf("provider %q -> %q", cur.Provider, want.Provider))
	}
	if cur.Endpoint != want.Endpoint {
		d = append(d, fmt.Sprintf("endpoint %q -> %q", cur.Endpoint, want.Endpoint))
	}
	for _, k := range slices.Sorted(maps.Keys(merge(cur.Settings, want.Settings))) {
		if a, b := cur.Settings[k], want.Settings[k]; a != b {
			d = append(d, fmt.Sprintf("settings.%s %q -> %q", k, a, b))
		}
	}
	for _, c := range []struct {
		name string
		a, b string
	}{
		{"api_key", cur.Credentials.APIKey, want.Credentials.APIKey},
		{"access_key_id", cur.Credentials.AccessKeyID, want.Credentials.AccessKeyID},
		{"secret_access_key", cur.Credentials.SecretAccessKey, want.Credentials.SecretAccessKey},
		{"session_token", cur.Credentials.SessionToken, want.Credentials.SessionToken},
	} {
		switch {
		case c.a == c.b:
		case c.a == "":
			d = append(d, c.name+" set")
		case c.b == "":
			d = append(d, c.name+" removed")
		default:
			d = append(d, c.name+" changed")
		}
	}
	return d
}

func merge(a, b map[string]string) map[string]string {
	m := maps.Clone(a)
	if m == nil {
		m = map[string]string{}
	}
	maps.Copy(m, b)
	return m
}

// assignments resolves a key's assignments from names to IDs.
func (st *state) assignments(fk Key) ([]llmproxy.Assignment, error) {
	var out []llmproxy.Assignment
	for j, fa := range fk.Assignments {
		at := fmt.Sprintf("key %q assignments[%d]", fk.Name, j)
		w, err := llmproxy.ParseWindow(fa.TokenWindow)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: token_window: %v", llmproxy.ErrInvalid, at, err)
		}
		b, err := checkedBudget(fa.Budget, at+".budget")
		if err != nil {
			return nil, err
		}
		as := llmproxy.Assignment{TPS: fa.TPS, Burst: fa.Burst, TokenLimit: fa.TokenLimit, TokenWindow: w, Budget: b}
		switch {
		case (fa.Connection == "") == (fa.Model == ""):
			return nil, fmt.Errorf("%w: %s: give a connection or a model", llmproxy.ErrInvalid, at)
		case fa.Connection != "":
			if fa.ModelConnection != "" {
				return nil, fmt.Errorf("%w: %s: model_connection goes with model", llmproxy.ErrInvalid, at)
			}
			c := st.connByN[fa.Connection]
			if c == nil {
				return nil, fmt.Errorf("%w: %s: connection %q not found", llmproxy.ErrNotFound, at, fa.Connection)
			}
			as.ConnectionID = c.ID
		default:
			var ids []string
			for _, m := range st.models {
				if m.Name == fa.Model && (fa.ModelConnection == "" || st.connName[m.ConnectionID] == fa.ModelConnection) {
					ids = append(ids, m.ID)
				}
			}
			switch len(ids) {
			case 0:
				return nil, fmt.Errorf("%w: %s: model %q not found", llmproxy.ErrNotFound, at, fa.Model)
			case 1:
				as.ModelID = ids[0]
			default:
				return nil, fmt.Errorf("%w: %s: model %q is on several connections: name one with model_connection", llmproxy.ErrInvalid, at, fa.Model)
			}
		}
		out = append(out, as)
	}
	return out, nil
}

// budget is b as stored; nil for no budget.
func (b *Budget) budget() *llmproxy.Budget {
	if b == nil {
		return nil
	}
	return &llmproxy.Budget{USD: b.USD, Period: b.Period, TZ: b.TZ, Alerts: b.Alerts}
}

// checkedBudget is b as stored, checked as the CLI and the admin API
// check one (an empty period becomes monthly), its error prefixed with
// at; nil for no budget.
func checkedBudget(b *Budget, at string) (*llmproxy.Budget, error) {
	out := b.budget()
	if err := admin.CheckBudget(out); err != nil {
		return nil, fmt.Errorf("%s: %w", at, err)
	}
	return out, nil
}

// budgetText describes a budget, e.g. "$50/monthly(Asia/Bangkok)";
// "none" for no budget.
func budgetText(b *llmproxy.Budget) string {
	if b == nil {
		return "none"
	}
	tz := b.TZ
	if tz == "" {
		tz = "UTC"
	}
	return "$" + strconv.FormatFloat(b.USD, 'f', -1, 64) + "/" + b.Period + "(" + tz + ")"
}

// sameBudget reports whether a and b are the same budget (or both none).
func sameBudget(a, b *llmproxy.Budget) bool {
	if a == nil || b == nil {
		return a == b
	}
	return llmproxy.SameBudget(a, b)
}

// describe names an assignment's target and limits, e.g.
// "connection google-ai tps=5 tokens=100000/24h".
func (st *state) describe(a *llmproxy.Assignment) string {
	s := "model " + st.modelName[a.ModelID]
	if a.ConnectionID != "" {
		s = "connection " + st.connName[a.ConnectionID]
	}
	if l := limits(a); l != "" {
		s += " " + l
	}
	return s
}

func limits(a *llmproxy.Assignment) string {
	var l []string
	if a.TPS > 0 {
		l = append(l, "tps="+strconv.FormatFloat(a.TPS, 'g', -1, 64))
	}
	if a.Burst > 0 {
		l = append(l, "burst="+strconv.Itoa(a.Burst))
	}
	if a.TokenLimit > 0 {
		w := "lifetime"
		if a.TokenWindow > 0 {
			w = llmproxy.FormatWindow(a.TokenWindow)
		}
		l = append(l, fmt.Sprintf("tokens=%d/%s", a.TokenLimit, w))
	}
	if a.Budget != nil {
		l = append(l, "budget="+budgetText(a.Budget))
	}
	return strings.Join(l, " ")
}

func sameLimits(a, b *llmproxy.Assignment) bool {
	return a.TPS == b.TPS && a.Burst == b.Burst && a.TokenLimit == b.TokenLimit && a.TokenWindow == b.TokenWindow &&
		sameBudget(a.Budget, b.Budget)
}

// updateKey brings an existing key to fk: its assignments through the
// Admin's assign, unassign and update operations, its expiry, its budget,
// and its secret when the file gives a different one.
func (st *state) updateKey(ctx context.Context, a *admin.Service, all []llmproxy.VirtualKey, cur *llmproxy.VirtualKey, fk Key,
	budget *llmproxy.Budget, want []llmproxy.Assignment) (Change, error) {
	c := Change{Op: "update", Kind: "key", Name: fk.Name}
	find := func(as []llmproxy.Assignment, t *llmproxy.Assignment) int {
		return slices.IndexFunc(as, func(x llmproxy.Assignment) bool { return x.ConnectionID == t.ConnectionID && x.ModelID == t.ModelID })
	}
	for _, old := range cur.Assignments {
		if find(want, &old) < 0 {
			if _, err := a.UnassignKey(ctx, cur.ID, old.ConnectionID, old.ModelID); err != nil {
				return c, err
			}
			c.Details = append(c.Details, "- "+st.describe(&old))
		}
	}
	for _, as := range want {
		i := find(cur.Assignments, &as)
		if i < 0 {
			if _, err := a.AssignKey(ctx, cur.ID, as); err != nil {
				return c, err
			}
			c.Details = append(c.Details, "+ "+st.describe(&as))
			continue
		}
		old := cur.Assignments[i]
		if sameLimits(&old, &as) {
			continue
		}
		u := admin.KeyUpdate{ConnectionID: as.ConnectionID, ModelID: as.ModelID,
			Limits: admin.LimitChange{TPS: &as.TPS, Burst: &as.Burst, TokenLimit: &as.TokenLimit, TokenWindow: &as.TokenWindow,
				Budget: as.Budget, ClearBudget: as.Budget == nil}}
		if _, err := a.UpdateKey(ctx, cur.ID, u); err != nil {
			return c, err
		}
		target := st.describe(&llmproxy.Assignment{ConnectionID: as.ConnectionID, ModelID: as.ModelID})
		c.Details = append(c.Details, fmt.Sprintf("~ %s limits %q -> %q", target, orNone(limits(&old)), orNone(limits(&as))))
	}
	if !cur.ExpiresAt.Equal(fk.ExpiresAt) {
		t := fk.ExpiresAt
		if _, err := a.UpdateKey(ctx, cur.ID, admin.KeyUpdate{ExpiresAt: &t}); err != nil {
			return c, err
		}
		c.Details = append(c.Details, fmt.Sprintf("expires_at %s -> %s", when(cur.ExpiresAt), when(fk.ExpiresAt)))
	}
	if !sameBudget(cur.Budget, budget) {
		u := admin.KeyUpdate{Budget: budget, ClearBudget: budget == nil}
		if _, err := a.UpdateKey(ctx, cur.ID, u); err != nil {
			return c, err
		}
		c.Details = append(c.Details, fmt.Sprintf("budget %s -> %s", budgetText(cur.Budget), budgetText(budget)))
	}
	if fk.Key != "" && llmproxy.HashKey(fk.Key) != cur.Hash {
		if err := rotate(ctx, a, all, cur.ID, fk.Key); err != nil {
			return c, err
		}
		c.Details = append(c.Details, "secret changed")
	}
	return c, nil
}

// rotate gives the key a new secret, checked as Admin.AddKey checks one.
func rotate(ctx context.Context, a *admin.Service, all []llmproxy.VirtualKey, id, secret string) error {
	if len(secret) < admin.MinKeySecretLength {
		return fmt.Errorf("%w: a key secret must be at least %d characters", llmproxy.ErrInvalid, admin.MinKeySecretLength)
	}
	for _, r := range secret {
		if r <= ' ' || r == 0x7f || r > '~' {
			return fmt.Errorf("%w: a key secret may contain only printable ASCII characters without spaces", llmproxy.ErrInvalid)
		}
	}
	hash := llmproxy.HashKey(secret)
	for _, o := range all {
		if o.Hash == hash && o.ID != id {
			return fmt.Errorf("%w: another key already has this secret; choose a different one", llmproxy.ErrAlreadyExists)
		}
	}
	k, err := a.KeyByIDOrName(ctx, id) // as changed above
	if err != nil {
		return err
	}
	k.Hash, k.Prefix = hash, llmproxy.KeyPrefix(secret)
	if err := k.Validate(); err != nil {
		return err
	}
	if err := a.Storage.UpdateKey(ctx, k); err != nil {
		if errors.Is(err, llmproxy.ErrAlreadyExists) {
			return fmt.Errorf("%w: another key already has this secret", llmproxy.ErrAlreadyExists)
		}
		return fmt.Errorf("updating key %q: %w", k.Name, err)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func samePrice(a, b *pricing.Price) bool {
	return a == b || (a != nil && b != nil && *a == *b)
}

func priceText(p *pricing.Price) string {
	if p == nil {
		return "the table's"
	}
	return fmt.Sprintf("$%g in / $%g out per Mtok", p.Input, p.Output)
}
