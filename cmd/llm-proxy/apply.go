package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/config"
)

func newApplyCmd(e *env) *cobra.Command {
	var (
		file          string
		dryRun, prune bool
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE [--dry-run] [--prune]",
		Short: "Make the connections, models and keys match a YAML file",
		Long: `Create or update the connections, models and virtual keys listed in a YAML
file, so that the database matches it: records are matched by name (a model by
alias and connection); what is missing is created, what differs is updated,
and what is already right is left alone, so applying the same file twice
changes nothing the second time. Records the file does not list are kept,
unless --prune deletes them. The whole file is checked before anything is
written. --dry-run prints the changes without making them.

Secrets belong in the environment, not in the file: any value may be a
${NAME} reference to an environment variable (an unset one is an error).
A key without "key" keeps its secret, or, when new, gets a generated one,
printed once. The file's "server" section (db_type, db_dsn, encryption_key)
says where the database is, unless the environment or flags say otherwise.
See "llm-proxy serve --help" for the server section.`,
		Example: `  llm-proxy apply -f llm-proxy.yaml --dry-run
  GOOGLE_API_KEY=AIza... MOBILE_APP_KEY=sk-proxy-123 llm-proxy apply -f llm-proxy.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			f, err := e.useConfigFile(cmd, file)
			if err != nil {
				return err
			}
			return e.admin(ctx, func(a *admin.Service) error {
				changes, err := config.Apply(ctx, a, f, config.Options{DryRun: dryRun, Prune: prune})
				if err != nil {
					return err
				}
				for _, c := range changes {
					if err := printf(e.stdout, "%s\n", c); err != nil {
						return err
					}
				}
				switch {
				case len(changes) == 0:
					return printf(e.stdout, "No changes: the database matches %s.\n", file)
				case dryRun:
					return printf(e.stdout, "Dry run: %d changes, nothing written.\n", len(changes))
				}
				for _, c := range changes {
					if c.Secret != "" {
						if err := printf(e.stdout, "\nKey %s: %s\nThis is the only time the key is shown: store it now.\n", c.Name, c.Secret); err != nil {
							return err
						}
					}
				}
				return printf(e.stdout, "Applied %d changes.\n", len(changes))
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "the YAML file (required)")
	f.BoolVar(&dryRun, "dry-run", false, "print the changes without making them")
	f.BoolVar(&prune, "prune", false, "also delete the keys, models and connections the file does not list")
	cmd.MarkFlagRequired("file")
	return cmd
}

// useConfigFile reads a configuration file and makes its server section
// the fallback of the environment: an environment variable that is set
// wins over the file, and a flag given wins over both. An empty path does
// nothing.
func (e *env) useConfigFile(cmd *cobra.Command, path string) (*config.File, error) {
	if path == "" {
		return nil, nil
	}
	osenv := e.getenv
	f, err := config.Load(path, osenv)
	if err != nil {
		return nil, err
	}
	for _, w := range f.Warnings {
		fmt.Fprintf(e.stderr, "llm-proxy: warning: %s: %s\n", path, w)
	}
	fileEnv := f.Server.Env()
	e.getenv = func(name string) string {
		if v := osenv(name); v != "" {
			return v
		}
		return fileEnv[name]
	}
	// Flags whose defaults were taken from the environment before the
	// file was read.
	fromFile := func(flag, envName string, set func(string) error) error {
		if fl := cmd.Flag(flag); fl == nil || fl.Changed || osenv(envName) != "" || fileEnv[envName] == "" {
			return nil
		}
		if err := set(fileEnv[envName]); err != nil {
			return fmt.Errorf("%s: server.%s: %w", path, flag, err)
		}
		return nil
	}
	for _, s := range []struct {
		flag, env string
	}{{"db-type", "DB_TYPE"}, {"db-dsn", "DB_DSN"}, {"port", "PORT"}, {"addr", "LISTEN_ADDR"},
		{"shutdown-grace", "SHUTDOWN_GRACE"}, {"metrics-addr", "METRICS_ADDR"}} {
		if err := fromFile(s.flag, s.env, func(v string) error { return cmd.Flag(s.flag).Value.Set(v) }); err != nil {
			return nil, err
		}
	}
	if v := fileEnv["PORT"]; v != "" {
		if p, err := strconv.Atoi(v); err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("%s: server.port %q is not a port number", path, v)
		}
	}
	return f, nil
}
