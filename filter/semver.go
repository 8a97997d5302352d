package filter

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// This file holds an allocation-free semver engine for the decision path.
//
// Ranges have the syntax and the semantics of github.com/Masterminds/semver/v3
// constraints: Compile parses every range with semver.NewConstraint (which
// gives the error messages and the normal form), then reads the normal form
// into the comparators below. Evaluating a Masterminds constraint allocates
// (every failed comparison builds an error with fmt.Errorf, and parsing a
// version allocates), so the comparison functions are ported here, line for
// line, without the errors. FuzzRangeMatchesMasterminds checks the port
// against the library on random ranges and versions.

// maxVersionLen is the longest version string accepted, as in node-semver
// and semver/v3.
const maxVersionLen = 256

// ver is a parsed version. pre and build are substrings of the input, so
// parsing does not allocate.
type ver struct {
	major, minor, patch uint64
	pre                 string
	build               string
}

// parseVersion parses a strict SemVer 2.0.0 version: MAJOR.MINOR.PATCH with
// optional -prerelease and +build, no leading "v" or "=", no spaces, no
// leading zeros in numeric parts. It accepts exactly what
// semver.StrictNewVersion accepts.
func parseVersion(s string) (ver, bool) {
	var v ver
	if len(s) == 0 || len(s) > maxVersionLen {
		return v, false
	}
	rest := s
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		v.build = rest[i+1:]
		rest = rest[:i]
		if !validIdents(v.build, false) {
			return v, false
		}
	}
	// The prerelease starts at the first '-' after the second '.': SplitN on
	// "." first, as StrictNewVersion does, so "1.2-3.4" is invalid.
	d1 := strings.IndexByte(rest, '.')
	if d1 < 0 {
		return v, false
	}
	d2 := strings.IndexByte(rest[d1+1:], '.')
	if d2 < 0 {
		return v, false
	}
	d2 += d1 + 1
	third := rest[d2+1:]
	if i := strings.IndexByte(third, '-'); i >= 0 {
		v.pre = third[i+1:]
		third = third[:i]
		if !validIdents(v.pre, true) {
			return v, false
		}
	}
	var ok bool
	if v.major, ok = parseNum(rest[:d1]); !ok {
		return v, false
	}
	if v.minor, ok = parseNum(rest[d1+1 : d2]); !ok {
		return v, false
	}
	if v.patch, ok = parseNum(third); !ok {
		return v, false
	}
	return v, true
}

// parseNum parses a numeric version part: digits, no leading zero, fits in
// a uint64.
func parseNum(s string) (uint64, bool) {
	if len(s) == 0 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	return parseUint(s)
}

