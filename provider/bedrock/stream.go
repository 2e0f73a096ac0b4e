package bedrock

import (
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/go-llm-proxy/llmproxy"
)

// eventSource is what a stream reads: the SDK's ConverseStream event
// stream, or a list of events in tests and benchmarks.
type eventSource interface {
	Events() <-chan types.ConverseStreamOutput
	Err() error
	Close() error
}

var _ eventSource = (*bedrockruntime.ConverseStreamEventStream)(nil)

// stream turns ConverseStream events into chat.completion.chunk events.
// Every chunk carries the same id; the last one holds the usage (from
// Bedrock's metadata event) with empty choices.
type stream struct {
	src      eventSource
	provider string
	prefix   []byte // `{"id":…,"object":…,"created":…,"model":…,`
	buf      []byte
	// tools maps Bedrock content block indexes to OpenAI tool call
	// indexes, which count tool calls only.
	tools    []toolBlock
	started  bool // the role chunk was sent
	stopped  bool // messageStop was seen
	finished bool
}

type toolBlock struct {
	block int32
	index int
}

func newStream(src eventSource, provider, model string, now time.Time) *stream {
	s := &stream{src: src, provider: provider, buf: make([]byte, 0, 256)}
	p := make([]byte, 0, 96+len(model))
	p = append(p, `{"id":`...)
	p = llmproxy.AppendJSONString(p, newID())
	p = append(p, `,"object":"chat.completion.chunk","created":`...)
	p = strconv.AppendInt(p, now.Unix(), 10)
	p = append(p, `,"model":`...)
	p = llmproxy.AppendJSONString(p, model)
	s.prefix = append(p, ',')
	return s
}

// Next returns the next chunk.
func (s *stream) Next() ([]byte, error) {
	for !s.finished {
		ev, ok := <-s.src.Events()
		if !ok {
			s.finished = true
			if err := s.src.Err(); err != nil {
				return nil, streamError(err, s.provider)
			}
			if !s.stopped {
				return nil, llmproxy.UpstreamError("Bedrock ended the stream before the end of the answer", nil)
			}
			return nil, io.EOF
		}
		if b := s.chunk(ev); b != nil {
			return b, nil
		}
	}
	return nil, io.EOF
}

// chunk translates one event; nil means the event has no OpenAI chunk.
func (s *stream) chunk(ev types.ConverseStreamOutput) []byte {
	b := append(s.buf[:0], s.prefix...)
	switch e := ev.(type) {
	case *types.ConverseStreamOutputMemberMessageStart:
		s.started = true
		b = append(b, `"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`...)
	case *types.ConverseStreamOutputMemberContentBlockStart:
		u, ok := e.Value.Start.(*types.ContentBlockStartMemberToolUse)
		if !ok {
			return nil
		}
		i := len(s.tools)
		s.tools = append(s.tools, toolBlock{block: deref32(e.Value.ContentBlockIndex), index: i})
		b = append(b, `"choices":[{"index":0,"delta":{`...)
		b = s.role(b)
		b = append(b, `"tool_calls":[{"index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"id":`...)
		b = llmproxy.AppendJSONString(b, deref(u.Value.ToolUseId))
		b = append(b, `,"type":"function","function":{"name":`...)
		b = llmproxy.AppendJSONString(b, deref(u.Value.Name))
		b = append(b, `,"arguments":""}}]},"logprobs":null,"finish_reason":null}]}`...)
	case *types.ConverseStreamOutputMemberContentBlockDelta:
		switch d := e.Value.Delta.(type) {
		case *types.ContentBlockDeltaMemberText:
			if d.Value == "" {
				return nil
			}
			b = append(b, `"choices":[{"index":0,"delta":{`...)
			b = s.role(b)
			b = append(b, `"content":`...)
			b = llmproxy.AppendJSONString(b, d.Value)
			b = append(b, `},"logprobs":null,"finish_reason":null}]}`...)
		case *types.ContentBlockDeltaMemberToolUse:
			i, ok := s.toolIndex(deref32(e.Value.ContentBlockIndex))
			if !ok || d.Value.Input == nil || *d.Value.Input == "" {
				return nil
			}
			b = append(b, `"choices":[{"index":0,"delta":{"tool_calls":[{"index":`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, `,"function":{"arguments":`...)
			b = llmproxy.AppendJSONString(b, *d.Value.Input)
			b = append(b, `}}]},"logprobs":null,"finish_reason":null}]}`...)
		default:
			// Reasoning, citations: OpenAI's chat format has no place for them.
			return nil
		}
	case *types.ConverseStreamOutputMemberMessageStop:
		s.stopped = true
		b = append(b, `"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"`...)
		b = append(b, finishReason(e.Value.StopReason)...)
		b = append(b, `"}]}`...)
	case *types.ConverseStreamOutputMemberMetadata:
		b = append(b, `"choices":[],"usage":`...)
		b = appendUsage(b, e.Value.Usage)
		b = append(b, '}')
	default:
		return nil
	}
	s.buf = b
	return b
}

// role adds the assistant role to the first chunk if messageStart did not.
func (s *stream) role(b []byte) []byte {
	if s.started {
		return b
	}
	s.started = true
	return append(b, `"role":"assistant",`...)
}

func (s *stream) toolIndex(block int32) (int, bool) {
	for i := len(s.tools) - 1; i >= 0; i-- {
		if s.tools[i].block == block {
			return s.tools[i].index, true
		}
	}
	return 0, false
}

// Close stops reading the stream and releases its connection.
func (s *stream) Close() error {
	s.finished = true
	s.src.Close()
	return nil
}
