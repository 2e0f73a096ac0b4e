package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/adminapi"
)

func newModelCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "model",
		Aliases: []string{"models"},
		Short:   "Manage models: aliases mapped to a remote model on a connection",
	}
	cmd.AddCommand(newModelAddCmd(e), newModelListCmd(e), newModelDeleteCmd(e))
	return cmd
}

func newModelAddCmd(e *env) *cobra.Command {
	var (
		m             llmproxy.Model
		quiet, asJSON bool
	)
	cmd := &cobra.Command{
		Use:     "add --name ALIAS --remote MODEL --conn-id ID",
		Short:   "Add a model alias",
		Example: `  llm-proxy model add --name "gemini-flash" --remote "gemini-1.5-flash" --conn-id "<CONN_ID>"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
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
	f.IntVar(&m.Weight, "weight", 0, "share of requests among models with the same alias (default 1)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the new model's ID")
	f.BoolVar(&asJSON, "json", false, "print the new model as JSON")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("remote")
	cmd.MarkFlagRequired("conn-id")
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
