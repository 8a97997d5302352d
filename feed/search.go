package feed

import (
	"context"
	"encoding/json"
	"sort"
	"strings"

	"github.com/npmgate/npmgate/proxy/npm"
)

// SearchObject is one local result in npm's search answer. Connector
// results are passed through as they came (only their name is read), so
// no field npm reads is lost in re-encoding.
type SearchObject struct {
	Package struct {
		Name        string            `json:"name"`
		Scope       string            `json:"scope,omitempty"`
		Version     string            `json:"version"`
		Description string            `json:"description,omitempty"`
		Keywords    []string          `json:"keywords,omitempty"`
		Date        string            `json:"date,omitempty"`
		Links       map[string]string `json:"links"`
		Publisher   *SearchUser       `json:"publisher,omitempty"`
		Maintainers []SearchUser      `json:"maintainers"`
	} `json:"package"`
	Score       json.RawMessage `json:"score,omitempty"`
	SearchScore float64         `json:"searchScore"`
}

// SearchUser is a person as the search API writes one (npm reads
// username).
type SearchUser struct {
	Username string `json:"username"`
	Email    string `json:"email,omitempty"`
}

// searchTerm is one term of a search text: a free word, or a qualifier
// (scope:, keywords:, author:, maintainer:, not:, is:, boost-exact:) and
// its comma-separated values.
type searchTerm struct {
	qualifier string // "" for a free word
	values    []string
}

var searchQualifiers = map[string]bool{"scope": true, "keywords": true, "author": true, "maintainer": true, "not": true, "is": true, "boost-exact": true}

func parseSearch(text string) []searchTerm {
	var terms []searchTerm
	for _, w := range strings.Fields(strings.ToLower(text)) {
		if q, v, ok := strings.Cut(w, ":"); ok && searchQualifiers[q] {
			terms = append(terms, searchTerm{qualifier: q, values: strings.FieldsFunc(v, func(r rune) bool { return r == ',' })})
			continue
		}
		terms = append(terms, searchTerm{values: []string{w}})
	}
	return terms
}

// searchKnown is what the local packages tell about privacy: their
// scopes and the people who maintain them.
type searchKnown struct {
	scopes, people map[string]bool
}

// SearchTouchesPrivate reports whether any term of text, a qualifier's
// value as much as a free word, is a private name (f.private), a private
// scope (owned, or one local packages use; with or without "@"), or, for
// author: and maintainer:, a local user or maintainer.
func (f *Feed) SearchTouchesPrivate(ctx context.Context, text string, known searchKnown) bool {
	privateScope := func(s string) bool {
		s = strings.TrimPrefix(s, "@")
		return s != "" && (known.scopes[s] || f.OwnedScope("@"+s+"/x"))
	}
	for _, t := range parseSearch(text) {
		for _, v := range t.values {
			v = strings.TrimPrefix(v, "-") // an excluded keyword names it too
			if npm.ValidateName(v) == nil && f.Private(ctx, v) {
				return true
			}
			if scope, _, ok := strings.Cut(v, "/"); ok && strings.HasPrefix(scope, "@") && privateScope(scope) {
				return true
			}
			if privateScope(v) {
				return true
			}
			if t.qualifier == "author" || t.qualifier == "maintainer" {
				if known.people[v] {
					return true
				}
				if ok, err := f.Deps.Users.Exists(v); ok || err != nil {
					return true // on a store error, err on the side of not telling
				}
			}
		}
	}
	return false
}

// SearchLocal matches every term of text against the feed's local
// packages: free words against names, descriptions and keywords,
// scope:, keywords:, author: and maintainer: against what they name
// (other qualifiers are ignored). It also returns the scopes and people
// of all local packages, for searchTouchesPrivate.
func (f *Feed) SearchLocal(ctx context.Context, text string) ([]SearchObject, searchKnown) {
	terms := parseSearch(text)
	known := searchKnown{scopes: map[string]bool{}, people: map[string]bool{}}
	var out []SearchObject
	err := f.Deps.Packages.Each(ctx, f.Name, func(_, name string, raw []byte) error {
		doc, err := DecodeLocal(name, raw)
		if err != nil || doc.Packument == nil || len(doc.Packument.Versions) == 0 {
			return nil
		}
		lp := doc.Packument
		scope, _, _ := npm.SplitScope(lp.Name)
		if scope != "" {
			known.scopes[strings.ToLower(scope)] = true
		}
		people := map[string]bool{}
		for _, m := range lp.Maintainers {
			people[strings.ToLower(m.Name)] = true
			known.people[strings.ToLower(m.Name)] = true
		}
		latest := lp.DistTags["latest"]
		var v struct {
			Description string          `json:"description"`
			Keywords    []string        `json:"keywords"`
			Author      json.RawMessage `json:"author"`
		}
		json.Unmarshal(lp.Versions[latest], &v)
		if a := authorName(v.Author); a != "" {
			people[a] = true
			known.people[a] = true
		}
		keywords := map[string]bool{}
		for _, k := range v.Keywords {
			keywords[strings.ToLower(k)] = true
		}
		hay := strings.ToLower(lp.Name + " " + v.Description + " " + strings.Join(v.Keywords, " "))
		for _, t := range terms {
			if !t.matches(hay, strings.ToLower(scope), keywords, people) {
				return nil
			}
		}
		var o SearchObject
		o.Package.Name, o.Package.Version, o.Package.Description, o.Package.Keywords = lp.Name, latest, v.Description, v.Keywords
		o.Package.Date = lp.Time["modified"]
		if scope, _, ok := npm.SplitScope(lp.Name); ok {
			o.Package.Scope = scope
		} else {
			o.Package.Scope = "unscoped"
		}
		o.Package.Links = map[string]string{}
		o.Package.Maintainers = []SearchUser{}
		for _, m := range lp.Maintainers {
			o.Package.Maintainers = append(o.Package.Maintainers, SearchUser{Username: m.Name, Email: m.Email})
		}
		if len(o.Package.Maintainers) > 0 {
			o.Package.Publisher = &o.Package.Maintainers[0]
		}
		o.Score = json.RawMessage(`{"final":1,"detail":{"quality":1,"popularity":1,"maintenance":1}}`)
		o.SearchScore = 1
		out = append(out, o)
		return nil
	})
	if err != nil {
		f.Deps.Log.Warn("search: reading local packages failed", "feed", f.Name, "err", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Package.Name < out[j].Package.Name })
	return out, known
}

// matches reports whether a local package matches a term: a free word is
// in its hay; scope:, keywords:, author: and maintainer: match when any
// of their values does.
func (t searchTerm) matches(hay, scope string, keywords, people map[string]bool) bool {
	anyValue := func(ok func(string) bool) bool {
		for _, v := range t.values {
			if ok(v) {
				return true
			}
		}
		return len(t.values) == 0
	}
	switch t.qualifier {
	case "":
		return strings.Contains(hay, t.values[0])
	case "scope":
		return anyValue(func(v string) bool { return strings.TrimPrefix(v, "@") == scope })
	case "keywords":
		return anyValue(func(v string) bool { return keywords[v] })
	case "author", "maintainer":
		return anyValue(func(v string) bool { return people[v] })
	}
	return true
}

// authorName is the lower-case name of a package.json author: an object
// with a name, or "Name <email> (url)".
func authorName(raw json.RawMessage) string {
	var a struct{ Name string }
	if json.Unmarshal(raw, &a) != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		a.Name, _, _ = strings.Cut(s, " <")
	}
	return strings.ToLower(strings.TrimSpace(a.Name))
}
