package llmproxy_test

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
)

// TestProviderPanic: a provider that panics answers 500 in OpenAI's shape
// with the request id, is logged with it, and the gateway keeps serving.
func TestProviderPanic(t *testing.T) {
	h := newHardEnv(t)
	post := func(model string, stream bool) (*http.Response, string) {
		body := fmt.Sprintf(`{"model":%q,"stream":%v,"messages":[{"role":"user","content":"hi there"}]}`, model, stream)
		req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+keyConn)
		return do(t, req)
	}
	for i := range 3 {
		resp, body := post("boom", i%2 == 1)
		id := resp.Header.Get("X-Request-Id")
		e := checkError(t, resp, body, 500, "internal error (request "+id+")")
		if e.Error.Type != llmproxy.TypeServer {
			t.Errorf("type %q", e.Error.Type)
		}
		if strings.Contains(body, "nil map") || strings.Contains(body, "goroutine") {
			t.Errorf("the panic value or a stack reached the client: %s", body)
		}
		if logs := h.logs.String(); !strings.Contains(logs, "panic serving request") || !strings.Contains(logs, "request_id="+id) {
			t.Errorf("panic of %s not logged with its id:\n%s", id, logs)
		}
		// And the next request is served.
		if resp, body := post("ok", false); resp.StatusCode != 200 {
			t.Fatalf("after a panic: %d %s", resp.StatusCode, body)
		}
	}

	// A panic mid-stream, after the 200 went out: the client's stream
	// ends without [DONE] and the server carries on.
	resp, body := post("boom-stream", true)
	if resp.StatusCode != 200 || strings.Contains(body, "[DONE]") {
		t.Errorf("panic mid-stream: %d %q", resp.StatusCode, body)
	}
	if !strings.Contains(body, "internal error (request "+resp.Header.Get("X-Request-Id")+")") {
		t.Errorf("the client was not told of the panic mid-stream: %q", body)
	}
	if strings.Contains(body, "index out of range") {
		t.Errorf("panic value reached the client: %q", body)
	}
	if resp, body := post("ok", true); resp.StatusCode != 200 || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Errorf("stream after a panic: %d %q", resp.StatusCode, body)
	}
	if n := h.gw.Stats().InFlightStreams; n != 0 {
		t.Errorf("%d streams still counted in flight after the panic", n)
	}
}

// TestPanicUnderLoad: panics in many concurrent requests leave every
// other request served.
func TestPanicUnderLoad(t *testing.T) {
	h := newHardEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			model, want := "ok", 200
			if i%2 == 0 {
				model, want = "boom", 500
			}
			req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/chat/completions",
				strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"x"}]}`))
			req.Header.Set("Authorization", "Bearer "+keyConn)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				errs <- fmt.Errorf("%s: %d, want %d", model, resp.StatusCode, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
