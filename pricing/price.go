// Package pricing turns token usage into dollars: the price table of the
// current models of OpenAI, Gemini, Anthropic (direct and on Bedrock),
// Azure OpenAI and the embedding models, embedded in the binary, and the
// cost of a request from its exact usage.
package pricing

import "math"

// Price is what a model costs, in US dollars per million tokens.
type Price struct {
	// Input is the price of input tokens read neither from nor into a
	// prompt cache.
	Input float64 `json:"input"`
	// Output is the price of output tokens (reasoning tokens included).
	Output float64 `json:"output"`
	// CachedInput is the price of input tokens read from the prompt cache
	// (OpenAI's cached_tokens, Anthropic's cache_read_input_tokens).
	CachedInput float64 `json:"cached_input"`
	// CacheWrite is the price of input tokens written to the prompt cache
	// (Anthropic's cache_creation_input_tokens, 5-minute cache), and
	// CacheWrite1h of those written to the 1-hour cache; zero when the
	// provider does not charge them apart.
	CacheWrite   float64 `json:"cache_write,omitempty"`
	CacheWrite1h float64 `json:"cache_write_1h,omitempty"`
}

// Cost is the cost in micro-dollars (millionths of a dollar, rounded to
// the nearest) of a request that used prompt input tokens in all, of
// which cacheRead were read from the prompt cache and cacheWrite written
// to it (as llmproxy.Usage counts them: prompt includes both), and
// completion output tokens. Cache writes are charged at CacheWrite (the
// 5-minute price), or Input when it is zero.
func (p Price) Cost(prompt, completion, cacheRead, cacheWrite int64) int64 {
	uncached := max(prompt-cacheRead-cacheWrite, 0)
	write := p.CacheWrite
	if write == 0 {
		write = p.Input
	}
	// $/Mtok × tokens / 1e6 dollars = $/Mtok × tokens micro-dollars.
	micros := float64(uncached)*p.Input + float64(cacheRead)*p.CachedInput +
		float64(cacheWrite)*write + float64(completion)*p.Output
	return int64(math.Round(micros))
}
