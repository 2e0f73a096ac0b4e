// Package metrics exports a Gateway's requests, tokens, refusals, errors
// and live state as Prometheus metrics.
//
// Wire it in three places:
//
//	reg := prometheus.NewRegistry()
//	m, err := metrics.New(reg)                        // the Observer
//	gw, err := llmproxy.New(llmproxy.Config{…, Observers: []llmproxy.Observer{m}})
//	reg.MustRegister(metrics.NewStatsCollector(gw))   // ledger and streams
//	mux.Handle("/", m.Handler(gw))                    // models, health, other routes
//	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Label values come only from what an admin defined (route, model alias,
// provider kind, connection name, key name) or from small fixed sets
// (status class, limit kind), so the number of series stays bounded
// whatever clients send: a model alias a client makes up is never a label,
// and a key's secret never is either.
package metrics

import (
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/go-llm-proxy/llmproxy"
)

// Namespace prefixes every metric name.
const Namespace = "llmproxy"

// MasterKeyLabel is the key label of requests made with the master key.
const MasterKeyLabel = "(master)"

// Buckets of the latency histograms, in seconds. Whole requests and first
// tokens range from milliseconds to minutes; the gateway's own share
// should stay well under a millisecond.
var (
	LatencyBuckets  = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	OverheadBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1}
)

// Metrics is an llmproxy.Observer that counts requests and tokens and
// times them. It is safe for concurrent use.
type Metrics struct {
	requests       *prometheus.CounterVec   // route, model, provider, status_class
	duration       *prometheus.HistogramVec // route
	upstream       *prometheus.HistogramVec // route, provider
	overhead       *prometheus.HistogramVec // route
	firstToken     *prometheus.HistogramVec // model
	tokens         *prometheus.CounterVec   // key, model, type
	cost           *prometheus.CounterVec   // key, model
	unknownCost    *prometheus.CounterVec   // model
	refusals       *prometheus.CounterVec   // kind
	upstreamErrors *prometheus.CounterVec   // connection
}

var _ llmproxy.Observer = (*Metrics)(nil)

// New creates the request metrics and registers them with reg (nil:
// prometheus.DefaultRegisterer).
func New(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "requests_total",
			Help: "Requests answered, by route, model alias, provider kind and status class (2xx, 4xx, 5xx). Model and provider are empty until the alias was found valid for the key.",
		}, []string{"route", "model", "provider", "status_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "request_duration_seconds",
			Help:    "Whole request duration, until the last byte of a stream.",
			Buckets: LatencyBuckets,
		}, []string{"route"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "upstream_duration_seconds",
			Help:    "Time from the upstream call to its answer: the whole body of a non-streaming request, the headers of a stream.",
			Buckets: LatencyBuckets,
		}, []string{"route", "provider"}),
		overhead: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "gateway_duration_seconds",
			Help:    "Time the gateway added to a non-streaming request that reached an upstream: its whole duration less the upstream call.",
			Buckets: OverheadBuckets,
		}, []string{"route"}),
		firstToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "time_to_first_token_seconds",
			Help:    "Time from the request's arrival to the first event of a stream.",
			Buckets: LatencyBuckets,
		}, []string{"model"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "tokens_total",
			Help: "Tokens used, by virtual key name, model alias and type: prompt (every input token, cached ones included), completion, and cache_read and cache_write (the prompt tokens read from or written to the upstream's prompt cache); estimated counts included.",
		}, []string{"key", "model", "type"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "cost_usd_total",
			Help: "What requests cost in US dollars, by virtual key name and model alias, from their usage and the model's price; requests of models without a known price are counted in unknown_cost_requests_total instead.",
		}, []string{"key", "model"}),
		unknownCost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "unknown_cost_requests_total",
			Help: "Requests that used tokens of a model without a known price (no price table entry and no override), by model alias.",
		}, []string{"model"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "limit_refusals_total",
			Help: "Requests refused by a limit, by kind: requests (rate), tokens or budget (dollars).",
		}, []string{"kind"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "upstream_errors_total",
			Help: "Requests answered with an upstream failure (5xx, 429, unreachable, broken stream), by connection name.",
		}, []string{"connection"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.upstream, m.overhead, m.firstToken, m.tokens, m.cost, m.unknownCost, m.refusals, m.upstreamErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Every kind shows as 0 from the start, so that rate() works at once.
	m.refusals.WithLabelValues("requests")
	m.refusals.WithLabelValues("tokens")
	m.refusals.WithLabelValues("budget")
	return m, nil
}

