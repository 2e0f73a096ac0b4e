package console

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
)

// connectionSettings are the settings the connection forms offer, each a
// field named as the setting (the admin API's and the config file's
// names), with the label it shows.
var connectionSettings = []struct{ Name, Label, Hint string }{
	{"api_version", "API version", "Azure only, e.g. 2024-10-21"},
	{"region", "Region", "Bedrock only, e.g. us-east-1"},
	{llmproxy.SettingFirstByteTimeout, "First byte timeout", "e.g. 30s; empty: the server's default"},
	{llmproxy.SettingIdleTimeout, "Idle timeout", "e.g. 2m; empty: the server's default"},
}

// settingField is one setting of a form, with its value.
type settingField struct {
	Name, Label, Hint, Value string
}

func settingFields(values map[string]string) []settingField {
	out := make([]settingField, 0, len(connectionSettings))
	for _, s := range connectionSettings {
		out = append(out, settingField{s.Name, s.Label, s.Hint, values[s.Name]})
	}
	return out
}

// connRow is a connection as the console shows it: which credentials
// are set, never their values.
type connRow struct {
	ID, Name, Provider, Endpoint string
	APIKeySet, AWSKeySet         bool
	Settings                     string
	Models                       int
}

func connRowOf(x *llmproxy.Connection, models int) connRow {
	var settings []string
	for _, k := range slices.Sorted(maps.Keys(x.Settings)) {
		settings = append(settings, k+"="+x.Settings[k])
	}
	return connRow{ID: x.ID, Name: x.Name, Provider: x.Provider, Endpoint: x.Endpoint,
		APIKeySet: x.Credentials.APIKey != "", AWSKeySet: x.Credentials.AccessKeyID != "",
		Settings: strings.Join(settings, ", "), Models: models}
}

type connectionsPage struct {
	Rows []connRow
}

func (c *Console) connections(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	cs, err := c.admin.ListConnections(ctx, llmproxy.ListOptions{})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	ms, err := c.admin.ListModels(ctx, llmproxy.ListOptions{})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	count := map[string]int{}
	for _, m := range ms {
		count[m.ConnectionID]++
	}
	p := &connectionsPage{}
	for i := range cs {
		p.Rows = append(p.Rows, connRowOf(&cs[i], count[cs[i].ID]))
	}
	c.render(w, r, http.StatusOK, "connections", newView(s, "Connections", "connections", p))
}

// connectionForm is the new-connection form as typed, secrets left out:
// a refused form is shown again without them.
type connectionForm struct {
	Name, Provider, Endpoint string
	Settings                 []settingField
	Providers                []string
}

// providerKinds are the kinds a connection may have.
func (c *Console) providerKinds() []string {
	if c.admin.Kinds != nil {
		k := slices.Clone(c.admin.Kinds)
		sort.Strings(k)
		return k
	}
	return []string{llmproxy.KindAnthropic, llmproxy.KindAzure, llmproxy.KindBedrock, llmproxy.KindCompatible, llmproxy.KindGoogle, llmproxy.KindOpenAI}
}

func (c *Console) newConnection(w http.ResponseWriter, r *http.Request, s *session) {
	f := &connectionForm{Provider: llmproxy.KindOpenAI, Settings: settingFields(nil), Providers: c.providerKinds()}
	c.render(w, r, http.StatusOK, "connections_new", newView(s, "New connection", "connections", f))
}

// formSettings reads the settings fields of a form.
func formSettings(f url.Values) map[string]string {
	out := map[string]string{}
	for _, s := range connectionSettings {
		out[s.Name] = strings.TrimSpace(f.Get(s.Name))
	}
	return out
}

func (c *Console) createConnection(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	settings := formSettings(f)
	conn := &llmproxy.Connection{
		Name: f.Get("name"), Provider: f.Get("provider"), Endpoint: f.Get("endpoint"),
		Settings: maps.Clone(settings), // AddConnection drops the empty ones
		Credentials: llmproxy.Credentials{APIKey: strings.TrimSpace(f.Get("api_key")),
			AccessKeyID: strings.TrimSpace(f.Get("access_key_id")), SecretAccessKey: strings.TrimSpace(f.Get("secret_access_key")),
			SessionToken: strings.TrimSpace(f.Get("session_token"))},
	}
	if err := c.admin.AddConnection(r.Context(), conn); err != nil {
		status, msg := errorStatus(err)
		if status == http.StatusInternalServerError {
			c.fail(w, r, s, err)
			return
		}
		form := &connectionForm{Name: f.Get("name"), Provider: f.Get("provider"), Endpoint: f.Get("endpoint"),
			Settings: settingFields(settings), Providers: c.providerKinds()}
		v := newView(s, "New connection", "connections", form)
		v.Error = msg
		c.render(w, r, status, "connections_new", v)
		return
	}
	c.log.Info("console: connection created", "connection_id", conn.ID, "name", conn.Name)
	http.Redirect(w, r, Prefix+"/connections/"+url.PathEscape(conn.ID), http.StatusSeeOther)
}

// connectionPage is a connection with its edit form.
type connectionPage struct {
	Conn     connRow
	Bedrock  bool
	Endpoint string // as typed, after a refused edit
	Settings []settingField
	Models   []modelRow
	CanTest  bool        // the Test button is on (the console has a gateway)
	Test     *testResult // after the Test button
}

func (c *Console) connection(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderConnection(w, r, s, http.StatusOK, nil, "")
}

