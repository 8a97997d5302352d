package filter

import (
	"strings"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		pat, name string
		want      bool
	}{
		{"lodash", "lodash", true},
		{"lodash", "lodash-es", false},
		{"lodash", "Lodash", false},
		{"JSONStream", "jsonstream", false},
		{"JSONStream", "JSONStream", true},
		{"lodash*", "lodash", true},
		{"lodash*", "lodash.merge", true},
		{"lodash*", "@x/lodash", false},
		{"*-loader", "css-loader", true},
		{"*-loader", "@x/css-loader", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a*b*c", "abcbc", true},
		{"*", "lodash", true},
		{"*", "@types/node", true},
		{"@types/*", "@types/node", true},
		{"@types/*", "@types/", false},
		{"@types/*", "@typesx/node", false},
		{"@types/*", "types/node", false},
		{"@types", "@types/node", true},
		{"@types", "@types", false},
		{"@babel/core", "@babel/core", true},
		{"@babel/core", "@babel/core2", false},
		{"@babel/*core", "@babel/core", true},
		{"@babel/*core", "@babel/x-core", true},
		{"@*/core", "@babel/core", true},
		{"@*/core", "core", false},
		{"@*", "@a/b", true},
		{"@*", "b", false},
		{"@evil*/*", "@evil-corp/x", true},
		{"@evil*/*", "@good/x", false},
	}
	for _, c := range cases {
		g, err := compileGlob(c.pat)
		if err != nil {
			t.Fatalf("compileGlob(%q): %v", c.pat, err)
		}
		if got := g.match(c.name); got != c.want {
			t.Errorf("%q matches %q = %v, want %v", c.pat, c.name, got, c.want)
		}
	}
}

func TestGlobErrors(t *testing.T) {
	cases := map[string]string{
		"":          "empty pattern",
		"@":         "empty scope",
		"@/x":       "empty scope",
		"@scope/":   "empty name",
		"a/b":       "unexpected '/'",
		"@a/b/c":    "unexpected '/'",
		"a b":       "not allowed",
		"lоdash":    "not allowed", // Cyrillic о
		"lodash@1":  "unexpected '@'",
		"@a@b/c":    "unexpected '@'",
		"tab\tname": "not allowed",
	}
	for pat, want := range cases {
		_, err := compileGlob(pat)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("compileGlob(%q) = %v, want an error containing %q", pat, err, want)
		}
	}
}

func TestWildMatchAgainstReference(t *testing.T) {
	// A recursive reference matcher for '*' over strings without '/'.
	var ref func(p, s string) bool
	ref = func(p, s string) bool {
		if p == "" {
			return s == ""
		}
		if p[0] == '*' {
			for i := 0; i <= len(s); i++ {
				if ref(p[1:], s[i:]) {
					return true
				}
			}
			return false
		}
		return s != "" && p[0] == s[0] && ref(p[1:], s[1:])
	}
	alphabet := []string{"", "a", "b", "*", "ab", "a*", "*b", "**", "ba*", "*a*b"}
	for _, p1 := range alphabet {
		for _, p2 := range alphabet {
			p := p1 + p2
			for _, s1 := range alphabet[:6] {
				for _, s2 := range alphabet[:6] {
					s := strings.ReplaceAll(s1+s2, "*", "")
					if got, want := wildMatch(p, s), ref(p, s); got != want {
						t.Errorf("wildMatch(%q, %q) = %v, want %v", p, s, got, want)
					}
				}
			}
		}
	}
}
