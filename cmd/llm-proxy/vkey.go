package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/adminapi"
)

func newVKeyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "vkey",
		Aliases: []string{"vkeys", "key"},
		Short:   "Manage virtual keys and what they may use",
	}
	cmd.AddCommand(newVKeyAddCmd(e), newVKeyListCmd(e), newVKeyShowCmd(e), newVKeyDeleteCmd(e),
		newVKeyAssignCmd(e), newVKeyUnassignCmd(e), newVKeyUpdateCmd(e))
	return cmd
}

// limitFlags are the flags of an assignment's limits.
type limitFlags struct {
	tps         float64
	burst       int
	tokenLimit  int64
	tokenWindow string
}

func (l *limitFlags) register(f *pflag.FlagSet) {
	f.Float64Var(&l.tps, "tps", 0, "requests per second allowed (0 = unlimited)")
	f.IntVar(&l.burst, "burst", 0, "requests allowed at once (default: the tps, at least 1)")
	f.Int64Var(&l.tokenLimit, "token-limit", 0, "tokens allowed per --token-window (0 = unlimited)")
	f.StringVar(&l.tokenWindow, "token-window", "", "window of --token-limit, e.g. 1m, 24h, 30d (empty = lifetime quota)")
}

// assignment returns an assignment with the flags' limits.
func (l *limitFlags) assignment() (llmproxy.Assignment, error) {
	w, err := parseWindow(l.tokenWindow)
	return llmproxy.Assignment{TPS: l.tps, Burst: l.burst, TokenLimit: l.tokenLimit, TokenWindow: w}, err
}

// change returns the limits whose flags were given.
func (l *limitFlags) change(f *pflag.FlagSet) (admin.LimitChange, error) {
	var c admin.LimitChange
	if f.Changed("tps") {
		c.TPS = &l.tps
	}
	if f.Changed("burst") {
		c.Burst = &l.burst
	}
	if f.Changed("token-limit") {
		c.TokenLimit = &l.tokenLimit
	}
	if f.Changed("token-window") {
		w, err := parseWindow(l.tokenWindow)
		if err != nil {
			return c, err
		}
		c.TokenWindow = &w
	}
	return c, nil
}

// parseWindow parses a Go duration, also accepting whole days ("30d").
// budgetFlags are the flags of a budget: of the key (add, update) or of
// one assignment (assign).
type budgetFlags struct {
	usd        float64
	period, tz string
	alerts     []float64
	clear      bool
}

// register adds --budget, --budget-period and --budget-tz, and with
// clear --clear-budget; of says whose budget it is, for the help.
func (b *budgetFlags) register(f *pflag.FlagSet, of string, clear bool) {
	f.Float64Var(&b.usd, "budget", 0, "US dollars "+of+" may spend per --budget-period")
	f.StringVar(&b.period, "budget-period", llmproxy.BudgetMonthly, "period of --budget: daily, weekly, monthly or total (never starts again)")
	f.StringVar(&b.tz, "budget-tz", "UTC", "IANA time zone whose midnight starts a budget period, e.g. Asia/Bangkok")
	f.Float64SliceVar(&b.alerts, "budget-alerts", nil, "percentages of --budget at which alerts fire, e.g. 50,80,100 (default 50,80,100)")
	if clear {
		f.BoolVar(&b.clear, "clear-budget", false, "remove the budget (the key's, or the selected assignment's)")
	}
}

// budget returns the budget the flags give, or nil without --budget;
// --budget-period and --budget-tz alone are an error, not ignored.
func (b *budgetFlags) budget(f *pflag.FlagSet) (*llmproxy.Budget, error) {
	if !f.Changed("budget") {
		for _, name := range []string{"budget-period", "budget-tz", "budget-alerts"} {
			if f.Changed(name) {
				return nil, fmt.Errorf("--%s needs --budget", name)
			}
		}
		return nil, nil
	}
	bu := &llmproxy.Budget{USD: b.usd, Period: b.period, TZ: b.tz}
	if f.Changed("budget-alerts") {
		// Percentages on the command line, fractions stored; the server
		// checks the range.
		bu.Alerts = make([]float64, len(b.alerts))
		for i, p := range b.alerts {
			bu.Alerts[i] = p / 100
		}
	}
	return bu, nil
}

func parseWindow(s string) (time.Duration, error) {
	d, err := llmproxy.ParseWindow(s)
	if err != nil {
		return 0, fmt.Errorf("--token-window: %w", err)
	}
	return d, nil
}

// parseExpiry parses --expires: a duration from now ("720h", "30d"), an
// RFC 3339 time, a date (midnight UTC), or "never".
func parseExpiry(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "never", "none":
		return time.Time{}, nil
	}
	if d, err := llmproxy.ParseWindow(s); err == nil {
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--expires: %q is not a duration (720h, 30d), a date (2026-12-31), an RFC 3339 time, or \"never\"", s)
}