// testConnection sends the Test button's tiny request (see testModel)
// for the connection's first model: a connection is tested through a
// model of its own, by that model's alias, as a client would send it.
func (c *Console) testConnection(w http.ResponseWriter, r *http.Request, s *session) {
	if c.gateway == nil {
		c.errorPage(w, r, s, http.StatusNotFound, "The Test button is off: the console has no gateway to send through.")
		return
	}
	ctx := r.Context()
	conn, err := c.admin.ConnectionByIDOrName(ctx, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	models, err := c.admin.ListModels(ctx, llmproxy.ListOptions{})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	var first *llmproxy.Model
	for i := range models {
		if m := &models[i]; m.ConnectionID == conn.ID && (first == nil || m.ID < first.ID) {
			first = m
		}
	}
	if first == nil {
		c.renderConnection(w, r, s, http.StatusConflict, nil, "The connection has no model to test with: add one first.")
		return
	}
	res := c.sendTest(ctx, first)
	res.Message = redact(res.Message, conn.Credentials)
	c.log.Info("console: connection tested", "connection_id", conn.ID, "model_id", first.ID, "status", res.Status, "latency_ms", res.LatencyMS)
	c.renderConnectionTest(w, r, s, http.StatusOK, nil, "", &res)
}

// renderConnection answers the connection page; typed, after a refused
// edit, is the form as typed (secrets left out), and msg the error.
func (c *Console) renderConnection(w http.ResponseWriter, r *http.Request, s *session, status int, typed url.Values, msg string) {
	c.renderConnectionTest(w, r, s, status, typed, msg, nil)
}

// renderConnectionTest is renderConnection with a test's result.
func (c *Console) renderConnectionTest(w http.ResponseWriter, r *http.Request, s *session, status int, typed url.Values, msg string, test *testResult) {
	ctx := r.Context()
	conn, err := c.admin.ConnectionByIDOrName(ctx, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	n, err := c.loadNames(ctx)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	p := &connectionPage{Bedrock: conn.Provider == llmproxy.KindBedrock, Endpoint: conn.Endpoint, Settings: settingFields(conn.Settings),
		CanTest: c.gateway != nil, Test: test}
	if typed != nil {
		p.Endpoint, p.Settings = typed.Get("endpoint"), settingFields(formSettings(typed))
	}
	for _, m := range n.models {
		if m.ConnectionID == conn.ID {
			p.Models = append(p.Models, modelRowOf(&m, n))
		}
	}
	sort.Slice(p.Models, func(i, j int) bool { return p.Models[i].ID < p.Models[j].ID })
	p.Conn = connRowOf(conn, len(p.Models))
	v := newView(s, "Connection "+conn.Name, "connections", p)
	v.Error = msg
	c.render(w, r, status, "connections_show", v)
}

// updateConnection changes what the edit form changed: the endpoint and
// settings when they differ from the stored ones, the API key (and AWS
// keys) when a new one is typed — the old one is never shown.
func (c *Console) updateConnection(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	f := r.PostForm
	cur, err := c.admin.ConnectionByIDOrName(ctx, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	u := connectionUpdate(cur, f)
	if u.IsZero() {
		c.renderConnection(w, r, s, http.StatusBadRequest, f, "Nothing to change: edit a field or type a new API key.")
		return
	}
	if _, err = c.admin.UpdateConnection(ctx, cur.ID, u); err != nil {
		status, msg := errorStatus(err)
		if status == http.StatusInternalServerError {
			c.fail(w, r, s, err)
			return
		}
		c.renderConnection(w, r, s, status, f, msg)
		return
	}
	c.log.Info("console: connection changed", "connection_id", cur.ID, "api_key_rotated", u.APIKey != nil)
	http.Redirect(w, r, Prefix+"/connections/"+url.PathEscape(cur.ID), http.StatusSeeOther)
}

// connectionUpdate is the change the edit form f asks of cur.
func connectionUpdate(cur *llmproxy.Connection, f url.Values) admin.ConnectionUpdate {
	var u admin.ConnectionUpdate
	if e := strings.TrimSpace(f.Get("endpoint")); f.Has("endpoint") && e != cur.Endpoint {
		u.Endpoint = &e
	}
	if k := strings.TrimSpace(f.Get("api_key")); k != "" {
		u.APIKey = &k
	}
	id, secret := strings.TrimSpace(f.Get("access_key_id")), strings.TrimSpace(f.Get("secret_access_key"))
	if id != "" || secret != "" {
		u.AccessKeyID, u.SecretAccessKey = &id, &secret
	}
	if t := strings.TrimSpace(f.Get("session_token")); t != "" {
		u.SessionToken = &t
	}
	for name, v := range formSettings(f) {
		if f.Has(name) && v != cur.Settings[name] {
			if u.Settings == nil {
				u.Settings = map[string]string{}
			}
			u.Settings[name] = v
		}
	}
	return u
}

// deleteConnection deletes it with the CLI's protection: a connection
// that models or keys use is refused, the error naming them.
func (c *Console) deleteConnection(w http.ResponseWriter, r *http.Request, s *session) {
	conn, err := c.admin.DeleteConnection(r.Context(), r.PathValue("id"))
	if err != nil {
		status, msg := errorStatus(err)
		if status == http.StatusConflict {
			c.renderConnection(w, r, s, status, nil, msg)
			return
		}
		c.fail(w, r, s, err)
		return
	}
	c.log.Info("console: connection deleted", "connection_id", conn.ID, "name", conn.Name)
	http.Redirect(w, r, Prefix+"/connections", http.StatusSeeOther)
}

// connectionNames lists the connections' names, for the selects.
func (c *Console) connectionNames(ctx context.Context) ([]string, error) {
	cs, err := c.admin.ListConnections(ctx, llmproxy.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(cs))
	for _, x := range cs {
		out = append(out, x.Name)
	}
	return out, nil
}
