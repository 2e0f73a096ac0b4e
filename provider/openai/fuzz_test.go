package openai_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
)

// events reads every event of an SSE body (a Responses stream when
// responses is set) and the error that ended it. It fails the test on a
// broken contract: an event that is not valid JSON, an error that is
// neither io.EOF nor a 502 *llmproxy.Error (a Responses error event may
// also be a 400 or 429), or more events after the end.
func events(t *testing.T, r io.Reader, responses bool) ([]string, error) {
	t.Helper()
	st := openai.NewEventStream("fuzz", io.NopCloser(r))
	if responses {
		st = openai.NewResponsesEventStream("fuzz", io.NopCloser(r))
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		st.Close() // twice is harmless
		if _, err := st.Next(); err != io.EOF {
			t.Fatalf("Next after Close: %v", err)
		}
	}()
	var out []string
	for {
		d, err := st.Next()
		if err != nil {
			if err != io.EOF {
				var e *llmproxy.Error
				ok := errors.As(err, &e) && e.Message != "" &&
					(e.Status == 502 || responses && (e.Status == 400 || e.Status == 429))
				if !ok {
					t.Fatalf("stream error %v is not a 502 *llmproxy.Error", err)
				}
			}
			if d2, err2 := st.Next(); err2 == nil {
				t.Fatalf("event %q after the end (%v)", d2, err)
			}
			return out, err
		}
		if !json.Valid(d) {
			t.Fatalf("event %q is not valid JSON", d)
		}
		if bytes.Equal(d, []byte("[DONE]")) {
			t.Fatal("[DONE] passed on as an event")
		}
		out = append(out, string(d))
		if len(out) > 1<<16 {
			t.Fatal("too many events")
		}
	}
}

// FuzzEventStream: the SSE relay reads any bytes an upstream may send
// without panicking, yields only valid JSON events, ends with io.EOF or a
// 502 *llmproxy.Error, and reads the same events however the bytes are cut
// into reads.
func FuzzEventStream(f *testing.F) {
	for _, s := range []string{
		"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n",
		"data:{\"a\":1}\r\n\r\ndata: [DONE]\r\n\r\n",
		"event: error\ndata: {\"error\":{\"message\":\"boom\"}}\n\n",
		"data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n",
		"data: {\"choices\":[{\"finish_reason\":\"stop\"}]}\n\n",
		": keep-alive\n\nid: 1\nretry: 10\ndata: {\"a\":\n",
		"data: {\"a\":\ndata: 1}\n\n",
		"data: {not json}\n\n",
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}",
		"",
		"\n\n\n",
		"data: [DONE]",
		"data: \"" + string(bytes.Repeat([]byte("x"), 20000)) + "\"\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkEvents(t, body, false) })
}

// FuzzResponsesEventStream is FuzzEventStream for Responses API streams.
func FuzzResponsesEventStream(f *testing.F) {
	for _, s := range []string{
		"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"error\":null}}\n\n" +
			"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":1}\n\n",
		"event: error\ndata: {\"type\":\"error\",\"code\":\"rate_limit_exceeded\",\"message\":\"slow\",\"param\":null}\n\n",
		"data: {\"type\":\"error\",\"code\":\"invalid_prompt\",\"message\":\"no\",\"param\":\"input\"}\n\n",
		"data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n",
		"data: {\"type\":\"response.failed\",\"response\":{\"error\":{\"code\":\"x\"}}}\n\ndata: {\"type\":\"more\"}\n\n",
		"data: {\"no_type\":1}\n\n",
		"data: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\ndata: [DONE]\n\n",
		"data: {\"type\":3}\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkEvents(t, body, true) })
}

// checkEvents reads body whole, byte by byte and through a failing
// reader, and checks that the events agree.
func checkEvents(t *testing.T, body []byte, responses bool) {
	t.Helper()
	whole, errWhole := events(t, bytes.NewReader(body), responses)
	bytewise, errBytewise := events(t, iotest.OneByteReader(bytes.NewReader(body)), responses)
	if len(whole) != len(bytewise) || (errWhole == io.EOF) != (errBytewise == io.EOF) {
		t.Fatalf("read at once: %d events, %v; byte by byte: %d events, %v", len(whole), errWhole, len(bytewise), errBytewise)
	}
	for i := range whole {
		if whole[i] != bytewise[i] {
			t.Fatalf("event %d: %q vs %q", i, whole[i], bytewise[i])
		}
	}
	// A body cut by a read error behaves like a broken stream.
	cut, err := events(t, iotest.TimeoutReader(bytes.NewReader(body)), responses)
	if err == io.EOF && len(body) > 0 && len(cut) > len(whole) {
		t.Fatalf("a failing reader produced more events (%d) than the whole body (%d)", len(cut), len(whole))
	}
}
