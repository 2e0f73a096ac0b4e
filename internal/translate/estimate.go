package translate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	_ "image/gif"  // image.DecodeConfig reads GIF headers
	_ "image/jpeg" // and JPEG
	_ "image/png"  // and PNG
	"io"
	"strconv"
	"strings"
)

// EstimateInputTokens answers count_tokens for upstreams that cannot
// count: an estimate of the input tokens Anthropic would count for a
// Messages request body. It is built to over-count a little rather than
// under-count, because Claude Code compacts its context from this
// number, and a conversation whose count is too low outgrows the model.
//
// The formula (constants below, each with its reason):
//
//	tokens = requestOverhead
//	       + text(system) + systemOverhead                     if a system prompt is given
//	       + Σ messages (messageOverhead + Σ blocks)
//	       + toolUsePrompt + Σ tools (toolOverhead + text(name, description, schema JSON))
//	                                                           if any tool is given
//	       + serverToolTokens per server tool
//	       + thinkingOverhead                                  if thinking is enabled or adaptive
//
// where a text block costs text(text); tool_use costs blockOverhead +
// text(name) + text(input JSON); tool_result blockOverhead + its blocks;
// thinking text(thinking) (counted although Anthropic ignores thinking
// of earlier turns for some models: never under); redacted_thinking
// len(data)/6; an image imageTokens (from its width and height when
// the base64 data has a PNG, JPEG, GIF or WebP header, else the
// maximum); a base64 PDF pdfPageTokens per page ("/Type /Page" objects,
// at least one), a URL document urlDocumentTokens.
//
// text(s) is a character-class estimate of Claude's tokenizer: a run of
// letters (split where camelCase changes case) costs 1 token per started
// 4 letters, a run of digits 1 per started 2, a run of other printable
// ASCII characters 1 per started 2, a run of spaces beyond the first 1
// per started 4, a newline or a tab 1, every other character 1 (2 outside
// the Basic Multilingual Plane, e.g. emoji). Against the tokenizer
// Anthropic published (@anthropic-ai/tokenizer, Claude 2's) it counts
// 1.35 times as many tokens on English prose (this package's system
// prompt sample), 1.30 on Markdown (the project README), 1.29 on Go
// source, 1.20 on `cat -n` file listings, 1.34 on Claude Code's tool
// schemas, 1.57 on JSON, and 1.0 on Japanese. Claude 3 and 4 count
// about 15–20% more than OpenAI's cl100k tokenizer on English, more on
// code; the margin is meant to cover that. Models with a denser
// tokenizer (Anthropic says Claude Opus 4.7 counts up to 35% more) and
// non-English text may still be under-counted by 5–15%.
//
// The corpus it is checked against, testdata/tochat/count_tokens/, holds
// the requests of Anthropic's token counting guide with the counts the
// guide publishes (basic 14, tools 403, extended thinking 88; the image
// example, 1551, with an image of the same size class, and the PDF
// example, 2188, with a one-page PDF): the estimate must not be more than
// 10% under any of them (estimate_test.go).
func EstimateInputTokens(messagesBody []byte) (int64, error) {
	var req msgRequest
	if err := json.Unmarshal(messagesBody, &req); err != nil {
		return 0, decodeErr("", err)
	}
	if req.Messages == nil {
		return 0, reqErr("messages", "is required")
	}
	n := int64(requestOverhead)
	if sys, err := contentBlocks(req.System, "system"); err != nil {
		return 0, err
	} else if len(sys) > 0 {
		n += systemOverhead
		for _, b := range sys {
			n += textTokens(b.Text)
		}
	}
	for i, m := range req.Messages {
		blocks, err := contentBlocks(m.Content, "messages["+strconv.Itoa(i)+"].content")
		if err != nil {
			return 0, err
		}
		n += messageOverhead
		for _, b := range blocks {
			n += blockTokens(b)
		}
	}
	n += toolsTokens(req.Tools)
	if thinkingOn(req.Thinking) {
		n += thinkingOverhead
	}
	return n, nil
}

