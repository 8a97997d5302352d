// Package vers parses and orders SemVer 2.0.0 versions without
// allocating: the render path decides on every version of every document
// (filter's ranges and rules, the advisory database's ranges), so a
// version is parsed into a value whose prerelease and build are
// substrings of the input. It accepts exactly what Masterminds/semver's
// StrictNewVersion accepts and orders as it does (tests check both).
package vers

import (
	"cmp"
	"strings"
)

// MaxLen is the longest version string accepted, as in node-semver
// and semver/v3.
const MaxLen = 256

// Version is a parsed version. pre and build are substrings of the input, so
// parsing does not allocate.
type Version struct {
	Major, Minor, Patch uint64
	Pre                 string
	Build               string
}

// Parse parses a strict SemVer 2.0.0 version: MAJOR.MINOR.PATCH with
// optional -prerelease and +build, no leading "v" or "=", no spaces, no
// leading zeros in numeric parts. It accepts exactly what
// semver.StrictNewVersion accepts.
func Parse(s string) (Version, bool) {
	var v Version
	if len(s) == 0 || len(s) > MaxLen {
		return v, false
	}
	rest := s
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		v.Build = rest[i+1:]
		rest = rest[:i]
		if !validIdents(v.Build, false) {
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
		v.Pre = third[i+1:]
		third = third[:i]
		if !validIdents(v.Pre, true) {
			return v, false
		}
	}
	var ok bool
	if v.Major, ok = parseNum(rest[:d1]); !ok {
		return v, false
	}
	if v.Minor, ok = parseNum(rest[d1+1 : d2]); !ok {
		return v, false
	}
	if v.Patch, ok = parseNum(third); !ok {
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

// Compare orders versions by semver precedence: build metadata is ignored,
// a prerelease sorts before its release.
func Compare(a, b *Version) int {
	if c := cmp.Compare(a.Major, b.Major); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Minor, b.Minor); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Patch, b.Patch); c != 0 {
		return c
	}
	switch {
	case a.Pre == "" && b.Pre == "":
		return 0
	case a.Pre == "":
		return 1
	case b.Pre == "":
		return -1
	}
	return ComparePre(a.Pre, b.Pre)
}

// ComparePre is semver/v3's comparePrerelease without strings.Split.
func ComparePre(a, b string) int {
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
