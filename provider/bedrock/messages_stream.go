package bedrock

import (
	"encoding/json"
	"io"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/jsonscan"
)

// chunkSource is what a Messages stream reads: the SDK's
// InvokeModelWithResponseStream event stream, or a list of events in
// tests.
type chunkSource interface {
	Events() <-chan types.ResponseStream
	Err() error
	Close() error
}

var _ chunkSource = (*bedrockruntime.InvokeModelWithResponseStreamEventStream)(nil)

// messageStream relays the Anthropic events of an
// InvokeModelWithResponseStream answer: each chunk's bytes are one
// event's JSON, passed on as they arrive and unchanged.
type messageStream struct {
	src      chunkSource
	provider string
	stopped  bool // message_stop was seen
	finished bool
}

func newMessageStream(src chunkSource, provider string) *messageStream {
	return &messageStream{src: src, provider: provider}
}

// Next returns the next event's JSON. Bedrock's exceptions
// (throttlingException, modelStreamErrorException, …) and Anthropic
// "error" events end the stream as an *llmproxy.Error with Anthropic's
// type; a stream that ends without message_stop is an error too.
func (s *messageStream) Next() ([]byte, error) {
	for !s.finished {
		ev, ok := <-s.src.Events()
		if !ok {
			s.finished = true
			if err := s.src.Err(); err != nil {
				return nil, anthropicError(streamError(err, s.provider))
			}
			if !s.stopped {
				return nil, anthropicError(llmproxy.UpstreamError("Bedrock ended the stream before the end of the answer", nil))
			}
			return nil, io.EOF
		}
		chunk, ok := ev.(*types.ResponseStreamMemberChunk)
		if !ok {
			continue // a member newer than this SDK: nothing to relay
		}
		b := chunk.Value.Bytes
		switch typ, err := eventType(b); {
		case err != nil:
			s.finished = true
			return nil, err
		case typ == "message_stop":
			s.stopped = true
		case typ == "error":
			s.finished = true
			return nil, eventError(b)
		}
		return b, nil
	}
	return nil, io.EOF
}

// Close stops reading the stream and releases its connection.
func (s *messageStream) Close() error {
	s.finished = true
	s.src.Close()
	return nil
}

// eventType returns the "type" of an event's JSON, checking that the
// event is a JSON object with one: clients parse every event's data.
func eventType(b []byte) (string, error) {
	var typ string
	raw := jsonscan.Field(b, "type")
	if !isJSONObject(b) || len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &typ) != nil || typ == "" {
		return "", anthropicError(llmproxy.UpstreamError("Bedrock sent a stream event the gateway cannot read", nil))
	}
	return typ, nil
}

// eventError turns an Anthropic error event
// ({"type":"error","error":{"type":…,"message":…}}) into the error that
// ends the stream, with its type and message.
func eventError(b []byte) error {
	var ev struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	json.Unmarshal(b, &ev) // checked to be an object by eventType
	e := &llmproxy.Error{Type: ev.Error.Type, Message: ev.Error.Message}
	if e.Type == "" {
		e.Type = typeAPIError
	}
	if e.Message == "" {
		e.Message = "the model failed while answering on Bedrock"
	}
	e.Status = statusOf(e.Type)
	return e
}
