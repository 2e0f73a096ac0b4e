package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/pricing"
)

// modelPrice is one line of `llm-proxy prices`: a model and the price its
// requests are charged at.
type modelPrice struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Connection string         `json:"connection"`
	Remote     string         `json:"remote"`
	Price      *pricing.Price `json:"price"` // nil when unknown
	// From is "override" (the model's own price), "table" or "unknown".
	From   string          `json:"from"`
	Source *pricing.Source `json:"source,omitempty"`
}

func newPricesCmd(e *env) *cobra.Command {
	var asJSON bool
	var alias string
	cmd := &cobra.Command{
		Use:   "prices",
		Short: "List what each model is charged at, in dollars per million tokens, and where the price comes from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return e.admin(ctx, func(a *admin.Service) error {
				cs, err := a.ListConnections(ctx, llmproxy.ListOptions{})
				if err != nil {
					return err
				}
				ms, err := a.ListModels(ctx, llmproxy.ListOptions{})
				if err != nil {
					return err
				}
				conns := make(map[string]llmproxy.Connection, len(cs))
				for _, c := range cs {
					conns[c.ID] = c
				}
				var out []modelPrice
				for i := range ms {
					if alias == "" || ms[i].Name == alias {
						out = append(out, priceOf(&ms[i], conns[ms[i].ConnectionID]))
					}
				}
				if alias != "" && len(out) == 0 {
					return fmt.Errorf("no model has the alias %q", alias)
				}
				if asJSON {
					if out == nil {
						out = []modelPrice{}
					}
					return writeJSON(e.stdout, out)
				}
				return printPrices(e.stdout, out)
			})
		},
	}
	cmd.Flags().StringVar(&alias, "model", "", "only the models with this alias")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// priceOf says what m is charged at on connection c: its override, else
// the table's price for its remote name on c's kind of provider.
func priceOf(m *llmproxy.Model, c llmproxy.Connection) modelPrice {
	mp := modelPrice{ID: m.ID, Name: m.Name, Connection: orDash(c.Name), Remote: m.Remote, From: "unknown"}
	if m.Price != nil {
		p := *m.Price
		mp.Price, mp.From = &p, "override"
		return mp
	}
	if p, src, ok := pricing.Lookup(c.Provider, m.Remote); ok {
		mp.Price, mp.From, mp.Source = &p, "table", &src
	}
	return mp
}

func printPrices(w io.Writer, ps []modelPrice) error {
	tw := table(w)
	row(tw, "MODEL", "CONNECTION", "REMOTE", "INPUT", "CACHED", "CACHE-WRITE", "OUTPUT", "FROM")
	for _, p := range ps {
		if p.Price == nil {
			row(tw, p.Name, p.Connection, p.Remote, "-", "-", "-", "-", "unknown")
			continue
		}
		from := p.From
		if p.Source != nil {
			from = fmt.Sprintf("table %s (%s, %s; %s)", p.Source.Entry, p.Source.URL, p.Source.Checked, p.Source.Match)
		}
		row(tw, p.Name, p.Connection, p.Remote, dollars(p.Price.Input), dollars(p.Price.CachedInput),
			dollars(p.Price.CacheWrite), dollars(p.Price.Output), from)
	}
	return tw.Flush()
}

// dollars formats a price per million tokens; "-" for none.
func dollars(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("$%g", v)
}
