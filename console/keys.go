package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
)

// names resolves the IDs of connections and models for display.
type names struct {
	conns  map[string]llmproxy.Connection
	models map[string]llmproxy.Model
}

func (c *Console) loadNames(ctx context.Context) (*names, error) {
	cs, err := c.admin.ListConnections(ctx, llmproxy.ListOptions{})
	if err != nil {
		return nil, err
	}
	ms, err := c.admin.ListModels(ctx, llmproxy.ListOptions{})
	if err != nil {
		return nil, err
	}
	n := &names{conns: map[string]llmproxy.Connection{}, models: map[string]llmproxy.Model{}}
	for _, x := range cs {
		n.conns[x.ID] = x
	}
	for _, x := range ms {
		n.models[x.ID] = x
	}
	return n, nil
}

func (n *names) conn(id string) string {
	if x, ok := n.conns[id]; ok {
		return x.Name
	}
	return id
}

// target describes what an assignment gives.
func (n *names) target(a *llmproxy.Assignment) string {
	if a.ConnectionID != "" {
		return "connection " + n.conn(a.ConnectionID) + " (every model)"
	}
	if m, ok := n.models[a.ModelID]; ok {
		return "model " + m.Name + " on " + n.conn(m.ConnectionID)
	}
	return "model " + a.ModelID
}

// keyRow is a key in the keys list.
type keyRow struct {
	ID, Name, Prefix    string
	Scope, Limits       string
	Budget, SpendPeriod string
	Spend               int64 // micro-dollars
	Expires             time.Time
	Expired             bool
}

type keysPage struct {
	Q    string
	Rows []keyRow
}

// monthStart is the first instant of now's calendar month, UTC.
func monthStart(now time.Time) time.Time {
	u := now.UTC()
	return time.Date(u.Year(), u.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// spendThisPeriod returns what each key spent (micro-dollars) in its
// budget's current period, or this calendar month (UTC) for a key
// without a budget. One report grouped by key serves the month; a budget
// of another period reads the rollups of that period alone.
func (c *Console) spendThisPeriod(ctx context.Context, keys []llmproxy.VirtualKey, now time.Time) (map[string]int64, error) {
	month := monthStart(now)
	byKey := map[string]int64{}
	if rep, ok := c.storage.(llmproxy.UsageReporter); ok {
		rows, err := rep.UsageReport(ctx, llmproxy.UsageFilter{Since: month}, []llmproxy.UsageGroup{llmproxy.GroupKey})
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			byKey[r.KeyID] += r.CostMicros
		}
	} else {
		sums, err := c.storage.SumUsage(ctx, llmproxy.UsageFilter{Since: month})
		if err != nil {
			return nil, err
		}
		for _, s := range sums {
			byKey[s.KeyID] += s.CostMicros
		}
	}
	out := map[string]int64{}
	for i := range keys {
		k := &keys[i]
		if k.Budget == nil {
			out[k.ID] = byKey[k.ID]
			continue
		}
		start, _ := k.Budget.Bounds(now)
		if start.Equal(month) {
			out[k.ID] = byKey[k.ID]
			continue
		}
		_, micros, err := llmproxy.SpentSince(ctx, c.storage, llmproxy.UsageFilter{KeyID: k.ID}, start)
		if err != nil {
			return nil, err
		}
		out[k.ID] = micros
	}
	return out, nil
}

// keys lists the keys, filtered by ?q= on name or prefix.
func (c *Console) keys(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	all, err := c.admin.ListKeys(ctx, llmproxy.ListOptions{})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	lq := strings.ToLower(q)
	keys := slices.DeleteFunc(all, func(k llmproxy.VirtualKey) bool {
		return lq != "" && !strings.Contains(strings.ToLower(k.Name), lq) && !strings.HasPrefix(strings.ToLower(k.Prefix), lq)
	})
	n, err := c.loadNames(ctx)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	now := c.now()
	spend, err := c.spendThisPeriod(ctx, keys, now)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	p := &keysPage{Q: q}
	for i := range keys {
		k := &keys[i]
		row := keyRow{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Budget: describeBudget(k.Budget),
			Spend: spend[k.ID], SpendPeriod: "this month (UTC)", Expires: k.ExpiresAt, Expired: k.Expired(now)}
		if k.Budget != nil {
			row.SpendPeriod = "this " + strings.TrimSuffix(k.Budget.Period, "ly") + " period"
			if k.Budget.Period == llmproxy.BudgetTotal {
				row.SpendPeriod = "in all"
			}
		}
		var scopes, lims []string
		for j := range k.Assignments {
			scopes = append(scopes, n.target(&k.Assignments[j]))
			if l := describeLimits(&k.Assignments[j]); !slices.Contains(lims, l) {
				lims = append(lims, l)
			}
		}
		row.Scope, row.Limits = strings.Join(scopes, ", "), strings.Join(lims, "; ")
		if row.Scope == "" {
			row.Scope = "nothing assigned"
		}
		p.Rows = append(p.Rows, row)
	}
	c.render(w, r, http.StatusOK, "keys", newView(s, "Keys", "keys", p))
}

// keyForm is the new-key form as typed.
type keyForm struct {
	Name, Connection, Models, Expires string
	limitsForm
	Connections []string // names, for the select
	Periods     []string
}

func (c *Console) keyForm(ctx context.Context, f keyForm) (*keyForm, error) {
	names, err := c.connectionNames(ctx)
	if err != nil {
		return nil, err
	}
	f.Connections, f.Periods = names, budgetPeriods
	return &f, nil
}

func (c *Console) newKey(w http.ResponseWriter, r *http.Request, s *session) {
	f, err := c.keyForm(r.Context(), keyForm{limitsForm: readLimitsForm(nil)})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "keys_new", newView(s, "New key", "keys", f))
}

