package filter

import (
	"fmt"
	"strings"
)

// Glob kinds.
const (
	globExact = iota // no '*': the name itself
	globAll          // "*": every name, scoped or not
	globScope        // "@scope/*" (or "@scope"): every package in the scope
	globWild         // anything else with '*'
)

// glob is a compiled package-name pattern.
type glob struct {
	pat  string // the pattern after expansion of the "@scope" shorthand
	kind uint8
}

// compileGlob checks and compiles a name pattern.
//
// A pattern is an npm package name, "name" or "@scope/name", in which '*'
// matches any run of characters other than '/'. Two forms are special: "*"
// alone matches every package, scoped or not, and "@scope/*" matches every
// package in the scope. "@scope" alone is shorthand for "@scope/*". Matching
// is case-sensitive, as npm names are (JSONStream and jsonstream are two
// packages). Only the characters npm has ever allowed in names are accepted
// (ASCII letters and digits and - . _ ~ ! ' ( ) *), so a typo such as a
// space or a non-ASCII homoglyph is an error instead of a rule that never
// matches.
func compileGlob(p string) (glob, error) {
	if p == "" {
		return glob{}, fmt.Errorf("empty pattern")
	}
	if p == "*" {
		return glob{pat: p, kind: globAll}, nil
	}
	if p[0] == '@' {
		slash := strings.IndexByte(p, '/')
		if slash < 0 {
			p += "/*" // "@scope" shorthand
			slash = strings.IndexByte(p, '/')
		}
		scope, name := p[1:slash], p[slash+1:]
		if scope == "" {
			return glob{}, fmt.Errorf("empty scope")
		}
		if name == "" {
			return glob{}, fmt.Errorf("empty name after the scope (write %q for the whole scope)", p+"*")
		}
		if err := checkNamePart(scope); err != nil {
			return glob{}, fmt.Errorf("scope: %v", err)
		}
		if err := checkNamePart(name); err != nil {
			return glob{}, err
		}
		if name == "*" && !strings.Contains(scope, "*") {
			return glob{pat: p[:slash+1], kind: globScope}, nil
		}
	} else if err := checkNamePart(p); err != nil {
		return glob{}, err
	}
	if strings.IndexByte(p, '*') >= 0 {
		return glob{pat: p, kind: globWild}, nil
	}
	return glob{pat: p, kind: globExact}, nil
}

func checkNamePart(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~!'()*", c) >= 0:
		case c == '/':
			return fmt.Errorf("unexpected '/' (a name has at most one, after its @scope)")
		case c == '@':
			return fmt.Errorf("unexpected '@' (only a scope starts with '@'; write name@range only in block and allow)")
		default:
			return fmt.Errorf("character %q is not allowed in a package name", c)
		}
	}
	return nil
}

// match reports whether name matches the pattern. It does not allocate.
func (g *glob) match(name string) bool {
	switch g.kind {
	case globExact:
		return name == g.pat
	case globAll:
		return true
	case globScope:
		return len(name) > len(g.pat) && strings.HasPrefix(name, g.pat)
	}
	// Match segment by segment: '*' never crosses '/'.
	p, s := g.pat, name
	for {
		pi := strings.IndexByte(p, '/')
		si := strings.IndexByte(s, '/')
		if (pi < 0) != (si < 0) {
			return false
		}
		if pi < 0 {
			return wildMatch(p, s)
		}
		if !wildMatch(p[:pi], s[:si]) {
			return false
		}
		p, s = p[pi+1:], s[si+1:]
	}
}

// wildMatch matches s against p, in which '*' matches any run of characters.
// Neither contains '/'. Linear backtracking on the last star is exact when a
// star may match anything.
func wildMatch(p, s string) bool {
	i, j := 0, 0
	star, mark := -1, 0
	for j < len(s) {
		switch {
		case i < len(p) && p[i] == '*':
			star, mark = i, j
			i++
		case i < len(p) && p[i] == s[j]:
			i++
			j++
		case star >= 0:
			mark++
			i, j = star+1, mark
		default:
			return false
		}
	}
	for i < len(p) && p[i] == '*' {
		i++
	}
	return i == len(p)
}

// globList is a list of patterns with the entries as written, for messages.
type globList struct {
	gs   []glob
	text []string
}

func (l *globList) match(name string) int {
	for i := range l.gs {
		if l.gs[i].match(name) {
			return i
		}
	}
	return -1
}

func (l *globList) add(g glob, text string) {
	l.gs = append(l.gs, g)
	l.text = append(l.text, text)
}
