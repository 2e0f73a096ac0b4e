package bedrock

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/go-llm-proxy/llmproxy"
)

// Limits of an embeddings request.
const (
	maxEmbeddingInputs = 2048 // OpenAI's own limit
	embeddingWorkers   = 4    // InvokeModel calls in flight per request
	maxRequestIDs      = 16   // Bedrock request ids passed on as X-Request-Id
)

type embeddingsRequest struct {
	Input          json.RawMessage `json:"input"`
	Dimensions     *float64        `json:"dimensions"`
	EncodingFormat string          `json:"encoding_format"`
}

// titanResponse is the part of a Titan text embeddings answer we use.
type titanResponse struct {
	Embedding           json.RawMessage `json:"embedding"`
	InputTextTokenCount int64           `json:"inputTextTokenCount"`
}

// Embeddings serves OpenAI embeddings with a Titan text embeddings model
// (amazon.titan-embed-text-v2:0, amazon.titan-embed-text-v1): one
// InvokeModel call per input, a few at a time. The answer's X-Request-Id
// lists Bedrock's request ids of the calls, in input order and comma
// separated (the first 16 of them), as a chat answer carries its one.
func (p *Provider) Embeddings(ctx context.Context, req *llmproxy.Request) (*llmproxy.Response, error) {
	var er embeddingsRequest
	if err := json.Unmarshal(req.Body, &er); err != nil {
		return nil, decodeError(err)
	}
	if m := req.RemoteModel; strings.HasPrefix(m, "cohere.") || strings.Contains(m, ".cohere.") || strings.Contains(m, "titan-embed-image") {
		return nil, llmproxy.BadRequest("model", "this gateway serves Bedrock embeddings with Titan text embedding models only")
	}
	inputs, err := embeddingInputs(er.Input)
	if err != nil {
		return nil, err
	}
	var dims int
	if d := er.Dimensions; d != nil {
		if *d != math.Trunc(*d) || *d < 1 || *d > 1<<16 {
			return nil, llmproxy.BadRequest("dimensions", "dimensions must be a positive integer")
		}
		dims = int(*d)
	}
	b64 := false
	switch er.EncodingFormat {
	case "", "float":
	case "base64":
		b64 = true
	default:
		return nil, llmproxy.BadRequest("encoding_format", "encoding_format must be float or base64, got %q", er.EncodingFormat)
	}

	results := make([]titanResponse, len(inputs))
	ids := make([]string, min(len(inputs), maxRequestIDs))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		next     = make(chan int)
	)
	for w := 0; w < min(embeddingWorkers, len(inputs)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				var id *string
				if i < len(ids) {
					id = &ids[i]
				}
				if err := p.embed(ctx, req.RemoteModel, inputs[i], dims, &results[i], id); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := range inputs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, p.upstreamError(firstErr, req.Model)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	var tokens int64
	b := make([]byte, 0, 64+len(inputs)*1024)
	b = append(b, `{"object":"list","data":[`...)
	for i := range results {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"embedding":`...)
		if b, err = appendEmbedding(b, results[i].Embedding, b64); err != nil {
			return nil, llmproxy.UpstreamError("Bedrock answered with an embedding the gateway cannot read", err)
		}
		b = append(b, '}')
		tokens += results[i].InputTextTokenCount
	}
	b = append(b, `],"model":`...)
	b = llmproxy.AppendJSONString(b, req.Model)
	b = append(b, `,"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, tokens, 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, tokens, 10)
	b = append(b, "}}"...)
	return &llmproxy.Response{Header: requestIDsHeader(ids), Body: b}, nil
}

// requestIDsHeader is the X-Request-Id of the calls with ids, or nil.
func requestIDsHeader(ids []string) http.Header {
	ids = slices.DeleteFunc(ids, func(id string) bool { return id == "" })
	if len(ids) == 0 {
		return nil
	}
	return http.Header{"X-Request-Id": {strings.Join(ids, ", ")}}
}

// embed embeds text with one InvokeModel call into out, and sets *id (if
// id is not nil) to Bedrock's id of the call.
func (p *Provider) embed(ctx context.Context, model, text string, dims int, out *titanResponse, id *string) error {
	body := make([]byte, 0, len(text)+48)
	body = append(body, `{"inputText":`...)
	body = llmproxy.AppendJSONString(body, text)
	if dims > 0 {
		body = append(body, `,"dimensions":`...)
		body = strconv.AppendInt(body, int64(dims), 10)
	}
	body = append(body, '}')
	res, err := p.client.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{
		ModelId:     aws.String(model),
		Body:        body,
		ContentType: aws.String("application/json"),
		Accept:      aws.String("application/json"),
	})
	if err != nil {
		return err
	}
	if id != nil {
		*id, _ = awsmiddleware.GetRequestIDMetadata(res.ResultMetadata)
	}
	if err := json.Unmarshal(res.Body, out); err != nil || len(out.Embedding) == 0 || out.Embedding[0] != '[' {
		return llmproxy.UpstreamError("Bedrock answered without an embedding; is the model a Titan text embeddings model?", err)
	}
	return nil
}

// embeddingInputs reads input: a string or an array of strings. Token
// arrays are OpenAI-specific and cannot be sent to Titan.
func embeddingInputs(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	var inputs []string
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil, llmproxy.BadRequest("input", "you must provide an input parameter")
	case raw[0] == '"':
		var s string
		json.Unmarshal(raw, &s)
		inputs = []string{s}
	case json.Unmarshal(raw, &inputs) != nil:
		return nil, llmproxy.BadRequest("input", "input must be a string or an array of strings for Bedrock embedding models (token arrays are not supported)")
	}
	if len(inputs) == 0 {
		return nil, llmproxy.BadRequest("input", "input must not be empty")
	}
	if len(inputs) > maxEmbeddingInputs {
		return nil, llmproxy.BadRequest("input", "input may hold at most %d strings", maxEmbeddingInputs)
	}
	for i, s := range inputs {
		if blank(s) {
			return nil, llmproxy.BadRequest("input", "input[%d] is empty; Titan cannot embed an empty text", i)
		}
	}
	return inputs, nil
}

// appendEmbedding appends a Titan embedding (a JSON array of numbers) as
// OpenAI sends it: the array itself, or base64 of little-endian float32s.
func appendEmbedding(b []byte, raw json.RawMessage, b64 bool) ([]byte, error) {
	if !b64 {
		var c bytes.Buffer
		if err := json.Compact(&c, raw); err != nil {
			return nil, err
		}
		return append(b, c.Bytes()...), nil
	}
	var v []float32
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	bin := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(bin[4*i:], math.Float32bits(f))
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, bin)
	return append(b, '"'), nil
}