// createdKey is the page shown once after a key is created: the only
// page that ever holds its secret.
type createdKey struct {
	ID, Name, Secret string
}

func (c *Console) createKey(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	form := keyForm{
		Name: strings.TrimSpace(r.PostForm.Get("name")), Connection: strings.TrimSpace(r.PostForm.Get("connection")),
		Models: strings.TrimSpace(r.PostForm.Get("models")), Expires: strings.TrimSpace(r.PostForm.Get("expires")),
		limitsForm: readLimitsForm(r.PostForm),
	}
	k, err := c.keyFromForm(ctx, &form)
	var secret string
	if err == nil {
		secret, err = c.admin.AddKey(ctx, k, "")
	}
	if err != nil {
		status, msg := formErrorStatus(err)
		if status == http.StatusInternalServerError {
			c.fail(w, r, s, err)
			return
		}
		f, ferr := c.keyForm(ctx, form)
		if ferr != nil {
			c.fail(w, r, s, ferr)
			return
		}
		v := newView(s, "New key", "keys", f)
		v.Error = msg
		c.render(w, r, status, "keys_new", v)
		return
	}
	c.log.Info("console: key created", "key_id", k.ID, "name", k.Name)
	c.render(w, r, http.StatusOK, "keys_created", newView(s, "Key created", "keys", &createdKey{ID: k.ID, Name: k.Name, Secret: secret}))
}

