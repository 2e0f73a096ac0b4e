package node_test

import (
	"regexp"
	"testing"
)

// The Vercel AI SDK's openai.responses(…) models: generateText and
// streamText, plain and with a tool the SDK runs, through each route.
func TestVercelAISDK(t *testing.T) {
	install(t)
	g := newResponsesGateway(t)
	want := []*regexp.Regexp{
		regexp.MustCompile(`^generate: You said: Say hello \(in: [1-9][0-9]*, out: [1-9][0-9]*\)$`),
		regexp.MustCompile(`^stream: You said: Say hello \(in: [1-9][0-9]*, out: [1-9][0-9]*\)$`),
		regexp.MustCompile(`^tool-generate: get_weather\(\{"city":"(\w+)"\}\) -> The tool said: Sunny, 22 C in (\w+) \[stop\]$`),
		regexp.MustCompile(`^tool-stream: get_weather\(\{"city":"(\w+)"\}\) -> The tool said: Sunny, 22 C in (\w+) \[stop\]$`),
	}
	for _, rt := range respRoutes {
		t.Run(rt.name, func(t *testing.T) {
			before, streams := g.upstreamCalls(rt), len(g.Streams())
			matchLines(t, g.runNode(t, rt, "vercel.mjs"), want)
			if n := g.upstreamCalls(rt) - before; n != 6 {
				t.Errorf("the upstream got %d calls, want 6", n)
			}
			got := g.Streams()[streams:]
			if rt.name != "direct" && len(got) != 3 {
				t.Errorf("the Gateway answered %d streams, want 3", len(got))
			}
			checkStreams(t, got)
			if t.Failed() {
				t.Log(g.describe(rt))
			}
		})
	}
}
