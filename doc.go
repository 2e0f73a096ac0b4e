// Package llmproxy is an LLM gateway as a library: a Gateway is an
// http.Handler that serves OpenAI's API (chat completions, streaming
// included, embeddings and the model list) to virtual keys, and forwards
// each call to the provider connection behind the model alias the client
// names.
//
// The request path is: authenticate the key against an in-memory
// snapshot of the configuration (no database round trip), resolve the
// alias against the key's assignments, apply the assignment's request-rate
// and token limits (a Limiter: local, or shared through Redis), forward to
// the Provider, and append a usage record to a batched ledger off the hot
// path.
//
// The pieces are interfaces with implementations in sub-packages, wired
// explicitly by the caller:
//
//   - Storage: storage/memory, storage/sqlite, storage/postgres,
//     storage/mongodb, all passing storage/storagetest.
//   - Provider: provider/openai (OpenAI, Google's OpenAI-compatible
//     endpoint, any compatible server), provider/azure, provider/bedrock.
//   - Limiter: LocalLimiter (the default) and redislimit.
//
// Observers (metrics, accesslog) are told about every chat and embeddings
// request. What the Gateway does not use lives in packages of its own:
// admin (the validated operations on connections, models and keys that
// the llm-proxy command, the admin API and config apply share), adminapi,
// and secret (sealing provider keys at rest). Errors answered to clients
// are *Error values in OpenAI's shape; storage errors wrap ErrNotFound,
// ErrAlreadyExists, ErrInUse and ErrInvalid.
package llmproxy
