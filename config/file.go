// Package config reads llm-proxy's YAML configuration file: the server's
// settings (an alternative to flags and environment variables for
// "llm-proxy serve") and a declarative list of connections, models and
// virtual keys that Apply makes the database match ("llm-proxy apply -f"),
// for GitOps.
//
// Secrets do not belong in a file kept in git. Any string value may be,
// or contain, a reference to an environment variable, ${NAME}, replaced
// when the file is read; a reference to an unset variable is an error. A
// secret written in the file itself is accepted, with a warning. A key's
// secret may be left out: an existing key then keeps its secret, and a
// new one gets a generated secret, shown once in Apply's changes.
//
//	server:
//	  port: 8080
//	  db_type: postgres
//	  db_dsn: ${DATABASE_URL}
//	  master_key: ${MASTER_KEY}
//	  encryption_key: ${ENCRYPTION_KEY}
//	  log_format: json
//	connections:
//	  - name: google-ai
//	    provider: google
//	    api_key: ${GOOGLE_API_KEY}
//	models:
//	  - name: gemini-flash
//	    remote: gemini-1.5-flash
//	    connection: google-ai
//	keys:
//	  - name: Mobile-App
//	    key: ${MOBILE_APP_KEY}
//	    assignments:
//	      - connection: google-ai
//	        tps: 5
//	        token_limit: 100000
//	        token_window: 24h
package config

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/go-llm-proxy/llmproxy/pricing"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// File is a configuration file.
type File struct {
	Server      Server       `yaml:"server"`
	Connections []Connection `yaml:"connections"`
	Models      []Model      `yaml:"models"`
	Keys        []Key        `yaml:"keys"`
	// Warnings lists the secrets written in the file itself rather than
	// as ${NAME} references.
	Warnings []string `yaml:"-"`
}

// Server holds the settings of "llm-proxy serve". Each has an environment
// variable, which wins over the file (Env lists them); flags win over
// both. Empty fields are not set.
type Server struct {
	Addr          string `yaml:"addr"`           // LISTEN_ADDR, --addr
	Port          int    `yaml:"port"`           // PORT, --port
	DBType        string `yaml:"db_type"`        // DB_TYPE, --db-type
	DBDSN         string `yaml:"db_dsn"`         // DB_DSN, --db-dsn
	MasterKey     string `yaml:"master_key"`     // MASTER_KEY
	EncryptionKey string `yaml:"encryption_key"` // ENCRYPTION_KEY
	RedisURL      string `yaml:"redis_url"`      // REDIS_URL
	LogFormat     string `yaml:"log_format"`     // LOG_FORMAT: text or json
	LogLevel      string `yaml:"log_level"`      // LOG_LEVEL: debug, info, warn, error
	// Metrics turns GET /metrics off when false (METRICS=off).
	Metrics       *bool  `yaml:"metrics"`
	MetricsAddr   string `yaml:"metrics_addr"`   // METRICS_ADDR, --metrics-addr
	ShutdownGrace string `yaml:"shutdown_grace"` // SHUTDOWN_GRACE, --shutdown-grace
}

// Env returns the settings that are set, by the name of their
// environment variable.
func (s *Server) Env() map[string]string {
	env := map[string]string{}
	set := func(name, v string) {
		if v != "" {
			env[name] = v
		}
	}
	set("LISTEN_ADDR", s.Addr)
	if s.Port != 0 {
		env["PORT"] = strconv.Itoa(s.Port)
	}
	set("DB_TYPE", s.DBType)
	set("DB_DSN", s.DBDSN)
	set("MASTER_KEY", s.MasterKey)
	set("ENCRYPTION_KEY", s.EncryptionKey)
	set("REDIS_URL", s.RedisURL)
	set("LOG_FORMAT", s.LogFormat)
	set("LOG_LEVEL", s.LogLevel)
	if s.Metrics != nil {
		env["METRICS"] = map[bool]string{true: "on", false: "off"}[*s.Metrics]
	}
	set("METRICS_ADDR", s.MetricsAddr)
	set("SHUTDOWN_GRACE", s.ShutdownGrace)
	return env
}

