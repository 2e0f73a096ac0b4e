package pricing

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Entry is one row of the price table: a model id as its provider names
// it, the price, and where the price was read.
type Entry struct {
	// ID is the model id the provider bills under (for Bedrock the model
	// or inference-profile id, with its "global." prefix when the global
	// profile is priced apart).
	ID string `json:"id"`
	// Provider is the table the entry belongs to: "openai" (used for
	// Azure OpenAI as well), "anthropic", "google" or "bedrock".
	Provider string `json:"provider"`
	// Kind is "chat" or "embedding"; embeddings have no output price.
	Kind string `json:"kind"`
	Price
	// Aliases are other exact ids of the same model (e.g. the "-0" and
	// bare forms of Claude 4 ids).
	Aliases []string `json:"aliases,omitempty"`
	// Source is the URL of the page the price was read on, and Checked
	// the date (YYYY-MM-DD) it was read.
	Source  string `json:"source"`
	Checked string `json:"checked"`
	// Note says anything the figures depend on (context tier, endpoint).
	Note string `json:"note,omitempty"`
}

//go:embed prices.json
var pricesJSON []byte

// table is the parsed price table, in file order.
var table = mustParse(pricesJSON)

func mustParse(b []byte) []Entry {
	var f struct {
		Entries []Entry `json:"entries"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		panic(fmt.Sprintf("pricing: prices.json: %v", err))
	}
	return f.Entries
}

// Entries returns a copy of the price table, in file order.
func Entries() []Entry {
	return append([]Entry(nil), table...)
}

// tableFor names the table a connection kind is priced from: Azure OpenAI
// deployments are priced as the OpenAI model they serve (by remote name).
func tableFor(provider string) string {
	switch provider {
	case "openai", "azure":
		return "openai"
	case "google", "gemini":
		return "google"
	case "anthropic", "bedrock":
		return provider
	}
	return ""
}

var (
	// dated matches a release-date suffix: -20250929 or -2024-08-06.
	dated = regexp.MustCompile(`-(\d{8}|\d{4}-\d{2}-\d{2})$`)
	// bedrockVersion matches Bedrock's version suffix: -v1:0, -v2, :0.
	bedrockVersion = regexp.MustCompile(`(-v\d+)?(:\d+)?$`)
	// arnModel matches an ARN naming a foundation model or a (system)
	// inference profile; the id is what follows the slash.
	arnModel = regexp.MustCompile(`^arn:aws[a-z-]*:bedrock:[^:]*:[^:]*:(foundation-model|inference-profile)/(.+)$`)
)

// geoPrefixes are Bedrock's geographic cross-region inference-profile
// prefixes; such profiles cost what the in-region model costs.
var geoPrefixes = []string{"us.", "eu.", "apac.", "us-gov.", "jp.", "au.", "ca."}

// canon reduces an id to the form entries are compared in after exact
// matching fails: version and date suffixes dropped.
func canon(id string) string {
	id = strings.ToLower(id)
	id = bedrockVersion.ReplaceAllString(id, "")
	return dated.ReplaceAllString(id, "")
}
