package main

import (
	"github.com/spf13/cobra"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/adminapi"
)

func newConnectionCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "connection",
		Aliases: []string{"connections", "conn"},
		Short:   "Manage connections: real provider accounts",
	}
	cmd.AddCommand(newConnectionAddCmd(e), newConnectionListCmd(e), newConnectionShowCmd(e), newConnectionDeleteCmd(e))
	return cmd
}

func newConnectionAddCmd(e *env) *cobra.Command {
	var (
		c                  llmproxy.Connection
		apiVersion, region string
		quiet, asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "add --name NAME --provider KIND [--endpoint URL] [--api-key KEY]",
		Short: "Add a connection",
		Long: `Add a connection to a provider account.

Providers: openai, google (Gemini's OpenAI-compatible endpoint), azure, bedrock,
and compatible (any OpenAI-compatible server; "openai-compatible" also works).
openai and google default their endpoint; compatible and azure need --endpoint;
azure and openai need --api-key. bedrock needs --region (or --endpoint) and
either --access-key-id with --secret-access-key or the AWS default credentials.`,
		Example: `  llm-proxy connection add --name "google-ai" --provider "google" --endpoint "https://generativelanguage.googleapis.com/v1beta/openai" --api-key "AIza..."`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.Settings = map[string]string{}
			if apiVersion != "" {
				c.Settings["api_version"] = apiVersion
			}
			if region != "" {
				c.Settings["region"] = region
			}
			return e.admin(cmd.Context(), func(a *admin.Service) error {
				if err := a.AddConnection(cmd.Context(), &c); err != nil {
					return err
				}
				switch {
				case quiet:
					return printf(e.stdout, "%s\n", c.ID)
				case asJSON:
					return writeJSON(e.stdout, adminapi.ConnectionView(&c))
				}
				return printConnection(e.stdout, &c)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.Name, "name", "", "unique name of the connection (required)")
	f.StringVar(&c.Provider, "provider", "", "provider kind: openai, google, azure, bedrock or compatible (required)")
	f.StringVar(&c.Endpoint, "endpoint", "", "base URL of the provider's API")
	f.StringVar(&c.Credentials.APIKey, "api-key", "", "the provider's API key (stored encrypted)")
	f.StringVar(&apiVersion, "api-version", "", "azure: the api-version query parameter")
	f.StringVar(&region, "region", "", "bedrock: the AWS region, e.g. us-east-1")
	f.StringVar(&c.Credentials.AccessKeyID, "access-key-id", "", "bedrock: AWS access key ID (stored encrypted)")
	f.StringVar(&c.Credentials.SecretAccessKey, "secret-access-key", "", "bedrock: AWS secret access key (stored encrypted)")
	f.StringVar(&c.Credentials.SessionToken, "session-token", "", "bedrock: AWS session token (stored encrypted)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the new connection's ID")
	f.BoolVar(&asJSON, "json", false, "print the new connection as JSON")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("provider")
	cmd.MarkFlagsMutuallyExclusive("quiet", "json")
	return cmd
}

func newConnectionListCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List connections",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.admin(cmd.Context(), func(a *admin.Service) error {
				cs, err := a.ListConnections(cmd.Context(), llmproxy.ListOptions{})
				if err != nil {
					return err
				}
				if asJSON {
					out := make([]adminapi.Connection, 0, len(cs))
					for i := range cs {
						out = append(out, adminapi.ConnectionView(&cs[i]))
					}
					return writeJSON(e.stdout, out)
				}
				return printConnections(e.stdout, cs)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newConnectionShowCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID|NAME",
		Short: "Show one connection (never its secrets)",
		Args:  exactArgs("the connection's ID or name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.admin(cmd.Context(), func(a *admin.Service) error {
				c, err := a.ConnectionByIDOrName(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(e.stdout, adminapi.ConnectionView(c))
				}
				return printConnection(e.stdout, c)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newConnectionDeleteCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "delete ID",
		Aliases: []string{"rm"},
		Short:   "Delete a connection that no model or key uses",
		Args:    exactArgs("the connection's ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.admin(cmd.Context(), func(a *admin.Service) error {
				c, err := a.DeleteConnection(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return printf(e.stdout, "deleted connection %s (%s)\n", c.ID, c.Name)
			})
		},
	}
}
