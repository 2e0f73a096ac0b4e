// The price table
//
// prices.json, embedded in the binary, holds one entry per model id and
// provider table ("openai", also used for Azure OpenAI deployments by
// their remote name; "anthropic"; "google" for Gemini; "bedrock"), in
// dollars per million tokens, with the URL of the page each price was
// read on and the date. Models whose figures could not be verified are
// left out rather than guessed: they have no table price.
//
// # Matching a model id
//
// Lookup tries, in order, each id below exactly (against entry ids and
// aliases), then each again with version and date suffixes dropped from
// both sides ("version-suffix"); the first hit wins and Source.Match
// names the rules applied ("exact" when none):
//
//   - the id as given;
//   - google: without a "models/" prefix ("models-prefix");
//   - bedrock: the id inside an ARN naming a foundation model or a system
//     inference profile ("arn"); then, for "global." profiles, the id as
//     it stands (the global price, where the table lists one) and without
//     the prefix ("global-prefix", the in-region price); for geographic
//     profiles (us., eu., apac., us-gov., jp., au., ca.) the id without
//     the prefix ("bedrock-geo-prefix"), as AWS bills them at the
//     in-region price;
//   - any table: without a release-date suffix, -YYYYMMDD or -YYYY-MM-DD
//     ("date-suffix"): gpt-4o-2024-08-06 is priced as gpt-4o and
//     claude-sonnet-4-5-20250929 as claude-sonnet-4-5.
//
// Version suffixes are Bedrock's -vN and :N (anthropic.claude-...-v1:0).
// Application inference profiles (opaque ARNs) cannot be matched; give
// such models a price of their own.
package pricing
