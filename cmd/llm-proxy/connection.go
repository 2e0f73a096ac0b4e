package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/adminapi"
	"github.com/go-llm-proxy/llmproxy/provider/azure"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock"
)

func newConnectionCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "connection",
		Aliases: []string{"connections", "conn"},
		Short:   "Manage connections: real provider accounts",
	}
	cmd.AddCommand(newConnectionAddCmd(e), newConnectionListCmd(e), newConnectionShowCmd(e),
		newConnectionUpdateCmd(e), newConnectionDeleteCmd(e))
	return cmd
}

// connectionFlags are the flags connection add and connection update
// share. The settings flags write the settings exactly as the config
// file's "settings:" does (same names, values as written).
type connectionFlags struct {
	name, endpoint, apiKey, apiVersion, region string
	accessKeyID, secretAccessKey, sessionToken string
	firstByteTimeout, idleTimeout              durationFlag
	settings                                   settingsFlag
}

// settingFlags maps the flags of single settings to the settings' names.
var settingFlags = []struct{ flag, setting string }{
	{"api-version", azure.SettingAPIVersion},
	{"region", bedrock.SettingRegion},
	{"first-byte-timeout", llmproxy.SettingFirstByteTimeout},
	{"idle-timeout", llmproxy.SettingIdleTimeout},
}

// knownSettings are the settings llm-proxy's own providers and the
// Gateway read; others are stored, with a note (a typo reads nothing).
var knownSettings = []string{azure.SettingAPIVersion, llmproxy.SettingFirstByteTimeout, llmproxy.SettingIdleTimeout,
	bedrock.SettingMaxAttempts, bedrock.SettingRegion}

// register defines the flags; update words their help for a change.
func (cf *connectionFlags) register(f *pflag.FlagSet, update bool) {
	gone := func(what string) string {
		if update {
			return what + `; "" removes it`
		}
		return what
	}
	if update {
		f.StringVar(&cf.name, "name", "", "a new unique name")
		f.StringVar(&cf.endpoint, "endpoint", "", `a new base URL of the provider's API; "" returns to the provider's default`)
		f.StringVar(&cf.apiKey, "api-key", "", gone("a new API key, e.g. to rotate it (stored encrypted)"))
	} else {
		f.StringVar(&cf.name, "name", "", "unique name of the connection (required)")
		f.StringVar(&cf.endpoint, "endpoint", "", "base URL of the provider's API")
		f.StringVar(&cf.apiKey, "api-key", "", "the provider's API key (stored encrypted)")
	}
	f.StringVar(&cf.apiVersion, "api-version", "", gone("azure: the api-version query parameter"))
	f.StringVar(&cf.region, "region", "", "bedrock: the AWS region, e.g. us-east-1")
	f.StringVar(&cf.accessKeyID, "access-key-id", "", "bedrock: AWS access key ID (stored encrypted)")
	f.StringVar(&cf.secretAccessKey, "secret-access-key", "", "bedrock: AWS secret access key (stored encrypted)")
	f.StringVar(&cf.sessionToken, "session-token", "", gone("bedrock: AWS session token (stored encrypted)"))
	serverDefault := func(what string) string {
		if update {
			return what + `; "" returns to the server's default`
		}
		return what
	}
	f.Var(&cf.firstByteTimeout, "first-byte-timeout", serverDefault("how long the upstream may take to start answering, e.g. 30s (server default 10m)"))
	f.Var(&cf.idleTimeout, "idle-timeout", serverDefault("how long a stream may go without data, e.g. 2m (server default 5m)"))
	help := "a provider setting, repeatable, e.g. --setting max_attempts=5"
	if update {
		help += "; key= removes the setting"
	}
	f.Var(&cf.settings, "setting", help)
}

