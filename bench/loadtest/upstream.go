package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// upstreamConfig shapes the fake upstream's answers.
type upstreamConfig struct {
	Latency   time.Duration // waited before answering (both kinds)
	RespBytes int           // size of a non-streaming answer, about
	Chunks    int           // content chunks per stream
	ChunkGap  time.Duration // wait between stream chunks
}

// fakeUpstream is an OpenAI-compatible upstream served by net/http, as a
// real provider's front end would be. A request whose model is "hold"
// streams one chunk, then waits until /control/release (the idle-streams
// scenario).
type fakeUpstream struct {
	cfg       upstreamConfig
	answer    []byte
	chunk     []byte
	usage     []byte
	mu        sync.Mutex
	release   chan struct{}
	holding   atomic.Int64
	streaming atomic.Int64
	served    atomic.Int64
}

func newFakeUpstream(cfg upstreamConfig) *fakeUpstream {
	const head = `{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"fake","choices":[{"index":0,"message":{"role":"assistant","content":"`
	const tail = `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}`
	n := max(cfg.RespBytes-len(head)-len(tail), 1)
	answer := head + strings.Repeat("a", n) + tail
	return &fakeUpstream{
		cfg:     cfg,
		answer:  []byte(answer),
		chunk:   []byte(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"fake","choices":[{"index":0,"delta":{"content":"word "},"finish_reason":null}]}` + "\n\n"),
		usage:   []byte(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"fake","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32}}` + "\n\n"),
		release: make(chan struct{}),
	}
}

var (
	streamTrue   = []byte(`"stream":true`)
	holdModel    = []byte(`"model":"hold"`)
	includeUsage = []byte(`"include_usage":true`)
	finalChunk   = []byte(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"fake","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n")
	doneEvent    = []byte("data: [DONE]\n\n")
)

func (u *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/control/release":
		u.mu.Lock()
		close(u.release)
		u.release = make(chan struct{})
		u.mu.Unlock()
		return
	case "/control/stats":
		fmt.Fprintf(w, `{"holding":%d,"streaming":%d,"served":%d}`+"\n", u.holding.Load(), u.streaming.Load(), u.served.Load())
		return
	case "/v1/chat/completions", "/chat/completions":
	case "/v1/messages":
		u.messages(w, r)
		return
	case "/v1/responses":
		u.responses(w, r)
		return
	default:
		http.NotFound(w, r)
		return
	}
	var buf [4096]byte
	body := buf[:0]
	for {
		n, err := r.Body.Read(buf[len(body):cap(body)])
		body = body[:len(body)+n]
		if err != nil || len(body) == cap(body) {
			break
		}
	}
	io.Copy(io.Discard, r.Body)
	u.served.Add(1)
	if u.cfg.Latency > 0 {
		time.Sleep(u.cfg.Latency)
	}
	h := w.Header()
	if !bytes.Contains(body, streamTrue) {
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(u.answer))}
		w.Write(u.answer)
		return
	}
	u.streaming.Add(1)
	defer u.streaming.Add(-1)
	h["Content-Type"] = []string{"text/event-stream"}
	f := w.(http.Flusher)
	if bytes.Contains(body, holdModel) {
		u.mu.Lock()
		release := u.release
		u.mu.Unlock()
		u.holding.Add(1)
		w.Write(u.chunk)
		f.Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		case <-time.After(10 * time.Minute):
		}
		u.holding.Add(-1)
	} else {
		for i := range u.cfg.Chunks {
			if i > 0 && u.cfg.ChunkGap > 0 {
				time.Sleep(u.cfg.ChunkGap)
			}
			if _, err := w.Write(u.chunk); err != nil {
				return
			}
			f.Flush()
		}
	}
	w.Write(finalChunk)
	if bytes.Contains(body, includeUsage) {
		w.Write(u.usage)
	}
	w.Write(doneEvent)
}

// The answers of Anthropic's Messages API: a Message, and a stream of as
// many text deltas as a chat stream has chunks, in Anthropic's framing
// (an event line, then the data).
var (
	msgAnswer = []byte(`{"id":"msg_bench","type":"message","role":"assistant","model":"fake","content":[{"type":"text","text":"Hello there, a short sentence."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":9}}`)
	msgStart  = []byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"fake\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	msgDelta = []byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"word \"}}\n\n")
	msgEnd   = []byte("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":20}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
)

// messages answers POST /v1/messages as Anthropic's API does; the stream
// starts with message_start and the first block together, as Anthropic
// sends them.
func (u *fakeUpstream) messages(w http.ResponseWriter, r *http.Request) {
	u.answerDialect(w, r, msgAnswer, msgStart, func(int) []byte { return msgDelta }, msgEnd)
}

// answerDialect answers a Messages or Responses request: answer as JSON,
// or a stream of head, one delta(i) per chunk (each flushed), then tail.
func (u *fakeUpstream) answerDialect(w http.ResponseWriter, r *http.Request, answer, head []byte, delta func(i int) []byte, tail []byte) {
	body, _ := io.ReadAll(r.Body)
	u.served.Add(1)
	if u.cfg.Latency > 0 {
		time.Sleep(u.cfg.Latency)
	}
	h := w.Header()
	if !bytes.Contains(body, streamTrue) {
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(answer))}
		w.Write(answer)
		return
	}
	u.streaming.Add(1)
	defer u.streaming.Add(-1)
	h["Content-Type"] = []string{"text/event-stream"}
	f := w.(http.Flusher)
	w.Write(head)
	for i := range u.cfg.Chunks {
		if i > 0 && u.cfg.ChunkGap > 0 {
			time.Sleep(u.cfg.ChunkGap)
		}
		if _, err := w.Write(delta(i)); err != nil {
			return
		}
		f.Flush()
	}
	w.Write(tail)
}