// ObserveRequest counts and times one answered request.
func (m *Metrics) ObserveRequest(info *llmproxy.RequestInfo) {
	route := label(info.Route)
	model := label(info.Model)
	provider := label(info.Provider)
	m.requests.WithLabelValues(route, model, provider, statusClass(info.Status)).Inc()
	m.duration.WithLabelValues(route).Observe(info.Total.Seconds())
	if info.Upstream > 0 {
		m.upstream.WithLabelValues(route, provider).Observe(info.Upstream.Seconds())
		if !info.Streamed {
			m.overhead.WithLabelValues(route).Observe(max(info.Total-info.Upstream, 0).Seconds())
		}
	}
	if info.FirstToken > 0 && model != "" {
		m.firstToken.WithLabelValues(model).Observe(info.FirstToken.Seconds())
	}
	if u := info.Usage; (u.PromptTokens > 0 || u.CompletionTokens > 0) && model != "" {
		key := MasterKeyLabel
		if info.KeyID != "" {
			key = label(info.KeyName)
		}
		if u.PromptTokens > 0 {
			m.tokens.WithLabelValues(key, model, "prompt").Add(float64(u.PromptTokens))
		}
		if u.CompletionTokens > 0 {
			m.tokens.WithLabelValues(key, model, "completion").Add(float64(u.CompletionTokens))
		}
		if u.CacheReadTokens > 0 {
			m.tokens.WithLabelValues(key, model, "cache_read").Add(float64(u.CacheReadTokens))
		}
		if u.CacheWriteTokens > 0 {
			m.tokens.WithLabelValues(key, model, "cache_write").Add(float64(u.CacheWriteTokens))
		}
		if info.CostKnown {
			m.cost.WithLabelValues(key, model).Add(float64(info.CostMicros) / 1e6)
		} else {
			m.unknownCost.WithLabelValues(model).Inc()
		}
	}
	if info.Refused != "" {
		kind := "tokens"
		if info.Refused == "requests" || info.Refused == "budget" {
			kind = info.Refused
		}
		m.refusals.WithLabelValues(kind).Inc()
	}
	if info.UpstreamError {
		m.upstreamErrors.WithLabelValues(label(info.Connection)).Inc()
	}
}

// Handler returns next (normally the Gateway) wrapped so that the
// requests the Gateway does not report to its Observers — GET /v1/models,
// /healthz, unknown paths, wrong methods — are counted in
// requests_total and request_duration_seconds too, with empty model and
// provider. Chat and embeddings requests pass straight through: the
// Observer counts those.
func (m *Metrics) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, observed := llmproxy.RouteOf(r.Method, r.URL.Path)
		if observed {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &llmproxy.StatusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		m.requests.WithLabelValues(route, "", "", statusClass(sw.Status())).Inc()
		m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

var statusClasses = [...]string{"1xx", "1xx", "2xx", "3xx", "4xx", "5xx"}

// statusClass is "2xx", "4xx" … for a status; 499 (client gone) is 4xx.
func statusClass(status int) string {
	c := status / 100
	if c < 1 || c > 5 {
		return "other"
	}
	return statusClasses[c]
}

// label makes s safe as a label value: Prometheus refuses invalid UTF-8.
func label(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// StatsSource is what NewStatsCollector reads: a *llmproxy.Gateway.
type StatsSource interface {
	Stats() llmproxy.Stats
}

// NewStatsCollector returns a collector of src's live state, read at each
// scrape: streams in flight and the usage ledger's queue, writes, drops
// (which must stay 0), failures and last flush time. Register it once.
func NewStatsCollector(src StatsSource) prometheus.Collector {
	return &statsCollector{src: src}
}

type statsCollector struct {
	src StatsSource
}

var (
	descStreams = prometheus.NewDesc(Namespace+"_inflight_streams",
		"Streams being relayed now.", nil, nil)
	descPending = prometheus.NewDesc(Namespace+"_ledger_pending",
		"Usage records waiting to be written (the ledger's queue depth).", nil, nil)
	descWritten = prometheus.NewDesc(Namespace+"_ledger_written_total",
		"Usage records written since start.", nil, nil)
	descDropped = prometheus.NewDesc(Namespace+"_ledger_dropped_total",
		"Usage records lost since start (the store was unreachable past shutdown). Must stay 0.", nil, nil)
	descFailures = prometheus.NewDesc(Namespace+"_ledger_write_failures_total",
		"Failed batch writes of usage records (each is retried).", nil, nil)
	descFlush = prometheus.NewDesc(Namespace+"_ledger_last_flush_seconds",
		"How long the last batch write of usage records took.", nil, nil)
	descAlerts = prometheus.NewDesc(Namespace+"_budget_alerts_total",
		"Budget alert deliveries (one per threshold crossing and webhook) enqueued by this process.", nil, nil)
	descAlertsDelivered = prometheus.NewDesc(Namespace+"_budget_alerts_delivered_total",
		"Budget alert deliveries this process delivered.", nil, nil)
	descAlertFailures = prometheus.NewDesc(Namespace+"_budget_alert_failures_total",
		"Failed budget alert deliveries (each is retried with backoff).", nil, nil)
)

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStreams, descPending, descWritten, descDropped, descFailures, descFlush,
		descAlerts, descAlertsDelivered, descAlertFailures} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Stats()
	ch <- prometheus.MustNewConstMetric(descStreams, prometheus.GaugeValue, float64(s.InFlightStreams))
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(s.LedgerPending))
	ch <- prometheus.MustNewConstMetric(descWritten, prometheus.CounterValue, float64(s.LedgerWritten))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(s.LedgerDropped))
	ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(s.LedgerFailures))
	ch <- prometheus.MustNewConstMetric(descFlush, prometheus.GaugeValue, s.LedgerLastFlush.Seconds())
	ch <- prometheus.MustNewConstMetric(descAlerts, prometheus.CounterValue, float64(s.AlertsEnqueued))
	ch <- prometheus.MustNewConstMetric(descAlertsDelivered, prometheus.CounterValue, float64(s.AlertsDelivered))
	ch <- prometheus.MustNewConstMetric(descAlertFailures, prometheus.CounterValue, float64(s.AlertFailures))
}
