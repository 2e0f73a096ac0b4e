package translate

// Stand-ins for the Chat → Messages translation, written in another
// branch at the same time, so that provider/anthropic compiles here. The
// lead deletes this file when merging; every function fails with an error
// containing "stub", which provider/anthropic's tests look for to skip.

import "errors"

// MessagesOptions are the choices ChatToMessages cannot read from the body.
type MessagesOptions struct {
	Model            string
	Stream           bool
	DefaultMaxTokens int64
}

// RequestError is a chat request that cannot be translated.
type RequestError struct{ Param, Message string }

func (e *RequestError) Error() string { return e.Message }

// EventError is an Anthropic error event met in a stream.
type EventError struct{ Type, Message string }

func (e *EventError) Error() string { return e.Type + ": " + e.Message }

var errStub = errors.New("translate stub: not implemented in this branch")

// ChatToMessages is a stub.
func ChatToMessages(body []byte, opts MessagesOptions) ([]byte, error) { return nil, errStub }

// MessagesToChatResponse is a stub.
func MessagesToChatResponse(msg []byte, model string) ([]byte, error) { return nil, errStub }

// MessagesStreamToChat is a stub.
func MessagesStreamToChat(src Stream, model string) Stream { return stubStream{src} }

type stubStream struct{ src Stream }

func (s stubStream) Next() ([]byte, error) { return nil, errStub }
func (s stubStream) Close() error          { return s.src.Close() }
