package bedrocktest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"

	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
)

// client is the AWS SDK's Bedrock client for srv, without retries.
func client(srv *bedrocktest.Server) *bedrockruntime.Client {
	return bedrockruntime.New(bedrockruntime.Options{
		Region: srv.Region, BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1, HTTPClient: srv.Client(),
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKeyID, srv.SecretAccessKey, ""),
	})
}

func start(t *testing.T) *bedrocktest.Server {
	srv := bedrocktest.NewServer()
	srv.SecretAccessKey = "s3cret"
	t.Cleanup(srv.Close)
	return srv
}

// TestChecks: the fake refuses what Bedrock refuses in an Anthropic
// body, with a ValidationException the SDK decodes.
func TestChecks(t *testing.T) {
	srv := start(t)
	c := client(srv)
	for body, want := range map[string]string{
		`{"anthropic_version":"bedrock-2023-05-31","model":"x","max_tokens":5,"messages":[]}`:                               "extraneous key [model]",
		`{"anthropic_version":"bedrock-2023-05-31","stream":true,"max_tokens":5,"messages":[]}`:                             "extraneous key [stream]",
		`{"anthropic_version":"2023-06-01","max_tokens":5,"messages":[]}`:                                                   "anthropic_version",
		`{"anthropic_version":"bedrock-2023-05-31","messages":[]}`:                                                          "required key [max_tokens]",
		`{"anthropic_version":"bedrock-2023-05-31","max_tokens":5}`:                                                         "required key [messages]",
		`{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["claude-code-20250219"],"max_tokens":5,"messages":[]}`: "invalid beta flag",
	} {
		_, err := c.InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{ModelId: aws.String("anthropic.claude-3-haiku-20240307-v1:0"), Body: []byte(body), ContentType: aws.String("application/json")})
		var ve *types.ValidationException
		if !errors.As(err, &ve) || !strings.Contains(ve.ErrorMessage(), want) {
			t.Errorf("%s: err = %v, want a ValidationException about %s", body, err, want)
		}
	}
	if n := len(srv.Calls()); n != 6 {
		t.Errorf("%d calls recorded, want 6", n)
	}
}

// TestCountTokensModelIDs: CountTokens takes model ids, and refuses
// inference profiles and ARNs as Bedrock does.
func TestCountTokensModelIDs(t *testing.T) {
	srv := start(t)
	c := client(srv)
	body := []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":1,"system":"be brief","messages":[{"role":"user","content":"one two three"}]}`)
	for model, ok := range map[string]bool{
		"anthropic.claude-3-haiku-20240307-v1:0":                                             true,
		"us.anthropic.claude-3-haiku-20240307-v1:0":                                          false,
		"arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0": false,
	} {
		out, err := c.CountTokens(context.Background(), &bedrockruntime.CountTokensInput{ModelId: aws.String(model),
			Input: &types.CountTokensInputMemberInvokeModel{Value: types.InvokeModelTokensRequest{Body: body}}})
		if ok && (err != nil || *out.InputTokens != 5) {
			t.Errorf("%s: %v, %v", model, out, err)
		}
		var api smithy.APIError
		if !ok && (!errors.As(err, &api) || api.ErrorCode() != "ValidationException" || !strings.Contains(api.ErrorMessage(), "counting tokens")) {
			t.Errorf("%s: err = %v, want Bedrock's refusal", model, err)
		}
	}
}

// TestStreamFraming: the SDK's decoder reads the fake's chunks and
// exceptions.
func TestStreamFraming(t *testing.T) {
	srv := start(t)
	events := bedrocktest.MessageEvents(bedrocktest.TextMessage("hello there", 2, 2))
	srv.Messages = func(*bedrocktest.MessagesCall) *bedrocktest.MessagesReply {
		return &bedrocktest.MessagesReply{Events: append(events[:3:3], bedrocktest.Exception("throttlingException", "Too many tokens"))}
	}
	out, err := client(srv).InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String("anthropic.claude-3-haiku-20240307-v1:0"), ContentType: aws.String("application/json"),
		Body: []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	s := out.GetStream()
	defer s.Close()
	var got []string
	for ev := range s.Events() {
		got = append(got, string(ev.(*types.ResponseStreamMemberChunk).Value.Bytes))
	}
	for i := range got {
		if got[i] != string(events[i].Data) {
			t.Errorf("chunk %d = %s, want %s", i, got[i], events[i].Data)
		}
	}
	var te *types.ThrottlingException
	if len(got) != 3 || !errors.As(s.Err(), &te) || te.ErrorMessage() != "Too many tokens" {
		t.Errorf("%d chunks, then %v", len(got), s.Err())
	}
}

// ExampleServer_messages scripts the fake as an end-to-end test of a
// coding agent would: a tool_use for Read, then a text answer once the
// tool_result arrives.
func ExampleServer_messages() {
	srv := bedrocktest.NewServer()
	defer srv.Close()
	srv.Messages = func(c *bedrocktest.MessagesCall) *bedrocktest.MessagesReply {
		if c.Operation == bedrocktest.OpCountTokens {
			return &bedrocktest.MessagesReply{InputTokens: 100}
		}
		if r := c.Request.ToolResults(); len(r) > 0 {
			return &bedrocktest.MessagesReply{Message: bedrocktest.TextMessage("The file says: "+r[0].Content.Text(), 100, 8)}
		}
		return &bedrocktest.MessagesReply{Message: bedrocktest.ToolUseMessage("toolu_01", "Read", map[string]string{"file_path": "/tmp/notes.txt"}, 100, 20)}
	}
	// A stream call gets MessageEvents of the Message; an invoke call
	// the Message itself.
	for _, ev := range bedrocktest.MessageEvents(bedrocktest.ToolUseMessage("toolu_01", "Read", map[string]string{"file_path": "/tmp/notes.txt"}, 100, 20)) {
		var e struct {
			Type string `json:"type"`
		}
		json.Unmarshal(ev.Data, &e)
		fmt.Println(e.Type)
	}
	// Output:
	// message_start
	// content_block_start
	// content_block_delta
	// content_block_delta
	// content_block_stop
	// message_delta
	// message_stop
}
