package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/adminapi"
	"github.com/go-llm-proxy/llmproxy/pricing"
)

func newModelCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "model",
		Aliases: []string{"models"},
		Short:   "Manage models: aliases mapped to a remote model on a connection",
	}
	cmd.AddCommand(newModelAddCmd(e), newModelListCmd(e), newModelUpdateCmd(e), newModelDeleteCmd(e))
	return cmd
}

func newModelAddCmd(e *env) *cobra.Command {
	var (
		m             llmproxy.Model
		quiet, asJSON bool
		pf            priceFlags
	)
	cmd := &cobra.Command{
		Use:     "add --name ALIAS --remote MODEL --conn-id ID [--input-price USD --output-price USD]",
		Short:   "Add a model alias",
		Example: `  llm-proxy model add --name "gemini-flash" --remote "gemini-1.5-flash" --conn-id "<CONN_ID>"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if pf.given(cmd.Flags()) {
				if !cmd.Flags().Changed("input-price") || !cmd.Flags().Changed("output-price") {
					return fmt.Errorf("--input-price and --output-price go together: a model's price override needs both (the others default to the input price)")
				}
				m.Price = pf.apply(cmd.Flags(), pricing.Price{})
			}
			return e.admin(ctx, func(a *admin.Service) error {
				if err := a.AddModel(ctx, &m); err != nil {
					return err
				}
				switch {
				case quiet:
					return printf(e.stdout, "%s\n", m.ID)
				case asJSON:
					return writeJSON(e.stdout, adminapi.ModelView(&m))
				}
				return printModel(e.stdout, &m, loadNames(ctx, a))
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&m.Name, "name", "", "the alias clients send as \"model\" (required)")
	f.StringVar(&m.Remote, "remote", "", "the provider's model name (required)")
	f.StringVar(&m.ConnectionID, "conn-id", "", "the connection's ID or name (required)")
	f.IntVar(&m.Weight, "weight", 0, fmt.Sprintf("share of requests among models with the same alias, up to %d (default 1)", admin.MaxModelWeight))
	pf.add(f)
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the new model's ID")
	f.BoolVar(&asJSON, "json", false, "print the new model as JSON")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("remote")
	cmd.MarkFlagRequired("conn-id")
	cmd.MarkFlagsMutuallyExclusive("quiet", "json")
	return cmd
}

func newModelUpdateCmd(e *env) *cobra.Command {
	var (
		name, remote, connID string
		weight               int
		quiet, asJSON        bool
		pf                   priceFlags
		clearPrice           bool
	)
	cmd := &cobra.Command{
		Use:   "update MODEL_ID [--name ALIAS] [--remote MODEL] [--weight N] [--input-price USD ...] [--clear-price]",
		Short: "Change a model's alias, remote model name, weight or price",
		Long: `Change a model; a running server uses the change within 2 seconds, no restart
needed. Only the flags given change; the result is checked as "add" checks a
new model (an alias exists once per connection; the weight is 0 to 1000000,
where 0 means 1).

A model stays on its connection: the keys assigned to it, or to either
connection, would otherwise silently gain or lose it. To move it, add it on
the other connection and delete this one.`,
		Example: `  llm-proxy model update "<MODEL_ID>" --remote "gemini-2.0-flash"
  llm-proxy model update "<MODEL_ID>" --weight 3
  llm-proxy model update "<MODEL_ID>" --input-price 3 --output-price 15 --cached-input-price 0.3`,
		Args: exactArgs("the model's ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f := cmd.Flags()
			var u admin.ModelUpdate
			if f.Changed("name") {
				u.Name = &name
			}
			if f.Changed("remote") {
				u.Remote = &remote
			}
			if f.Changed("weight") {
				u.Weight = &weight
			}
			if f.Changed("conn-id") {
				u.ConnectionID = &connID
			}
			u.ClearPrice = clearPrice
			if pf.given(f) && clearPrice {
				return fmt.Errorf("--clear-price removes the price override; it cannot go with --input-price, --output-price, --cached-input-price or --cache-write-price")
			}
			if u.IsZero() && !pf.given(f) {
				return fmt.Errorf("nothing to change: give --name, --remote, --weight, a price flag or --clear-price (see %s --help)", cmd.CommandPath())
			}
			return e.admin(ctx, func(a *admin.Service) error {
				if pf.given(f) {
					// The prices given change the model's override, or one
					// started from what it is charged at now.
					cur, err := a.Model(ctx, args[0])
					if err != nil {
						return err
					}
					base := pricing.Price{}
					if cur.Price != nil {
						base = *cur.Price
					} else if c, err := a.Storage.Connection(ctx, cur.ConnectionID); err == nil {
						base, _, _ = pricing.Lookup(c.Provider, cur.Remote)
					}
					u.Price = pf.apply(f, base)
				}
				m, err := a.UpdateModel(ctx, args[0], u)
				if err != nil {
					return err
				}
				switch {
				case quiet:
					return printf(e.stdout, "%s\n", m.ID)
				case asJSON:
					return writeJSON(e.stdout, adminapi.ModelView(m))
				}
				return printModel(e.stdout, m, loadNames(ctx, a))
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "a new alias clients send as \"model\"")
	f.StringVar(&remote, "remote", "", "a new provider's model name")
	f.IntVar(&weight, "weight", 0, fmt.Sprintf("a new share of requests among models with the same alias, up to %d (0 means 1)", admin.MaxModelWeight))
	pf.add(f)
	f.BoolVar(&clearPrice, "clear-price", false, "remove the model's price override: the price table applies again")
	// Not a change anyone can make; the flag is there so that trying it
	// says why.
	f.StringVar(&connID, "conn-id", "", "a model cannot move to another connection")
	f.MarkHidden("conn-id")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the model's ID")
	f.BoolVar(&asJSON, "json", false, "print the model as JSON")
	cmd.MarkFlagsMutuallyExclusive("quiet", "json")
	return cmd
}

func newModelListCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List models",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return e.admin(ctx, func(a *admin.Service) error {
				ms, err := a.ListModels(ctx, llmproxy.ListOptions{})
				if err != nil {
					return err
				}
				if asJSON {
					out := make([]adminapi.Model, 0, len(ms))
					for i := range ms {
						out = append(out, adminapi.ModelView(&ms[i]))
					}
					return writeJSON(e.stdout, out)
				}
				return printModels(e.stdout, ms, loadNames(ctx, a))
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newModelDeleteCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "delete ID",
		Aliases: []string{"rm"},
		Short:   "Delete a model that no key is assigned",
		Args:    exactArgs("the model's ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.admin(cmd.Context(), func(a *admin.Service) error {
				m, err := a.DeleteModel(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return printf(e.stdout, "deleted model %s (%s)\n", m.ID, m.Name)
			})
		},
	}
}

// loadNames reads the names of connections and models for listings. On
// error the listings show bare IDs.
func loadNames(ctx context.Context, a *admin.Service) names {
	n := names{conns: map[string]string{}, models: map[string]string{}}
	if cs, err := a.ListConnections(ctx, llmproxy.ListOptions{}); err == nil {
		for _, c := range cs {
			n.conns[c.ID] = c.Name
		}
	}
	if ms, err := a.ListModels(ctx, llmproxy.ListOptions{}); err == nil {
		for _, m := range ms {
			n.models[m.ID] = m.Name
		}
	}
	return n
}

// priceFlags are the flags of a model's price override, in US dollars per
// million tokens.
type priceFlags struct {
	input, output, cachedInput, cacheWrite float64
}

var priceFlagNames = []string{"input-price", "output-price", "cached-input-price", "cache-write-price"}

func (p *priceFlags) add(f *pflag.FlagSet) {
	f.Float64Var(&p.input, "input-price", 0, "dollars per million input tokens: overrides the price table for this model")
	f.Float64Var(&p.output, "output-price", 0, "dollars per million output tokens")
	f.Float64Var(&p.cachedInput, "cached-input-price", 0, "dollars per million input tokens read from the prompt cache (default: the input price)")
	f.Float64Var(&p.cacheWrite, "cache-write-price", 0, "dollars per million input tokens written to the prompt cache (default: the input price)")
}

// given reports whether any price flag was given.
func (p *priceFlags) given(f *pflag.FlagSet) bool {
	for _, n := range priceFlagNames {
		if f.Changed(n) {
			return true
		}
	}
	return false
}

// apply returns base with the prices given changed. A new override
// without a cached-input price charges cached input as input.
func (p *priceFlags) apply(f *pflag.FlagSet, base pricing.Price) *pricing.Price {
	out := base
	if f.Changed("input-price") {
		out.Input = p.input
		if !f.Changed("cached-input-price") && base == (pricing.Price{}) {
			out.CachedInput = p.input
		}
	}
	if f.Changed("output-price") {
		out.Output = p.output
	}
	if f.Changed("cached-input-price") {
		out.CachedInput = p.cachedInput
	}
	if f.Changed("cache-write-price") {
		out.CacheWrite = p.cacheWrite
	}
	return &out
}