// keyFromForm builds the key the form describes, as vkey add builds one
// from its flags: the limits on every assignment, the budget the key's.
// With models named, the key gets those models (on the chosen
// connection, or every connection that has the alias); without, the
// whole connection.
func (c *Console) keyFromForm(ctx context.Context, f *keyForm) (*llmproxy.VirtualKey, error) {
	lim, err := f.limitsForm.parse()
	if err != nil {
		return nil, err
	}
	k := &llmproxy.VirtualKey{Name: f.Name, Budget: lim.budget}
	if f.Expires != "" {
		t, err := time.Parse("2006-01-02", f.Expires)
		if err != nil {
			return nil, fieldError("Expires", "want a date such as 2026-12-31")
		}
		k.ExpiresAt = t
	}
	var aliases []string
	for _, a := range strings.Split(f.Models, ",") {
		if a = strings.TrimSpace(a); a != "" && !slices.Contains(aliases, a) {
			aliases = append(aliases, a)
		}
	}
	if len(aliases) == 0 {
		if f.Connection == "" {
			return nil, fieldError("Connection", "choose the connection the key may use, or name its models")
		}
		a := lim.assignment
		a.ConnectionID = f.Connection
		k.Assignments = []llmproxy.Assignment{a}
		return k, nil
	}
	connID := ""
	if f.Connection != "" {
		conn, err := c.admin.ConnectionByIDOrName(ctx, f.Connection)
		if err != nil {
			return nil, fieldError("Connection", userMessage(err))
		}
		connID = conn.ID
	}
	models, err := c.admin.ListModels(ctx, llmproxy.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, alias := range aliases {
		found := false
		for _, m := range models {
			if m.Name == alias && (connID == "" || m.ConnectionID == connID) {
				a := lim.assignment
				a.ModelID = m.ID
				k.Assignments = append(k.Assignments, a)
				found = true
			}
		}
		if !found {
			where := "on any connection"
			if connID != "" {
				where = fmt.Sprintf("on connection %q", f.Connection)
			}
			return nil, fieldError("Models", fmt.Sprintf("there is no model %q %s", alias, where))
		}
	}
	return k, nil
}

// assignmentRow is one assignment on the key page.
type assignmentRow struct {
	Target, Limits string
	Budget         *budgetView
}

type keyPage struct {
	ID, Name, Prefix string
	Created, Expires time.Time
	Expired          bool
	Assignments      []assignmentRow
	Budget           *budgetView
	MonthSpend       int64
	ReadOnly         bool
	HasAssignments   bool
	Form             limitsForm
	Periods          []string
}

// key shows a key: to the admin any, to a key's session only its own
// (any other is "not found", not "forbidden": it does not learn which
// IDs exist).
func (c *Console) key(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if !s.admin && id != s.keyID {
		c.notFound(w, r)
		return
	}
	c.renderKey(w, r, s, id, http.StatusOK, nil, "")
}

// renderKey answers the key page; with form set (a refused edit) the
// form shows what was typed, and msg says what is wrong.
func (c *Console) renderKey(w http.ResponseWriter, r *http.Request, s *session, id string, status int, form *limitsForm, msg string) {
	ctx := r.Context()
	k, err := c.storage.Key(ctx, id)
	if err != nil {
		if errors.Is(err, llmproxy.ErrNotFound) {
			c.notFound(w, r)
			return
		}
		c.fail(w, r, s, err)
		return
	}
	n, err := c.loadNames(ctx)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	now := c.now()
	p := &keyPage{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Created: k.CreatedAt, Expires: k.ExpiresAt,
		Expired: k.Expired(now), ReadOnly: !s.admin, HasAssignments: len(k.Assignments) > 0,
		Form: formOf(k), Periods: budgetPeriods}
	if form != nil {
		p.Form = *form
	}
	for i := range k.Assignments {
		a := &k.Assignments[i]
		row := assignmentRow{Target: n.target(a), Limits: describeLimits(a)}
		if row.Budget, err = c.budgetView(ctx, a.Budget, llmproxy.UsageFilter{AssignmentID: a.ID}, now); err != nil {
			c.fail(w, r, s, err)
			return
		}
		p.Assignments = append(p.Assignments, row)
	}
	if p.Budget, err = c.budgetView(ctx, k.Budget, llmproxy.UsageFilter{KeyID: k.ID}, now); err != nil {
		c.fail(w, r, s, err)
		return
	}
	if _, p.MonthSpend, err = llmproxy.SpentSince(ctx, c.storage, llmproxy.UsageFilter{KeyID: k.ID}, monthStart(now)); err != nil {
		c.fail(w, r, s, err)
		return
	}
	nav := "keys"
	if !s.admin {
		nav = "key"
	}
	v := newView(s, "Key "+k.Name, nav, p)
	v.Error = msg
	c.render(w, r, status, "key", v)
}

// updateKeyLimits sets every assignment's limits and the key's budget
// to the form's, as vkey update does with every flag given: an empty
// field removes that limit (or the budget).
func (c *Console) updateKeyLimits(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	id := r.PathValue("id")
	form := readLimitsForm(r.PostForm)
	k, err := c.storage.Key(ctx, id)
	if err != nil {
		if errors.Is(err, llmproxy.ErrNotFound) {
			c.notFound(w, r)
			return
		}
		c.fail(w, r, s, err)
		return
	}
	lim, err := form.parse()
	if err == nil {
		var u admin.KeyUpdate
		if len(k.Assignments) > 0 {
			a := lim.assignment
			u.Limits = admin.LimitChange{TPS: &a.TPS, TokenLimit: &a.TokenLimit, TokenWindow: &a.TokenWindow}
			if a.TPS == 0 {
				u.Limits.Burst = new(int) // a burst without a rate is refused
			}
		}
		switch {
		case lim.budget != nil:
			u.Budget = lim.budget
		case k.Budget != nil:
			u.ClearBudget = true
		}
		_, err = c.admin.UpdateKey(ctx, k.ID, u)
	}
	if err != nil {
		status, msg := errorStatus(err)
		if status == http.StatusInternalServerError {
			c.fail(w, r, s, err)
			return
		}
		c.renderKey(w, r, s, id, status, &form, msg)
		return
	}
	c.log.Info("console: key limits changed", "key_id", k.ID)
	http.Redirect(w, r, Prefix+"/keys/"+url.PathEscape(k.ID), http.StatusSeeOther)
}

// revokeKey deletes the key, as vkey delete does; its sessions end now,
// and Gateways refuse it at their next poll.
func (c *Console) revokeKey(w http.ResponseWriter, r *http.Request, s *session) {
	k, err := c.admin.DeleteKey(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.sessions.removeKey(k.ID)
	c.log.Info("console: key revoked", "key_id", k.ID, "name", k.Name)
	http.Redirect(w, r, Prefix+"/keys", http.StatusSeeOther)
}
