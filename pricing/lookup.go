package pricing

import "strings"

// Source says where a price came from: the table entry's id, the page it
// was read on and the date, and how the asked-for model id was matched
// to the entry ("exact", or the normalisation rules applied, e.g.
// "bedrock-geo-prefix+date-suffix").
type Source struct {
	Entry   string `json:"entry"`
	URL     string `json:"url"`
	Checked string `json:"checked"`
	Match   string `json:"match"`
}

// Lookup finds the table price of model on a connection of kind provider
// ("openai", "azure", "google", "anthropic", "bedrock"). It tries the id
// exactly, then the normalisations the package documentation lists, and
// reports false when nothing in the provider's table matches.
func Lookup(provider, model string) (Price, Source, bool) {
	tab := tableFor(provider)
	if tab == "" || model == "" {
		return Price{}, Source{}, false
	}
	cs := candidates(tab, model)
	// Exact ids (as given or normalised) win over a match that also drops
	// a version or date suffix from the table's ids.
	for _, exact := range []bool{true, false} {
		for _, c := range cs {
			e, ok := find(tab, c.id, exact)
			if !ok {
				continue
			}
			match := c.rules
			if !exact {
				match = join(c.rules, "version-suffix")
			} else if match == "" {
				match = "exact"
			}
			return e.Price, Source{Entry: e.ID, URL: e.Source, Checked: e.Checked, Match: match}, true
		}
	}
	return Price{}, Source{}, false
}

// candidate is one id to try, with the rules that produced it ("" for the
// id as given).
type candidate struct {
	id, rules string
}

// candidates lists the ids to try for model, most specific first.
func candidates(tab, model string) []candidate {
	out := []candidate{{id: model}}
	id, rules := model, []string{}
	add := func(rule, next string) {
		if next != id {
			id = next
			rules = append(rules, rule)
			out = append(out, candidate{id: id, rules: strings.Join(rules, "+")})
		}
	}
	switch tab {
	case "google":
		add("models-prefix", strings.TrimPrefix(id, "models/"))
	case "bedrock":
		if m := arnModel.FindStringSubmatch(id); m != nil {
			add("arn", m[2])
		}
		if rest, ok := strings.CutPrefix(id, "global."); ok {
			// The global profile is priced apart where the table has it
			// (the id as it stands); else the in-region price.
			add("global-prefix", rest)
		}
		for _, p := range geoPrefixes {
			if rest, ok := strings.CutPrefix(id, p); ok {
				add("bedrock-geo-prefix", rest)
				break
			}
		}
	}
	if d := dated.ReplaceAllString(id, ""); d != id {
		add("date-suffix", d)
	}
	return out
}

// join appends rule r to the "+"-joined rules.
func join(rules, r string) string {
	if rules == "" {
		return r
	}
	return rules + "+" + r
}

// find looks id up in table tab: exactly (id or alias) when exact, else
// by canonical form (version and date suffixes dropped on both sides).
func find(tab, id string, exact bool) (Entry, bool) {
	if !exact {
		return findCanon(tab, id)
	}
	for _, e := range table {
		if e.Provider == tab && (e.ID == id || hasAlias(e, id)) {
			return e, true
		}
	}
	return Entry{}, false
}

// findCanon is find's inexact half.
func findCanon(tab, id string) (Entry, bool) {
	want := canon(id)
	for _, e := range table {
		if e.Provider != tab {
			continue
		}
		if canon(e.ID) == want {
			return e, true
		}
		for _, a := range e.Aliases {
			if canon(a) == want {
				return e, true
			}
		}
	}
	return Entry{}, false
}

func hasAlias(e Entry, id string) bool {
	for _, a := range e.Aliases {
		if a == id {
			return true
		}
	}
	return false
}
