package osv

import (
	"strings"

	"github.com/Masterminds/semver/v3"
)

// version is a SemVer 2.0.0 version reduced to what precedence compares
// (build metadata is dropped, §10). The render path asks about every
// version of every document, so a query version is parsed into this
// value, on the stack, rather than into a *semver.Version: a name with
// advisories and an unaffected version allocates nothing. Events are
// parsed with Masterminds/semver when a record loads (which also reads
// "1.0" as 1.0.0) and converted; TestVersionOrderAgreesWithMasterminds
// checks the two orders agree.
type version struct {
	major, minor, patch uint64
	pre                 string
}

func fromSemver(v *semver.Version) version {
	return version{major: v.Major(), minor: v.Minor(), patch: v.Patch(), pre: v.Prerelease()}
}

// parseStrict reads MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] as npm writes
// versions; ok is false for anything else (a leading "v", "1.0", a
// leading zero, an empty identifier).
func parseStrict(s string) (v version, ok bool) {
	if len(s) > maxVersionLen {
		return version{}, false
	}
	if i := strings.IndexByte(s, '+'); i >= 0 {
		if !validIdents(s[i+1:], false) {
			return version{}, false
		}
		s = s[:i]
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		v.pre = s[i+1:]
		if !validIdents(v.pre, true) {
			return version{}, false
		}
		s = s[:i]
	}
	var parts [3]uint64
	for k := range 3 {
		end := strings.IndexByte(s, '.')
		if k == 2 {
			end = len(s)
		} else if end < 0 {
			return version{}, false
		}
		n, ok := number(s[:end])
		if !ok {
			return version{}, false
		}
		parts[k] = n
		if k < 2 {
			s = s[end+1:]
		}
	}
	v.major, v.minor, v.patch = parts[0], parts[1], parts[2]
	return v, true
}

// number reads a numeric identifier: digits, no leading zero, below 2^53
// (what JavaScript's semver accepts).
func number(s string) (uint64, bool) {
	if s == "" || len(s) > 16 || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, n < 1<<53
}

// validIdents checks dot-separated identifiers of [0-9A-Za-z-]; a
// prerelease's numeric ones may have no leading zero (§9).
func validIdents(s string, pre bool) bool {
	for {
		id, rest, more := strings.Cut(s, ".")
		if id == "" {
			return false
		}
		numeric := true
		for i := 0; i < len(id); i++ {
			c := id[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				numeric = false
			default:
				return false
			}
		}
		if pre && numeric && len(id) > 1 && id[0] == '0' {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compare is SemVer 2.0.0 precedence (§11).
func (a version) compare(b version) int {
	if c := cmpUint(a.major, b.major); c != 0 {
		return c
	}
	if c := cmpUint(a.minor, b.minor); c != 0 {
		return c
	}
	if c := cmpUint(a.patch, b.patch); c != 0 {
		return c
	}
	return comparePre(a.pre, b.pre)
}

// comparePre orders prereleases: none is above any; identifiers compare
// one by one, numbers numerically and below words, words in ASCII order;
// a shorter list that is a prefix of a longer one is below it.
func comparePre(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return 1
	case b == "":
		return -1
	}
	for {
		x, restA, moreA := strings.Cut(a, ".")
		y, restB, moreB := strings.Cut(b, ".")
		if c := compareIdent(x, y); c != 0 {
			return c
		}
		switch {
		case !moreA && !moreB:
			return 0
		case !moreA:
			return -1
		case !moreB:
			return 1
		}
		a, b = restA, restB
	}
}

func compareIdent(x, y string) int {
	nx, ny := isDigits(x), isDigits(y)
	switch {
	case nx && ny:
		// No leading zeros: the longer number is the larger.
		if len(x) != len(y) {
			return cmpUint(uint64(len(x)), uint64(len(y)))
		}
		return strings.Compare(x, y)
	case nx:
		return -1
	case ny:
		return 1
	}
	return strings.Compare(x, y)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