// The constants of the formula.
const (
	// requestOverhead, systemOverhead and messageOverhead: Anthropic
	// counts 14 for a system prompt of 4 tokens and one user message of
	// 3 (the guide's basic example): 7 tokens of framing for a system
	// prompt, a turn and the assistant's prompt.
	requestOverhead = 2
	systemOverhead  = 2
	messageOverhead = 3
	// blockOverhead frames a tool_use or tool_result block (its id and
	// markup).
	blockOverhead = 12
	// toolUsePrompt is the system prompt Anthropic adds when tools are
	// given: 346 tokens for Claude 4 models with tool_choice auto or
	// none, 313 with any or tool (Anthropic's tool use pricing table);
	// the larger is used.
	toolUsePrompt = 346
	// toolOverhead frames each tool definition.
	toolOverhead = 8
	// serverToolTokens is the definition of a server tool, which
	// Anthropic expands: the documented ones are bash 245, text editor
	// 700, computer use 735 (+ its system prompt); the largest is used
	// for the others.
	serverToolTokens = 735
	// thinkingOverhead: the guide's extended thinking example counts 88
	// for about 40 tokens of text (its earlier thinking not counted) and
	// three turns: about 25 tokens come with thinking.
	thinkingOverhead = 25
	// imageMaxTokens is what an image costs at most: Anthropic scales an
	// image down until its long edge is at most 1568 pixels and it is
	// about 1.15 megapixels, i.e. about 1600 tokens.
	imageMaxTokens = 1600
	// pdfPageTokens is a PDF page: Anthropic counts its text (1,500 to
	// 3,000 tokens for a dense page) and its image; the guide's example
	// of one page counts 2188.
	pdfPageTokens = 2400
	// urlDocumentTokens is a document given by URL, whose size is
	// unknown: counted as five pages.
	urlDocumentTokens = 5 * pdfPageTokens
)

// blockTokens estimates one content block.
func blockTokens(b msgBlock) int64 {
	switch b.Type {
	case "text":
		return textTokens(b.Text)
	case "image":
		return imageTokens(b.Source)
	case "document":
		return documentTokens(b.Source)
	case "tool_use":
		return blockOverhead + textTokens(b.Name) + textTokens(string(b.Input))
	case "tool_result":
		n := int64(blockOverhead)
		inner, err := contentBlocks(b.Content, "")
		if err != nil {
			return n + textTokens(string(b.Content))
		}
		for _, c := range inner {
			n += blockTokens(c)
		}
		return n
	case "thinking":
		return textTokens(b.Thinking)
	case "redacted_thinking":
		return int64(len(b.Data) / 6)
	}
	// Another block type (search_result, server tool results, …): its
	// JSON as text, which over-counts its markup.
	raw, _ := json.Marshal(b)
	return textTokens(string(raw))
}

// toolsTokens estimates the tool definitions and the tool use system
// prompt they bring.
func toolsTokens(tools []msgTool) int64 {
	if len(tools) == 0 {
		return 0
	}
	n := int64(toolUsePrompt)
	for _, t := range tools {
		if t.Type != "" && t.Type != "custom" {
			n += serverToolTokens
			continue
		}
		n += toolOverhead + textTokens(t.Name) + textTokens(t.Description) + textTokens(string(t.InputSchema))
	}
	return n
}

func thinkingOn(raw json.RawMessage) bool {
	var t struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(raw, &t) == nil && (t.Type == "enabled" || t.Type == "adaptive")
}