// Connection is a provider account, by its unique name.
type Connection struct {
	Name            string            `yaml:"name"`
	Provider        string            `yaml:"provider"`
	Endpoint        string            `yaml:"endpoint"`
	APIKey          string            `yaml:"api_key"`
	AccessKeyID     string            `yaml:"access_key_id"`
	SecretAccessKey string            `yaml:"secret_access_key"`
	SessionToken    string            `yaml:"session_token"`
	Settings        map[string]string `yaml:"settings"`
}

// Model is an alias on a connection (named); the pair is unique.
type Model struct {
	Name       string `yaml:"name"`
	Remote     string `yaml:"remote"`
	Connection string `yaml:"connection"`
	Weight     int    `yaml:"weight"`
	// Price overrides the price table for this model (dollars per
	// million tokens); absent, the table applies.
	Price *Price `yaml:"price"`
}

// Price is a model's price override in the file.
type Price struct {
	Input       float64 `yaml:"input"`
	Output      float64 `yaml:"output"`
	CachedInput float64 `yaml:"cached_input"`
	CacheWrite  float64 `yaml:"cache_write"`
}

// price is p as the model's override; nil for none.
func (p *Price) price() *pricing.Price {
	if p == nil {
		return nil
	}
	return &pricing.Price{Input: p.Input, Output: p.Output, CachedInput: p.CachedInput, CacheWrite: p.CacheWrite}
}

// Key is a virtual key, by its unique name. Key is its secret: empty
// keeps an existing key's secret or generates a new key's.
type Key struct {
	Name      string    `yaml:"name"`
	Key       string    `yaml:"key"`
	ExpiresAt time.Time `yaml:"expires_at"`
	// Budget limits what the key may spend over all its assignments;
	// absent, the key has none (an existing key's budget is removed).
	Budget      *Budget      `yaml:"budget"`
	Assignments []Assignment `yaml:"assignments"`
}

// Budget is a spending limit in US dollars per calendar period: Period
// is daily, weekly, monthly (when empty) or total; TZ is the IANA time
// zone whose midnight starts a period (empty: UTC).
type Budget struct {
	USD    float64 `yaml:"usd"`
	Period string  `yaml:"period"`
	TZ     string  `yaml:"tz"`
	// Alerts are the fractions of USD at which alerts fire, e.g.
	// [0.5, 0.9]; empty means the default thresholds.
	Alerts []float64 `yaml:"alerts"`
}

// Assignment gives a key a whole connection (Connection, by name) or one
// model (Model, by alias; ModelConnection names the connection when the
// alias is on several), with limits. TokenWindow is a duration such as
// "24h" or "30d"; empty makes TokenLimit a lifetime quota.
type Assignment struct {
	Connection      string  `yaml:"connection"`
	Model           string  `yaml:"model"`
	ModelConnection string  `yaml:"model_connection"`
	TPS             float64 `yaml:"tps"`
	Burst           int     `yaml:"burst"`
	TokenLimit      int64   `yaml:"token_limit"`
	TokenWindow     string  `yaml:"token_window"`
	// Budget limits what this assignment's requests may spend; absent,
	// it has none.
	Budget *Budget `yaml:"budget"`
}