// The answers of OpenAI's Responses API: a response object, and a stream
// of as many output_text deltas as a chat stream has chunks, each event
// with its sequence number.
var (
	respAnswer = []byte(`{"id":"resp_bench","object":"response","created_at":1700000000,"status":"completed","model":"fake","output":[{"id":"msg_bench","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hello there, a short sentence.","annotations":[]}]}],"usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":0},"output_tokens":9,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":21}}`)
	respHead   = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_bench\",\"object\":\"response\",\"created_at\":1700000000,\"status\":\"in_progress\",\"model\":\"fake\",\"output\":[]}}\n\n" +
		"event: response.in_progress\ndata: {\"type\":\"response.in_progress\",\"sequence_number\":1,\"response\":{\"id\":\"resp_bench\",\"object\":\"response\",\"created_at\":1700000000,\"status\":\"in_progress\",\"model\":\"fake\",\"output\":[]}}\n\n" +
		"event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":2,\"output_index\":0,\"item\":{\"id\":\"msg_bench\",\"type\":\"message\",\"status\":\"in_progress\",\"role\":\"assistant\",\"content\":[]}}\n\n" +
		"event: response.content_part.added\ndata: {\"type\":\"response.content_part.added\",\"sequence_number\":3,\"item_id\":\"msg_bench\",\"output_index\":0,\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"\",\"annotations\":[]}}\n\n"
	respDelta = "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":%d,\"item_id\":\"msg_bench\",\"output_index\":0,\"content_index\":0,\"delta\":\"word \",\"logprobs\":[]}\n\n"
	respTail  = "event: response.output_text.done\ndata: {\"type\":\"response.output_text.done\",\"sequence_number\":%d,\"item_id\":\"msg_bench\",\"output_index\":0,\"content_index\":0,\"text\":\"%s\",\"logprobs\":[]}\n\n" +
		"event: response.content_part.done\ndata: {\"type\":\"response.content_part.done\",\"sequence_number\":%d,\"item_id\":\"msg_bench\",\"output_index\":0,\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"%s\",\"annotations\":[]}}\n\n" +
		"event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"sequence_number\":%d,\"output_index\":0,\"item\":{\"id\":\"msg_bench\",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"%s\",\"annotations\":[]}]}}\n\n" +
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":%d,\"response\":{\"id\":\"resp_bench\",\"object\":\"response\",\"created_at\":1700000000,\"status\":\"completed\",\"model\":\"fake\",\"output\":[{\"id\":\"msg_bench\",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"%s\",\"annotations\":[]}]}],\"usage\":{\"input_tokens\":12,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":20,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":32}}}\n\n"
)

// responses answers POST /v1/responses as OpenAI's API does.
func (u *fakeUpstream) responses(w http.ResponseWriter, r *http.Request) {
	const first = 4 // the sequence number of the first delta
	n := u.cfg.Chunks
	text := strings.Repeat("word ", n)
	tail := fmt.Appendf(nil, respTail, first+n, text, first+n+1, text, first+n+2, text, first+n+3, text)
	u.answerDialect(w, r, respAnswer, []byte(respHead), func(i int) []byte { return fmt.Appendf(nil, respDelta, first+i) }, tail)
}

// upstreamStats is /control/stats.
type upstreamStats struct {
	Holding   int64 `json:"holding"`
	Streaming int64 `json:"streaming"`
	Served    int64 `json:"served"`
}

// runUpstream is the "upstream" subcommand: the fake upstream as its own
// process, so that its CPU is measured apart and it competes with the
// gateway only as a real upstream would. It prints its address on the
// first line of stdout.
func runUpstream(args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	tlsAddr := fs.String("tls-addr", "", "also serve HTTPS with HTTP/2 here (needs -tls-cert and -tls-key)")
	certFile := fs.String("tls-cert", "", "PEM certificate for -tls-addr")
	keyFile := fs.String("tls-key", "", "PEM key for -tls-addr")
	var cfg upstreamConfig
	fs.DurationVar(&cfg.Latency, "latency", 0, "wait before answering")
	fs.IntVar(&cfg.RespBytes, "resp-bytes", 400, "size of a non-streaming answer in bytes")
	fs.IntVar(&cfg.Chunks, "chunks", 20, "content chunks per stream")
	fs.DurationVar(&cfg.ChunkGap, "chunk-gap", 0, "wait between stream chunks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := loopbackOnly(*addr); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	u := newFakeUpstream(cfg)
	srv := &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second}
	var tlsSrv *http.Server
	var tlsLn net.Listener
	if *tlsAddr != "" {
		if err := loopbackOnly(*tlsAddr); err != nil {
			return err
		}
		if tlsLn, err = net.Listen("tcp", *tlsAddr); err != nil {
			return err
		}
		// Many streams per connection, as a provider's front end allows.
		tlsSrv = &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second,
			HTTP2: &http.HTTP2Config{MaxConcurrentStreams: 1000}}
		fmt.Println(ln.Addr().String(), tlsLn.Addr().String())
	} else {
		fmt.Println(ln.Addr().String())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
		if tlsSrv != nil {
			tlsSrv.Close()
		}
	}()
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if tlsSrv != nil {
		go func() { errc <- tlsSrv.ServeTLS(tlsLn, *certFile, *keyFile) }()
	}
	if err := <-errc; err != http.ErrServerClosed {
		return err
	}
	return nil
}

// loopbackOnly refuses any address but 127.0.0.1.
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host != "127.0.0.1" {
		return fmt.Errorf("address %q: only 127.0.0.1 is allowed", addr)
	}
	return nil
}

func decodeStats(b []byte) (upstreamStats, error) {
	var s upstreamStats
	err := json.Unmarshal(b, &s)
	return s, err
}