// settingsFrom returns the settings the given flags set (a value of ""
// removes the setting on update). A setting given by two flags is an
// error.
func (cf *connectionFlags) settingsFrom(f *pflag.FlagSet) (map[string]string, error) {
	values := map[string]string{"api-version": cf.apiVersion, "region": cf.region,
		"first-byte-timeout": string(cf.firstByteTimeout), "idle-timeout": string(cf.idleTimeout)}
	out := map[string]string{}
	by := map[string]string{}
	for _, sf := range settingFlags {
		if f.Changed(sf.flag) {
			out[sf.setting] = strings.TrimSpace(values[sf.flag])
			by[sf.setting] = sf.flag
		}
	}
	for _, k := range cf.settings.keys {
		if flag, ok := by[k]; ok {
			return nil, fmt.Errorf("--setting %s=… and --%s both set %s; give one of them", k, flag, k)
		}
		out[k] = cf.settings.values[k]
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// noteUnknownSettings notes on stderr the settings set that llm-proxy's
// providers do not read: a typo such as idle_timout would otherwise pass
// unseen. They are stored all the same, as the config file stores them:
// the database may also serve a Gateway embedded with providers of its
// own.
func (e *env) noteUnknownSettings(settings map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		if settings[k] != "" && !slices.Contains(knownSettings, k) {
			fmt.Fprintf(e.stderr, "llm-proxy: note: setting %q is not one llm-proxy's providers read (%s); stored as given\n", k, strings.Join(knownSettings, ", "))
		}
	}
}

// durationFlag is a flag holding a duration as written ("30s", "2m"),
// stored as the config file stores it and checked as the Gateway reads
// it (time.ParseDuration, positive), so that a mistake names the flag.
// "" means none: on update, back to the server's default.
type durationFlag string

func (d *durationFlag) String() string { return string(*d) }
func (d *durationFlag) Type() string   { return "duration" }

func (d *durationFlag) Set(s string) error {
	s = strings.TrimSpace(s)
	if s != "" {
		if v, err := time.ParseDuration(s); err != nil || v <= 0 {
			return errors.New("not a positive duration such as 30s, 2m or 1h30m")
		}
	}
	*d = durationFlag(s)
	return nil
}

// settingsFlag collects repeated --setting key=value flags.
type settingsFlag struct {
	keys   []string // in the order given
	values map[string]string
}

func (s *settingsFlag) Type() string { return "key=value" }

func (s *settingsFlag) String() string {
	var kv []string
	for _, k := range s.keys {
		kv = append(kv, k+"="+s.values[k])
	}
	return strings.Join(kv, ",")
}

func (s *settingsFlag) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	k = strings.TrimSpace(k)
	switch {
	case !ok || k == "":
		return errors.New("write key=value, e.g. max_attempts=5")
	case strings.ContainsAny(k, " \t\n"):
		return fmt.Errorf("%q is not a setting name", k)
	case slices.Contains(s.keys, k):
		return fmt.Errorf("%s is given twice", k)
	}
	if s.values == nil {
		s.values = map[string]string{}
	}
	s.keys = append(s.keys, k)
	s.values[k] = strings.TrimSpace(v)
	return nil
}

