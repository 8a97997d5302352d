package filter

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/npmgate/npmgate/internal/vers"
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

// ver is a parsed version (see internal/vers).
type ver = vers.Version

const maxVersionLen = vers.MaxLen

func parseVersion(s string) (ver, bool) { return vers.Parse(s) }

func compareVer(a, b *ver) int { return vers.Compare(a, b) }

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
			if c.con.Pre != "" {
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
	c.con = ver{Major: sv.Major(), Minor: sv.Minor(), Patch: sv.Patch(), Pre: sv.Prerelease()}
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
	if v.Pre != "" && !includePre {
		return false
	}
	con := &c.con
	switch c.op {
	case opNotEqual:
		return c.notEqual(v)
	case opGT:
		return c.greater(v)
	case opLT:
		return compareVer(v, con) < 0
	case opGE:
		return compareVer(v, con) >= 0
	case opLE:
		return c.lessOrEqual(v)
	case opTilde:
		return c.tilde(v)
	case opTildeOrEqual:
		if c.dirty {
			return c.tilde(v)
		}
		return compareVer(v, con) == 0
	case opCaret:
		return c.caret(v)
	}
	return false
}

// notEqual is semver/v3's constraintNotEqual.
func (c *comparator) notEqual(v *ver) bool {
	con := &c.con
	if c.dirty {
		if con.Major != v.Major {
			return true
		}
		if con.Minor != v.Minor && !c.minorDirty {
			return true
		} else if c.minorDirty {
			return false
		} else if con.Patch != v.Patch && !c.patchDirty {
			return true
		} else if c.patchDirty {
			if v.Pre != "" || con.Pre != "" {
				return vers.ComparePre(v.Pre, con.Pre) != 0
			}
			return false
		}
	}
	return compareVer(v, con) != 0
}

// greater is semver/v3's constraintGreaterThan.
func (c *comparator) greater(v *ver) bool {
	con := &c.con
	if !c.dirty {
		return compareVer(v, con) == 1
	}
	if v.Major > con.Major {
		return true
	} else if v.Major < con.Major {
		return false
	} else if c.minorDirty {
		return false
	} else if c.patchDirty {
		return v.Minor > con.Minor
	}
	return compareVer(v, con) == 1
}

// lessOrEqual is semver/v3's constraintLessThanEqual.
func (c *comparator) lessOrEqual(v *ver) bool {
	con := &c.con
	if !c.dirty {
		return compareVer(v, con) <= 0
	}
	if v.Major > con.Major {
		return false
	} else if v.Major == con.Major && v.Minor > con.Minor && !c.minorDirty {
		return false
	}
	return true
}

// caret is semver/v3's constraintCaret.
func (c *comparator) caret(v *ver) bool {
	con := &c.con
	if compareVer(v, con) < 0 {
		return false
	}
	if con.Major > 0 || c.minorDirty {
		return v.Major == con.Major
	}
	if con.Major == 0 && v.Major > 0 {
		return false
	}
	if con.Minor > 0 || c.patchDirty {
		return v.Minor == con.Minor
	}
	if con.Minor == 0 && v.Minor > 0 {
		return false
	}
	return con.Patch == v.Patch
}

func (c *comparator) tilde(v *ver) bool {
	con := &c.con
	if compareVer(v, con) < 0 {
		return false
	}
	if con.Major == 0 && con.Minor == 0 && con.Patch == 0 && !c.minorDirty && !c.patchDirty {
		return true
	}
	if v.Major != con.Major {
		return false
	}
	if v.Minor != con.Minor && !c.minorDirty {
		return false
	}
	return true
}