// textTokens is the character-class estimate of Claude's tokenizer
// described on EstimateInputTokens.
func textTokens(s string) int64 {
	var n int64
	letters, digits, spaces, puncts := 0, 0, 0, 0
	prevLower := false
	flush := func() {
		n += int64((letters + 3) / 4)
		n += int64((digits + 1) / 2)
		n += int64((puncts + 1) / 2)
		if spaces > 1 {
			n += int64((spaces - 1 + 3) / 4)
		}
		letters, digits, spaces, puncts = 0, 0, 0, 0
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			upper := r <= 'Z'
			if digits > 0 || spaces > 0 || (upper && prevLower) {
				flush()
			}
			letters++
			prevLower = !upper
			continue
		case r >= '0' && r <= '9':
			if letters > 0 || spaces > 0 {
				flush()
			}
			digits++
		case r == ' ':
			if letters > 0 || digits > 0 {
				flush()
			}
			spaces++
		case r > ' ' && r < 0x7f:
			if letters > 0 || digits > 0 || spaces > 0 {
				flush()
			}
			puncts++
		default:
			flush()
			if r >= 0x10000 {
				n++
			}
			n++ // a newline, a control or non-ASCII character
		}
		prevLower = false
	}
	flush()
	return n
}

// imageTokens is width×height/750 after Anthropic's downscaling, or the
// maximum when the size cannot be read.
func imageTokens(src *msgSource) int64 {
	if src == nil || src.Type != "base64" {
		return imageMaxTokens
	}
	w, h, ok := imageSize(src.Data)
	if !ok || w <= 0 || h <= 0 {
		return imageMaxTokens
	}
	return min(int64(w)*int64(h)/750+1, imageMaxTokens)
}

// imageSize reads the width and height from the head of base64 image
// data, decoding only as much as the header needs.
func imageSize(b64 string) (w, h int, ok bool) {
	const head = 64 << 10 // JPEG's size may follow EXIF data
	data := b64
	if len(data) > head {
		data = data[:head]
	}
	r := base64.NewDecoder(base64.StdEncoding, strings.NewReader(data))
	buf, _ := io.ReadAll(r)
	if w, h, ok := webpSize(buf); ok {
		return w, h, true
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(buf))
	if err != nil {
		return 0, 0, false
	}
	return cfg.Width, cfg.Height, true
}

// webpSize reads a WebP header (lossy VP8, lossless VP8L or extended
// VP8X), which the standard library does not decode.
func webpSize(b []byte) (w, h int, ok bool) {
	if len(b) < 30 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return 0, 0, false
	}
	switch string(b[12:16]) {
	case "VP8 ":
		return int(b[26]) | int(b[27]&0x3f)<<8, int(b[28]) | int(b[29]&0x3f)<<8, true
	case "VP8L":
		bits := uint32(b[21]) | uint32(b[22])<<8 | uint32(b[23])<<16 | uint32(b[24])<<24
		return int(bits&0x3fff) + 1, int(bits>>14&0x3fff) + 1, true
	case "VP8X":
		return 1 + (int(b[24]) | int(b[25])<<8 | int(b[26])<<16), 1 + (int(b[27]) | int(b[28])<<8 | int(b[29])<<16), true
	}
	return 0, 0, false
}

// documentTokens estimates a document: a PDF by its pages, text by its
// text.
func documentTokens(src *msgSource) int64 {
	if src == nil {
		return 0
	}
	switch src.Type {
	case "text":
		return textTokens(src.Data)
	case "base64":
		pdf, err := base64.StdEncoding.DecodeString(src.Data)
		if err != nil {
			return urlDocumentTokens
		}
		return int64(max(pdfPages(pdf), 1)) * pdfPageTokens
	}
	return urlDocumentTokens
}

// pdfPages counts the page objects of a PDF: "/Type /Page" not followed
// by "s" (which is the page tree). Pages inside compressed object
// streams are not seen; such a PDF counts at least one page.
func pdfPages(pdf []byte) int {
	n := 0
	for i := 0; ; {
		j := bytes.Index(pdf[i:], []byte("/Type"))
		if j < 0 {
			return n
		}
		k := i + j + len("/Type")
		for k < len(pdf) && (pdf[k] == ' ' || pdf[k] == '\n' || pdf[k] == '\r') {
			k++
		}
		if bytes.HasPrefix(pdf[k:], []byte("/Page")) && (k+5 == len(pdf) || pdf[k+5] != 's') {
			n++
		}
		i = k
	}
}
