// The Vercel AI SDK talking to llm-proxy's Responses API through its
// OpenAI provider's openai.responses(…) models: generateText and
// streamText, plain and with a tool the SDK runs itself (a second step
// sends the tool's result back).
//
//   LLM_PROXY_BASE_URL=http://localhost:8080/v1 LLM_PROXY_KEY=sk-proxy-123 \
//   LLM_PROXY_MODEL=gpt node vercel.mjs
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText, tool, stepCountIs } from "ai";
import { z } from "zod";

const baseURL = process.env.LLM_PROXY_BASE_URL ?? "http://localhost:8080/v1";
const apiKey = process.env.LLM_PROXY_KEY ?? "sk-proxy-123";
const model = createOpenAI({ baseURL, apiKey }).responses(process.env.LLM_PROXY_MODEL ?? "gpt");

const tools = {
  get_weather: tool({
    description: "The weather in a city",
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => `Sunny, 22 C in ${city}`,
  }),
};
// Retries off: an error should show, not be hidden behind a retry.
const common = { model, maxRetries: 0 };
const usage = (u) => `(in: ${u.inputTokens}, out: ${u.outputTokens})`;
const calls = (steps) =>
  steps
    .flatMap((s) => s.toolCalls)
    .map((c) => `${c.toolName}(${JSON.stringify(c.input)})`)
    .join(", ");

// streamText reports errors to onError and ends the stream: make them fatal.
const onError = ({ error }) => {
  console.error("streamText:", error);
  process.exit(1);
};

const gen = await generateText({ ...common, prompt: "Say hello" });
console.log(`generate: ${gen.text} ${usage(gen.usage)}`);

const st = streamText({ ...common, prompt: "Say hello", onError });
let text = "";
for await (const delta of st.textStream) text += delta;
console.log(`stream: ${text} ${usage(await st.usage)}`);

const question = "What is the weather in Paris?";
const stop = stepCountIs(2);
const tg = await generateText({ ...common, prompt: question, tools, stopWhen: stop });
console.log(`tool-generate: ${calls(tg.steps)} -> ${tg.text} [${tg.finishReason}]`);

const ts = streamText({ ...common, prompt: question, tools, stopWhen: stop, onError });
let toolText = "";
for await (const delta of ts.textStream) toolText += delta;
console.log(`tool-stream: ${calls(await ts.steps)} -> ${toolText} [${await ts.finishReason}]`);
