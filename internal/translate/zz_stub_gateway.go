package translate

import "errors"

// Stand-ins until the tochat branch lands. DELETE AT MERGE.

type ChatOptions struct {
	Model               string
	Stream              bool
	MaxCompletionTokens bool
}

type RequestError struct{ Param, Message string }

func (e *RequestError) Error() string { return e.Message }

func MessagesToChat(body []byte, opts ChatOptions) ([]byte, error) { return nil, errors.New("stub") }
func ChatToMessagesResponse(chat []byte, model string) ([]byte, error) {
	return nil, errors.New("stub")
}
func ChatStreamToMessages(src Stream, model string) Stream { return src }
func EstimateInputTokens(body []byte) (int64, error)       { return int64(len(body)/3 + 1), nil }