func newVKeyAddCmd(e *env) *cobra.Command {
	var (
		name, secret, expires string
		connIDs, modelIDs     []string
		lim                   limitFlags
		budget                budgetFlags
		quiet, asJSON         bool
	)
	cmd := &cobra.Command{
		Use:   "add --name NAME [--key SECRET] (--conn-id ID | --model-id ID...) [limits]",
		Short: "Add a virtual key",
		Long: `Add a virtual key with the right to use a whole connection (--conn-id: every
model on it, models added later included) or single models (--model-id,
repeatable), with optional limits on each assignment, and an optional budget in
US dollars over all of them (--budget, per --budget-period in --budget-tz).

Without --key a secret is generated and printed once: store it, it cannot be
shown again. With -q, the new ID is printed, and a generated secret on the
line after it.`,
		Example: `  llm-proxy vkey add --name "Mobile-App" --key "sk-proxy-123" --conn-id "<CONN_ID>"
  llm-proxy vkey add --name "Tester" --key "sk-tester-456" --model-id "<MODEL_ID>"
  llm-proxy vkey add --name "batch" --conn-id "<CONN_ID>" --tps 5 --token-limit 100000 --token-window 24h
  llm-proxy vkey add --name "team" --conn-id "<CONN_ID>" --budget 50 --budget-period monthly --budget-tz Asia/Bangkok`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			base, err := lim.assignment()
			if err != nil {
				return err
			}
			k := llmproxy.VirtualKey{Name: name}
			if k.Budget, err = budget.budget(cmd.Flags()); err != nil {
				return err
			}
			if k.ExpiresAt, err = parseExpiry(expires, time.Now()); err != nil {
				return err
			}
			for _, id := range connIDs {
				a := base
				a.ConnectionID = id
				k.Assignments = append(k.Assignments, a)
			}
			for _, id := range modelIDs {
				a := base
				a.ModelID = id
				k.Assignments = append(k.Assignments, a)
			}
			return e.admin(ctx, func(a *admin.Service) error {
				got, err := a.AddKey(ctx, &k, secret)
				if err != nil {
					return err
				}
				generated := secret == ""
				switch {
				case quiet:
					if generated {
						return printf(e.stdout, "%s\n%s\n", k.ID, got)
					}
					return printf(e.stdout, "%s\n", k.ID)
				case asJSON:
					v := adminapi.KeyView(&k)
					if generated {
						v.Key = got
					}
					return writeJSON(e.stdout, v)
				}
				if err := printKey(e.stdout, &k, loadNames(ctx, a)); err != nil {
					return err
				}
				if generated {
					return printf(e.stdout, "\nKey: %s\nThis is the only time the key is shown: store it now.\n", got)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "unique name of the key (required)")
	f.StringVar(&secret, "key", "", "the key's secret, e.g. sk-proxy-123 (default: generated)")
	f.StringArrayVar(&connIDs, "conn-id", nil, "a connection (ID or name) the key may use in full; repeatable")
	f.StringArrayVar(&modelIDs, "model-id", nil, "a model ID the key may use; repeatable")
	f.StringVar(&expires, "expires", "", "when the key stops working: a duration (720h, 30d), a date or an RFC 3339 time")
	lim.register(f)
	budget.register(f, "the key", false)
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the new key's ID (and a generated secret on the next line)")
	f.BoolVar(&asJSON, "json", false, "print the new key as JSON")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagsOneRequired("conn-id", "model-id")
	cmd.MarkFlagsMutuallyExclusive("quiet", "json")
	return cmd
}

func newVKeyListCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List virtual keys (their prefixes, never their secrets)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return e.admin(ctx, func(a *admin.Service) error {
				ks, err := a.ListKeys(ctx, llmproxy.ListOptions{})
				if err != nil {
					return err
				}
				if asJSON {
					out := make([]adminapi.Key, 0, len(ks))
					for i := range ks {
						out = append(out, adminapi.KeyView(&ks[i]))
					}
					return writeJSON(e.stdout, out)
				}
				return printKeys(e.stdout, ks, loadNames(ctx, a))
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newVKeyDeleteCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "delete ID",
		Aliases: []string{"rm"},
		Short:   "Delete a virtual key (its usage records stay)",
		Args:    exactArgs("the key's ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.admin(cmd.Context(), func(a *admin.Service) error {
				k, err := a.DeleteKey(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return printf(e.stdout, "deleted key %s (%s)\n", k.ID, k.Name)
			})
		},
	}
}

func newVKeyAssignCmd(e *env) *cobra.Command {
	var (
		connID, modelID string
		lim             limitFlags
		budget          budgetFlags
		asJSON          bool
	)
	cmd := &cobra.Command{
		Use:   "assign KEY_ID (--conn-id ID | --model-id ID) [limits] [--budget USD]",
		Short: "Give a key the right to a connection or a model",
		Long: `Give a key the right to a connection or a model, with optional limits and an
optional budget in US dollars for this assignment's requests (--budget, per
--budget-period in --budget-tz), apart from the key's own budget.`,
		Args: exactArgs("the key's ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			as, err := lim.assignment()
			if err != nil {
				return err
			}
			if as.Budget, err = budget.budget(cmd.Flags()); err != nil {
				return err
			}
			as.ConnectionID, as.ModelID = connID, modelID
			return e.admin(ctx, func(a *admin.Service) error {
				k, err := a.AssignKey(ctx, args[0], as)
				if err != nil {
					return err
				}
				return e.printKey(ctx, a, k, asJSON)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&connID, "conn-id", "", "the connection (ID or name) to assign")
	f.StringVar(&modelID, "model-id", "", "the model ID to assign")
	lim.register(f)
	budget.register(f, "this assignment's requests", false)
	f.BoolVar(&asJSON, "json", false, "print the key as JSON")
	cmd.MarkFlagsOneRequired("conn-id", "model-id")
	cmd.MarkFlagsMutuallyExclusive("conn-id", "model-id")
	return cmd
}

func newVKeyUnassignCmd(e *env) *cobra.Command {
	var (
		connID, modelID string
		asJSON          bool
	)
	cmd := &cobra.Command{
		Use:   "unassign KEY_ID (--conn-id ID | --model-id ID)",
		Short: "Take a connection or a model away from a key",
		Args:  exactArgs("the key's ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return e.admin(ctx, func(a *admin.Service) error {
				k, err := a.UnassignKey(ctx, args[0], connID, modelID)
				if err != nil {
					return err
				}
				return e.printKey(ctx, a, k, asJSON)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&connID, "conn-id", "", "the connection (ID or name) to take away")
	f.StringVar(&modelID, "model-id", "", "the model ID to take away")
	f.BoolVar(&asJSON, "json", false, "print the key as JSON")
	cmd.MarkFlagsOneRequired("conn-id", "model-id")
	cmd.MarkFlagsMutuallyExclusive("conn-id", "model-id")
	return cmd
}

func newVKeyUpdateCmd(e *env) *cobra.Command {
	var (
		connID, modelID, expires string
		lim                      limitFlags
		budget                   budgetFlags
		asJSON                   bool
	)
	cmd := &cobra.Command{
		Use:   "update KEY_ID [--conn-id ID | --model-id ID] [limits] [--expires WHEN] [--budget USD | --clear-budget]",
		Short: "Change a key's limits, expiry or budget",
		Long: `Change a key's limits, expiry or budget; a running server applies the change
within 2 seconds. Only the flags given change. Limits apply to every assignment
of the key, or with --conn-id/--model-id to that one. A limit of 0 removes it;
--expires never removes the expiry. --budget replaces the key's own budget,
or with --conn-id/--model-id that assignment's (--budget-period and
--budget-tz take their defaults when not given); --clear-budget removes it.`,
		Args: exactArgs("the key's ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			u := admin.KeyUpdate{ConnectionID: connID, ModelID: modelID}
			var err error
			if u.Limits, err = lim.change(cmd.Flags()); err != nil {
				return err
			}
			b, err := budget.budget(cmd.Flags())
			if err != nil {
				return err
			}
			// With --conn-id or --model-id the budget is that
			// assignment's, as the limits are; without, the key's.
			if connID != "" || modelID != "" {
				u.Limits.Budget, u.Limits.ClearBudget = b, budget.clear
			} else {
				u.Budget, u.ClearBudget = b, budget.clear
			}
			if cmd.Flags().Changed("expires") {
				t, err := parseExpiry(expires, time.Now())
				if err != nil {
					return err
				}
				u.ExpiresAt = &t
			}
			return e.admin(ctx, func(a *admin.Service) error {
				k, err := a.UpdateKey(ctx, args[0], u)
				if err != nil {
					return err
				}
				return e.printKey(ctx, a, k, asJSON)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&connID, "conn-id", "", "change only the assignment of this connection (ID or name)")
	f.StringVar(&modelID, "model-id", "", "change only the assignment of this model ID")
	f.StringVar(&expires, "expires", "", "when the key stops working: a duration (720h, 30d), a date, an RFC 3339 time, or never")
	lim.register(f)
	budget.register(f, "the key", true)
	f.BoolVar(&asJSON, "json", false, "print the key as JSON")
	cmd.MarkFlagsMutuallyExclusive("conn-id", "model-id")
	cmd.MarkFlagsMutuallyExclusive("budget", "clear-budget")
	return cmd
}

func newVKeyShowCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID|NAME",
		Short: "Show a virtual key (its prefix, never its secret)",
		Args:  exactArgs("the key's ID or name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return e.admin(ctx, func(a *admin.Service) error {
				k, err := a.KeyByIDOrName(ctx, args[0])
				if err != nil {
					return err
				}
				return e.printKey(ctx, a, k, asJSON)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (e *env) printKey(ctx context.Context, a *admin.Service, k *llmproxy.VirtualKey, asJSON bool) error {
	if asJSON {
		return writeJSON(e.stdout, adminapi.KeyView(k))
	}
	return printKey(e.stdout, k, loadNames(ctx, a))
}