// parseUint is strconv.ParseUint(s, 10, 64) without the error value.
func parseUint(s string) (uint64, bool) {
	if len(s) == 0 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (^uint64(0)-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// validIdents checks dot-separated identifiers of [0-9A-Za-z-], none empty;
// for a prerelease, numeric identifiers have no leading zero.
func validIdents(s string, pre bool) bool {
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return false
			}
			continue
		}
		id := s[start:i]
		if id == "" {
			return false
		}
		if pre && len(id) > 1 && id[0] == '0' && allDigits(id) {
			return false
		}
		start = i + 1
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// compareVer orders versions by semver precedence: build metadata is ignored,
// a prerelease sorts before its release.
func compareVer(a, b *ver) int {
	if c := cmpU(a.major, b.major); c != 0 {
		return c
	}
	if c := cmpU(a.minor, b.minor); c != 0 {
		return c
	}
	if c := cmpU(a.patch, b.patch); c != 0 {
		return c
	}
	switch {
	case a.pre == "" && b.pre == "":
		return 0
	case a.pre == "":
		return 1
	case b.pre == "":
		return -1
	}
	return comparePre(a.pre, b.pre)
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// comparePre is semver/v3's comparePrerelease without strings.Split.
func comparePre(a, b string) int {
	for a != "" || b != "" {
		var pa, pb string
		pa, a = cutDot(a)
		pb, b = cutDot(b)
		if d := comparePrePart(pa, pb); d != 0 {
			return d
		}
	}
	return 0
}

func cutDot(s string) (head, tail string) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// comparePrePart is semver/v3's comparePrePart: numeric identifiers (those
// that parse as a uint64) sort before alphanumeric ones and compare by
// value, alphanumeric ones compare as strings, a missing part sorts first.
func comparePrePart(s, o string) int {
	if s == o {
		return 0
	}
	if s == "" {
		return -1
	}
	if o == "" {
		return 1
	}
	si, sNum := parseUint(s)
	oi, oNum := parseUint(o)
	switch {
	case !sNum && !oNum:
		if s > o {
			return 1
		}
		return -1
	case !oNum:
		return -1
	case !sNum:
		return 1
	}
	if si > oi {
		return 1
	}
	return -1
}

// Comparator operators, as in semver/v3's constraintOps.
const (
	opTildeOrEqual = iota // "" and "="
	opNotEqual            // "!="
	opGT                  // ">"
	opLT                  // "<"
	opGE                  // ">=" and "=>"
	opLE                  // "<=" and "=<"
	opTilde               // "~" and "~>"
	opCaret               // "^"
)

var opByText = map[string]uint8{
	"": opTildeOrEqual, "=": opTildeOrEqual, "!=": opNotEqual,
	">": opGT, "<": opLT, ">=": opGE, "=>": opGE, "<=": opLE, "=<": opLE,
	"~": opTilde, "~>": opTilde, "^": opCaret,
}

// comparator is semver/v3's constraint.
type comparator struct {
	op         uint8
	con        ver
	dirty      bool
	minorDirty bool
	patchDirty bool
}

// group is one "||" alternative: all comparators must hold.
type group struct {
	cs     []comparator
	hasPre bool // a comparator names a prerelease: prereleases are considered
}

// vrange is a compiled semver/v3 constraint.
type vrange struct {
	groups []group
}

// The regular expression with which semver/v3 splits one comparator into its
// operator and version (constraintRegex in constraints.go).
const cvRegex = `v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?` +
	`(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?` +
	`(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?`

var comparatorRegex = regexp.MustCompile(`^\s*(=||!=|>|<|>=|=>|<=|=<|~|~>|\^)\s*(` + cvRegex + `)\s*$`)

// compileRange parses a range with semver/v3 and compiles its normal form.
func compileRange(s string) (*vrange, error) {
	cs, err := semver.NewConstraint(s)
	if err != nil {
		return nil, err
	}
	// String() prints each comparator as operator+version with no space,
	// comparators separated by " " and alternatives by " || "; neither can
	// occur inside a comparator.
	norm := cs.String()
	r := &vrange{}
	for _, alt := range strings.Split(norm, " || ") {
		var g group
		for _, tok := range strings.Split(alt, " ") {
			c, err := parseComparator(tok)
			if err != nil {
				return nil, err
			}
			if c.con.pre != "" {
				g.hasPre = true
			}
			g.cs = append(g.cs, c)
		}
		r.groups = append(r.groups, g)
	}
	return r, nil
}

func isX(s string) bool { return s == "x" || s == "X" || s == "*" }

// parseComparator is semver/v3's parseConstraint.
func parseComparator(tok string) (comparator, error) {
	if tok == "" {
		return comparator{op: opTildeOrEqual, dirty: true}, nil
	}
	m := comparatorRegex.FindStringSubmatch(tok)
	if m == nil {
		return comparator{}, fmt.Errorf("improper constraint: %q", tok)
	}
	c := comparator{op: opByText[m[1]]}
	v := m[2]
	switch {
	case isX(m[3]) || m[3] == "":
		v = "0.0.0" + m[6]
		c.dirty = true
	case isX(strings.TrimPrefix(m[4], ".")) || m[4] == "":
		c.minorDirty = true
		c.dirty = true
		v = m[3] + ".0.0" + m[6]
	case isX(strings.TrimPrefix(m[5], ".")) || m[5] == "":
		c.dirty = true
		c.patchDirty = true
		v = m[3] + m[4] + ".0" + m[6]
	}
	sv, err := semver.NewVersion(v)
	if err != nil {
		return comparator{}, fmt.Errorf("improper constraint: %q", tok)
	}
	c.con = ver{major: sv.Major(), minor: sv.Minor(), patch: sv.Patch(), pre: sv.Prerelease()}
	return c, nil
}

// match reports whether v satisfies the range. includePre is semver/v3's
// Constraints.IncludePrerelease.
func (r *vrange) match(v *ver, includePre bool) bool {
	for i := range r.groups {
		g := &r.groups[i]
		pre := includePre || g.hasPre
		ok := true
		for j := range g.cs {
			if !g.cs[j].check(v, pre) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// check ports semver/v3's constraint functions (constraintNotEqual,
// constraintGreaterThan, ...), returning only the boolean.
func (c *comparator) check(v *ver, includePre bool) bool {
	if v.pre != "" && !includePre {
		return false
	}
	con := &c.con
	switch c.op {
	case opNotEqual:
		if c.dirty {
			if con.major != v.major {
				return true
			}
			if con.minor != v.minor && !c.minorDirty {
				return true
			} else if c.minorDirty {
				return false
			} else if con.patch != v.patch && !c.patchDirty {
				return true
			} else if c.patchDirty {
				if v.pre != "" || con.pre != "" {
					return comparePre(v.pre, con.pre) != 0
				}
				return false
			}
		}
		return compareVer(v, con) != 0
	case opGT:
		if !c.dirty {
			return compareVer(v, con) == 1
		}
		if v.major > con.major {
			return true
		} else if v.major < con.major {
			return false
		} else if c.minorDirty {
			return false
		} else if c.patchDirty {
			return v.minor > con.minor
		}
		return compareVer(v, con) == 1
	case opLT:
		return compareVer(v, con) < 0
	case opGE:
		return compareVer(v, con) >= 0
	case opLE:
		if !c.dirty {
			return compareVer(v, con) <= 0
		}
		if v.major > con.major {
			return false
		} else if v.major == con.major && v.minor > con.minor && !c.minorDirty {
			return false
		}
		return true
	case opTilde:
		return c.tilde(v)
	case opTildeOrEqual:
		if c.dirty {
			return c.tilde(v)
		}
		return compareVer(v, con) == 0
	case opCaret:
		if compareVer(v, con) < 0 {
			return false
		}
		if con.major > 0 || c.minorDirty {
			return v.major == con.major
		}
		if con.major == 0 && v.major > 0 {
			return false
		}
		if con.minor > 0 || c.patchDirty {
			return v.minor == con.minor
		}
		if con.minor == 0 && v.minor > 0 {
			return false
		}
		return con.patch == v.patch
	}
	return false
}

func (c *comparator) tilde(v *ver) bool {
	con := &c.con
	if compareVer(v, con) < 0 {
		return false
	}
	if con.major == 0 && con.minor == 0 && con.patch == 0 && !c.minorDirty && !c.patchDirty {
		return true
	}
	if v.major != con.major {
		return false
	}
	if v.minor != con.minor && !c.minorDirty {
		return false
	}
	return true
}
