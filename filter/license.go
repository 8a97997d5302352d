package filter

import (
	"fmt"
	"strings"
)

// License expressions.
//
// The "license" field of package.json holds an SPDX identifier ("MIT"), an
// SPDX expression ("(MIT OR Apache-2.0)", "GPL-2.0-only WITH
// Classpath-exception-2.0"), or free text ("SEE LICENSE IN LICENSE.md",
// "Public Domain"). The parser below reads the SPDX grammar
//
//	or   = and { "OR" and }
//	and  = with { "AND" with }
//	with = atom [ "WITH" id ]
//	atom = id | "(" or ")"
//
// with operators matched case-insensitively (old packages write "MIT or
// Apache-2.0") and identifiers made of ASCII letters, digits and . - + : (so
// "GPL-2.0+" and "DocumentRef-x:LicenseRef-y" are identifiers). Anything else,
// an empty string, or an expression longer than maxLicenseLen or nested
// deeper than maxLicenseDepth is "unknown", which licenses.unknown decides.
//
// An identifier matches a list entry case-insensitively, as SPDX says ids are
// matched. A "L WITH E" term matches an entry "L" and an entry "L WITH E".
// An identifier is permitted when no deny entry matches it and, if the allow
// list is not empty, an allow entry matches it. "A OR B" is permitted when
// either side is (so it is blocked only when every alternative is denied or
// not allowed); "A AND B" when both are.
//
// Evaluation walks the string once and does not allocate.

const (
	maxLicenseLen   = 1024
	maxLicenseDepth = 32
)

// licTerm is a list entry: an id with an optional WITH exception.
type licTerm struct {
	id, exc string
}

func (t licTerm) matches(id, exc string) bool {
	return strings.EqualFold(t.id, id) && (t.exc == "" || strings.EqualFold(t.exc, exc))
}

// licRules is the compiled licenses: section.
type licRules struct {
	allow, deny  []licTerm
	allowText    []string
	denyText     []string
	unknownBlock bool
}

// Why a license is not permitted.
const (
	licOK         = iota
	licDenied     // a deny entry matches the culprit
	licNotAllowed // the allow list has no entry for the culprit
	licUnknown    // the expression is not SPDX (or empty)
)

// licResult is the outcome of an evaluation: the culprit is the first term
// (a span of the expression) that made it fail.
type licResult struct {
	why      uint8
	from, to int // culprit span in the expression
	entry    int // deny entry index for licDenied
}

// parseLicenseTerm parses a list entry: an id, or "id WITH id".
func parseLicenseTerm(s string) (licTerm, error) {
	lx := licLexer{s: s}
	k, id := lx.next()
	if k != tokID {
		return licTerm{}, fmt.Errorf("want an SPDX license id such as MIT, or \"id WITH exception\"")
	}
	t := licTerm{id: id}
	k, _ = lx.next()
	switch k {
	case tokEOF:
		return t, nil
	case tokWith:
		k, exc := lx.next()
		if k != tokID {
			break
		}
		t.exc = exc
		if k, _ = lx.next(); k == tokEOF {
			return t, nil
		}
	}
	return licTerm{}, fmt.Errorf("want one SPDX license id such as MIT, or \"id WITH exception\" (a list entry is not an expression)")
}

// eval decides on a license expression.
func (r *licRules) eval(expr string) licResult {
	if expr == "" || len(expr) > maxLicenseLen {
		return licResult{why: licUnknown}
	}
	p := licParser{lx: licLexer{s: expr}, r: r}
	p.advance()
	res := p.or()
	if p.bad || p.tok != tokEOF {
		return licResult{why: licUnknown}
	}
	return res
}

type licParser struct {
	lx    licLexer
	r     *licRules
	tok   uint8
	val   string
	start int // where the current token starts
	depth int
	bad   bool
}

func (p *licParser) advance() {
	p.start = p.lx.skipSpace()
	p.tok, p.val = p.lx.next()
	if p.tok == tokBad {
		p.bad = true
	}
}

func (p *licParser) or() licResult {
	res := p.and()
	for !p.bad && p.tok == tokOr {
		p.advance()
		r2 := p.and()
		if res.why != licOK && r2.why == licOK {
			res = r2
		}
	}
	return res
}

func (p *licParser) and() licResult {
	res := p.with()
	for !p.bad && p.tok == tokAnd {
		p.advance()
		r2 := p.with()
		if res.why == licOK && r2.why != licOK {
			res = r2
		}
	}
	return res
}

func (p *licParser) with() licResult {
	if p.bad {
		return licResult{}
	}
	switch p.tok {
	case tokOpen:
		p.depth++
		if p.depth > maxLicenseDepth {
			p.bad = true
			return licResult{}
		}
		p.advance()
		res := p.or()
		if p.tok != tokClose {
			p.bad = true
			return licResult{}
		}
		p.depth--
		p.advance()
		return res
	case tokID:
		from, id := p.start, p.val
		to := p.lx.pos
		p.advance()
		exc := ""
		if p.tok == tokWith {
			p.advance()
			if p.tok != tokID {
				p.bad = true
				return licResult{}
			}
			exc = p.val
			to = p.lx.pos
			p.advance()
		}
		return p.r.term(id, exc, from, to)
	}
	p.bad = true
	return licResult{}
}

// term decides on one license id.
func (r *licRules) term(id, exc string, from, to int) licResult {
	for i, t := range r.deny {
		if t.matches(id, exc) {
			return licResult{why: licDenied, from: from, to: to, entry: i}
		}
	}
	if len(r.allow) == 0 {
		return licResult{}
	}
	for _, t := range r.allow {
		if t.matches(id, exc) {
			return licResult{}
		}
	}
	return licResult{why: licNotAllowed, from: from, to: to}
}

// Tokens.
const (
	tokEOF = iota
	tokBad
	tokOpen
	tokClose
	tokAnd
	tokOr
	tokWith
	tokID
)

type licLexer struct {
	s   string
	pos int
}

func (lx *licLexer) skipSpace() int {
	for lx.pos < len(lx.s) {
		switch lx.s[lx.pos] {
		case ' ', '\t', '\n', '\r':
			lx.pos++
			continue
		}
		break
	}
	return lx.pos
}

func isIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '-' || c == '+' || c == ':'
}

func (lx *licLexer) next() (uint8, string) {
	lx.skipSpace()
	if lx.pos >= len(lx.s) {
		return tokEOF, ""
	}
	switch lx.s[lx.pos] {
	case '(':
		lx.pos++
		return tokOpen, ""
	case ')':
		lx.pos++
		return tokClose, ""
	}
	start := lx.pos
	for lx.pos < len(lx.s) && isIDChar(lx.s[lx.pos]) {
		lx.pos++
	}
	if lx.pos == start {
		return tokBad, ""
	}
	w := lx.s[start:lx.pos]
	switch {
	case strings.EqualFold(w, "AND"):
		return tokAnd, w
	case strings.EqualFold(w, "OR"):
		return tokOr, w
	case strings.EqualFold(w, "WITH"):
		return tokWith, w
	}
	return tokID, w
}
