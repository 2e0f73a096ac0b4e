package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

func row(w io.Writer, cols ...string) {
	fmt.Fprintln(w, strings.Join(cols, "\t"))
}

func date(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printConnection writes c as "field: value" lines.
func printConnection(w io.Writer, c *llmproxy.Connection) error {
	t := table(w)
	row(t, "ID:", c.ID)
	row(t, "Name:", c.Name)
	row(t, "Provider:", c.Provider)
	row(t, "Endpoint:", orDash(c.Endpoint))
	row(t, "Credentials:", orDash(strings.Join(c.Credentials.Set(), ", ")))
	for _, k := range slices.Sorted(maps.Keys(c.Settings)) {
		row(t, k+":", c.Settings[k])
	}
	row(t, "Created:", date(c.CreatedAt))
	return t.Flush()
}

func printConnections(w io.Writer, cs []llmproxy.Connection) error {
	t := table(w)
	row(t, "ID", "NAME", "PROVIDER", "ENDPOINT", "CREDENTIALS", "CREATED")
	for i := range cs {
		c := &cs[i]
		row(t, c.ID, c.Name, c.Provider, orDash(c.Endpoint), orDash(strings.Join(c.Credentials.Set(), ",")), date(c.CreatedAt))
	}
	return t.Flush()
}

// names maps connection and model IDs to names, for listings.
type names struct {
	conns  map[string]string
	models map[string]string
}

func (n names) conn(id string) string {
	if name, ok := n.conns[id]; ok {
		return name + " (" + id + ")"
	}
	return id
}

func (n names) model(id string) string {
	if name, ok := n.models[id]; ok {
		return name + " (" + id + ")"
	}
	return id
}

func printModel(w io.Writer, m *llmproxy.Model, n names) error {
	t := table(w)
	row(t, "ID:", m.ID)
	row(t, "Name:", m.Name)
	row(t, "Remote:", m.Remote)
	row(t, "Connection:", n.conn(m.ConnectionID))
	row(t, "Weight:", strconv.Itoa(max(m.Weight, 1)))
	row(t, "Created:", date(m.CreatedAt))
	return t.Flush()
}

func printModels(w io.Writer, ms []llmproxy.Model, n names) error {
	t := table(w)
	row(t, "ID", "NAME", "REMOTE", "CONNECTION", "WEIGHT", "CREATED")
	for i := range ms {
		m := &ms[i]
		row(t, m.ID, m.Name, m.Remote, n.conn(m.ConnectionID), strconv.Itoa(max(m.Weight, 1)), date(m.CreatedAt))
	}
	return t.Flush()
}

// assignmentText describes a for a table, e.g.
// "connection google-ai (conn_…) tps=5 tokens=100000/24h0m0s".
func assignmentText(a *llmproxy.Assignment, n names) string {
	s := "model " + n.model(a.ModelID)
	if a.ConnectionID != "" {
		s = "connection " + n.conn(a.ConnectionID)
	}
	var lim []string
	if a.TPS > 0 {
		lim = append(lim, "tps="+strconv.FormatFloat(a.TPS, 'g', -1, 64))
		if a.Burst > 0 {
			lim = append(lim, "burst="+strconv.Itoa(a.Burst))
		}
	}
	if a.TokenLimit > 0 {
		w := "total"
		if a.TokenWindow > 0 {
			w = llmproxy.FormatWindow(a.TokenWindow)
		}
		lim = append(lim, fmt.Sprintf("tokens=%d/%s", a.TokenLimit, w))
	}
	if a.Budget != nil {
		lim = append(lim, "budget="+budgetText(a.Budget))
	}
	if len(lim) > 0 {
		s += " " + strings.Join(lim, " ")
	}
	return s
}

// budgetText describes b, e.g. "$50/monthly(Asia/Bangkok)"; "-" for
// no budget.
func budgetText(b *llmproxy.Budget) string {
	if b == nil {
		return "-"
	}
	tz := b.TZ
	if tz == "" {
		tz = "UTC"
	}
	s := "$" + strconv.FormatFloat(b.USD, 'f', -1, 64) + "/" + b.Period + "(" + tz + ")"
	if b.Alerts != nil {
		pcts := make([]string, len(b.Alerts))
		for i, a := range b.Alerts {
			pcts[i] = strconv.FormatFloat(a*100, 'f', -1, 64) + "%"
		}
		s += " alerts " + strings.Join(pcts, ",")
	}
	return s
}

func printKey(w io.Writer, k *llmproxy.VirtualKey, n names) error {
	t := table(w)
	row(t, "ID:", k.ID)
	row(t, "Name:", k.Name)
	row(t, "Prefix:", k.Prefix+"…")
	if !k.ExpiresAt.IsZero() {
		row(t, "Expires:", date(k.ExpiresAt))
	}
	if k.Budget != nil {
		row(t, "Budget:", budgetText(k.Budget))
	}
	if len(k.Assignments) == 0 {
		row(t, "Assigned:", "nothing")
	}
	for i := range k.Assignments {
		label := ""
		if i == 0 {
			label = "Assigned:"
		}
		row(t, label, assignmentText(&k.Assignments[i], n))
	}
	row(t, "Created:", date(k.CreatedAt))
	return t.Flush()
}

func printKeys(w io.Writer, ks []llmproxy.VirtualKey, n names) error {
	t := table(w)
	row(t, "ID", "NAME", "PREFIX", "EXPIRES", "BUDGET", "ASSIGNED", "CREATED")
	for i := range ks {
		k := &ks[i]
		var as []string
		for j := range k.Assignments {
			as = append(as, assignmentText(&k.Assignments[j], n))
		}
		row(t, k.ID, k.Name, k.Prefix+"…", date(k.ExpiresAt), budgetText(k.Budget), orDash(strings.Join(as, "; ")), date(k.CreatedAt))
	}
	return t.Flush()
}

func printf(w io.Writer, format string, args ...any) error {
	_, err := fmt.Fprintf(w, format, args...)
	return err
}