func newConnectionAddCmd(e *env) *cobra.Command {
	var (
		cf            connectionFlags
		provider      string
		quiet, asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "add --name NAME --provider KIND [--endpoint URL] [--api-key KEY] [options]",
		Short: "Add a connection",
		Long: `Add a connection to a provider account.

Providers: openai, google (Gemini's OpenAI-compatible endpoint), azure, bedrock,
anthropic (Anthropic's Messages API), and compatible (any OpenAI-compatible
server; "openai-compatible" also works). openai, google and anthropic default
their endpoint; compatible and azure need --endpoint; azure, openai and
anthropic need --api-key. bedrock needs --region (or --endpoint) and
either --access-key-id with --secret-access-key or the AWS default credentials.

Every kind takes --first-byte-timeout (how long the upstream may take to start
answering; then 504) and --idle-timeout (how long a stream may stall; then it
ends with an error event), which override the server's defaults (10m, 5m) for
this connection. Other provider settings go in --setting key=value, as under
"settings:" in the config file.`,
		Example: `  llm-proxy connection add --name "google-ai" --provider "google" --endpoint "https://generativelanguage.googleapis.com/v1beta/openai" --api-key "AIza..."
  llm-proxy connection add --name claude --provider anthropic --api-key "sk-ant-..."
  llm-proxy connection add --name local --provider compatible --endpoint http://localhost:11434/v1 --first-byte-timeout 30s --idle-timeout 2m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			settings, err := cf.settingsFrom(cmd.Flags())
			if err != nil {
				return err
			}
			c := llmproxy.Connection{Name: cf.name, Provider: provider, Endpoint: cf.endpoint, Settings: settings,
				Credentials: llmproxy.Credentials{APIKey: cf.apiKey, AccessKeyID: cf.accessKeyID, SecretAccessKey: cf.secretAccessKey, SessionToken: cf.sessionToken}}
			return e.admin(cmd.Context(), func(a *admin.Service) error {
				if err := a.AddConnection(cmd.Context(), &c); err != nil {
					return err
				}
				err := e.printConnection(&c, quiet, asJSON)
				e.noteUnknownSettings(c.Settings)
				return err
			})
		},
	}
	f := cmd.Flags()
	cf.register(f, false)
	f.StringVar(&provider, "provider", "", "provider kind: openai, google, azure, bedrock, anthropic or compatible (required)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the new connection's ID")
	f.BoolVar(&asJSON, "json", false, "print the new connection as JSON")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("provider")
	cmd.MarkFlagsMutuallyExclusive("quiet", "json")
	return cmd
}

// connectionUpdateFlags are the flags of connection update that change
// something, for the message when none is given.
const connectionUpdateFlags = "--name, --endpoint, --api-key, --api-version, --region, --access-key-id with --secret-access-key, --session-token, --first-byte-timeout, --idle-timeout or --setting"

func newConnectionUpdateCmd(e *env) *cobra.Command {
	var (
		cf            connectionFlags
		provider      string
		quiet, asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "update ID|NAME [--name NAME] [--endpoint URL] [--api-key KEY] [options]",
		Short: "Change a connection: rotate its key, change its endpoint, timeouts or settings",
		Long: `Change a connection; a running server uses the change within 2 seconds, no
restart needed. Only the flags given change; the result is checked as "add"
checks a new connection (e.g. an azure connection takes no --region, a bedrock
one no --api-key).

A value of "" removes what a flag sets: --api-key "" (compatible servers that
need none), --endpoint "" (back to the provider's default), --first-byte-timeout ""
and --idle-timeout "" (back to the server's defaults), --setting key= (any
setting). --access-key-id and --secret-access-key change together; a new pair
drops the old --session-token unless a new one is given.

The provider kind cannot change: delete the connection and add it again.`,
		Example: `  llm-proxy connection update google-ai --api-key "AIza-new..."
  llm-proxy connection update local --idle-timeout 2m --first-byte-timeout 30s
  llm-proxy connection update claude --access-key-id AKIA... --secret-access-key ...
  llm-proxy connection update local --setting idle_timeout=`,
		Args: exactArgs("the connection's ID or name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			var u admin.ConnectionUpdate
			given := func(flag string, v *string) *string {
				if f.Changed(flag) {
					return v
				}
				return nil
			}
			u.Name, u.Endpoint, u.APIKey = given("name", &cf.name), given("endpoint", &cf.endpoint), given("api-key", &cf.apiKey)
			u.AccessKeyID, u.SecretAccessKey = given("access-key-id", &cf.accessKeyID), given("secret-access-key", &cf.secretAccessKey)
			u.SessionToken, u.Provider = given("session-token", &cf.sessionToken), given("provider", &provider)
			var err error
			if u.Settings, err = cf.settingsFrom(f); err != nil {
				return err
			}
			if u.IsZero() {
				return fmt.Errorf("nothing to change: give %s (see %s --help)", connectionUpdateFlags, cmd.CommandPath())
			}
			return e.admin(cmd.Context(), func(a *admin.Service) error {
				c, err := a.UpdateConnection(cmd.Context(), args[0], u)
				if err != nil {
					return err
				}
				err = e.printConnection(c, quiet, asJSON)
				e.noteUnknownSettings(u.Settings)
				return err
			})
		},
	}
	f := cmd.Flags()
	cf.register(f, true)
	// Not a change anyone can make; the flag is there so that trying it
	// says why.
	f.StringVar(&provider, "provider", "", "the provider kind cannot change")
	f.MarkHidden("provider")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the connection's ID")
	f.BoolVar(&asJSON, "json", false, "print the connection as JSON")
	cmd.MarkFlagsRequiredTogether("access-key-id", "secret-access-key")
	cmd.MarkFlagsMutuallyExclusive("quiet", "json")
	return cmd
}

// printConnection prints c as add and update do: the record, its ID
// alone (-q), or JSON; never a secret.
func (e *env) printConnection(c *llmproxy.Connection, quiet, asJSON bool) error {
	switch {
	case quiet:
		return printf(e.stdout, "%s\n", c.ID)
	case asJSON:
		return writeJSON(e.stdout, adminapi.ConnectionView(c))
	}
	return printConnection(e.stdout, c)
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
