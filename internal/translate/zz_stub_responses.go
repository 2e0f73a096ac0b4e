package translate

import (
	"errors"
	"time"
)

// Stand-ins until the rtrans branch lands. DELETE AT MERGE.

type ResponsesOptions struct {
	Model               string
	Stream              bool
	MaxCompletionTokens bool
	History             []byte
}

type ResponsesRequest struct {
	Chat         []byte
	Input        []byte
	DroppedTools []string
}

type ResponseMeta struct {
	ID        string
	Model     string
	CreatedAt time.Time
}

func ResponsesToChat(body []byte, opts ResponsesOptions) (*ResponsesRequest, error) {
	return nil, errors.New("stub")
}
func ChatToResponsesResponse(chat []byte, r *ResponsesRequest, m ResponseMeta) ([]byte, error) {
	return nil, errors.New("stub")
}
func ChatStreamToResponses(src Stream, r *ResponsesRequest, m ResponseMeta) Stream { return src }
func CheckResponsesEvents(events [][]byte) error                                  { return nil }