// Load reads the file at path; see Parse.
func Load(path string, getenv func(string) string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(b, getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse reads a configuration file, refusing unknown fields, and replaces
// ${NAME} references with getenv(NAME).
func Parse(data []byte, getenv func(string) string) (*File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	x := expander{getenv: getenv}
	s := &f.Server
	for _, p := range []struct {
		field string
		v     *string
	}{
		{"addr", &s.Addr}, {"db_type", &s.DBType}, {"db_dsn", &s.DBDSN}, {"master_key", &s.MasterKey},
		{"encryption_key", &s.EncryptionKey}, {"redis_url", &s.RedisURL}, {"log_format", &s.LogFormat},
		{"log_level", &s.LogLevel}, {"metrics_addr", &s.MetricsAddr}, {"shutdown_grace", &s.ShutdownGrace},
	} {
		x.expand("server."+p.field, p.v, p.field == "master_key" || p.field == "encryption_key")
	}
	if s.DBDSN != "" && strings.Contains(s.DBDSN, "@") && !x.fromEnv["server.db_dsn"] {
		f.Warnings = append(f.Warnings, "server.db_dsn may hold a database password in the file: use ${NAME}")
	}
	for i := range f.Connections {
		c := &f.Connections[i]
		at := fmt.Sprintf("connections[%d]", i)
		x.expand(at+".name", &c.Name, false)
		at = fmt.Sprintf("connection %q", c.Name)
		x.expand(at+" provider", &c.Provider, false)
		x.expand(at+" endpoint", &c.Endpoint, false)
		x.expand(at+" api_key", &c.APIKey, true)
		x.expand(at+" access_key_id", &c.AccessKeyID, false)
		x.expand(at+" secret_access_key", &c.SecretAccessKey, true)
		x.expand(at+" session_token", &c.SessionToken, true)
		for k, v := range c.Settings {
			x.expand(at+" settings."+k, &v, false)
			c.Settings[k] = v
		}
	}
	for i := range f.Models {
		m := &f.Models[i]
		x.expand(fmt.Sprintf("models[%d].name", i), &m.Name, false)
		at := fmt.Sprintf("model %q", m.Name)
		x.expand(at+" remote", &m.Remote, false)
		x.expand(at+" connection", &m.Connection, false)
	}
	for i := range f.Keys {
		k := &f.Keys[i]
		x.expand(fmt.Sprintf("keys[%d].name", i), &k.Name, false)
		at := fmt.Sprintf("key %q", k.Name)
		x.expand(at+" key", &k.Key, true)
		for j := range k.Assignments {
			a := &k.Assignments[j]
			at := fmt.Sprintf("%s assignments[%d]", at, j)
			x.expand(at+".connection", &a.Connection, false)
			x.expand(at+".model", &a.Model, false)
			x.expand(at+".model_connection", &a.ModelConnection, false)
			x.expand(at+".token_window", &a.TokenWindow, false)
			if a.Budget != nil {
				x.expand(at+".budget.period", &a.Budget.Period, false)
				x.expand(at+".budget.tz", &a.Budget.TZ, false)
			}
		}
		if k.Budget != nil {
			x.expand(at+" budget.period", &k.Budget.Period, false)
			x.expand(at+" budget.tz", &k.Budget.TZ, false)
		}
	}
	if len(x.errs) > 0 {
		return nil, errors.Join(x.errs...)
	}
	f.Warnings = append(f.Warnings, x.warnings...)
	return &f, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expander replaces ${NAME} references, collecting errors and warnings.
type expander struct {
	getenv   func(string) string
	errs     []error
	warnings []string
	fromEnv  map[string]bool
}

func (x *expander) expand(field string, v *string, secret bool) {
	if x.fromEnv == nil {
		x.fromEnv = map[string]bool{}
	}
	if *v == "" {
		return
	}
	if !envRef.MatchString(*v) {
		if secret {
			x.warnings = append(x.warnings, field+" is written in the file: use ${NAME} and keep the secret out of the file")
		}
		return
	}
	x.fromEnv[field] = true
	*v = envRef.ReplaceAllStringFunc(*v, func(ref string) string {
		name := ref[2 : len(ref)-1]
		val := ""
		if x.getenv != nil {
			val = x.getenv(name)
		}
		if val == "" {
			x.errs = append(x.errs, fmt.Errorf("%s: environment variable %s is not set", field, name))
		}
		return val
	})
}
