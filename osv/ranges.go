package osv

import (
	"errors"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// parseRange reads the events of one SEMVER or ECOSYSTEM range and sorts
// them by version, introduced "0" first, as the OSV specification's
// evaluation requires. At one version, introduced sorts before
// last_affected and fixed, so "introduced X, fixed X" affects nothing.
func parseRange(raw []rawEvent) (Range, error) {
	if len(raw) > maxEvents {
		return Range{}, errors.New("too many events")
	}
	var r Range
	for _, re := range raw {
		kind, value, err := eventOf(re)
		if err != nil {
			return Range{}, err
		}
		if kind == eventLimit {
			if value == "*" {
				continue
			}
			v, err := parseVersion(value)
			if err != nil {
				return Range{}, err
			}
			r.Limits = append(r.Limits, v)
			r.limits = append(r.limits, fromSemver(v))
			continue
		}
		e := Event{Kind: EventKind(kind), Raw: value}
		if !(kind == eventIntroduced && value == "0") {
			if e.Version, err = parseVersion(value); err != nil {
				return Range{}, err
			}
			e.at = fromSemver(e.Version)
		}
		r.Events = append(r.Events, e)
	}
	slices.SortStableFunc(r.Events, compareEvents)
	return r, nil
}

// The kinds of a raw event; limit is kept apart from EventKind because it
// is not an event of the walk but a bound on the whole range.
const (
	eventIntroduced = int(Introduced)
	eventLast       = int(LastAffected)
	eventFixed      = int(Fixed)
	eventLimit      = 3
)

// eventOf says which one member an event has; an event with none or with
// two is invalid (its meaning would depend on the reader).
func eventOf(e rawEvent) (int, string, error) {
	kind, value, n := 0, "", 0
	for k, v := range [...]string{e.Introduced, e.LastAffected, e.Fixed, e.Limit} {
		if v != "" {
			kind, value, n = k, v, n+1
		}
	}
	if n != 1 {
		return 0, "", errors.New("an event must have exactly one of introduced, last_affected, fixed, limit")
	}
	if len(value) > maxVersionLen {
		return 0, "", errors.New("event version too long")
	}
	return kind, value, nil
}

func parseVersion(s string) (*semver.Version, error) {
	if len(s) > maxVersionLen {
		return nil, errors.New("version too long")
	}
	v, err := semver.NewVersion(s)
	if err != nil {
		return nil, errors.New("event version is not SemVer: " + s)
	}
	return v, nil
}

func compareEvents(a, b Event) int {
	switch {
	case a.Version == nil && b.Version == nil:
	case a.Version == nil:
		return -1
	case b.Version == nil:
		return 1
	default:
		if c := a.Version.Compare(b.Version); c != 0 {
			return c
		}
	}
	return int(a.Kind) - int(b.Kind)
}

// contains is the OSV specification's evaluation of one range: below a
// limit if there are limits, then the last event at or below v decides
// (introduced: affected; fixed: not; last_affected: not above it).
func (r *Range) contains(v version) bool {
	if len(r.limits) > 0 && !slices.ContainsFunc(r.limits, func(l version) bool { return compare(v, l) < 0 }) {
		return false
	}
	affected := false
	for i := range r.Events {
		e := &r.Events[i]
		c := 1 // v against the event's version; introduced "0" is below all
		if e.Version != nil {
			c = compare(v, e.at)
		}
		if c < 0 {
			break // this and every later event are above v: none changes it
		}
		switch e.Kind {
		case Introduced:
			affected = true
		case Fixed:
			affected = false
		case LastAffected:
			// v is at or above it: exactly it is affected, above not.
			affected = affected && c == 0
		}
	}
	return affected
}

// interval is one stretch of affected versions: from lo (nil: the first
// version) up to hi (nil: no end), hi included when hiIncl.
type interval struct {
	lo, hi *semver.Version
	hiIncl bool
}

// intervals lists the stretches a range affects, in order.
func (r *Range) intervals() []interval {
	var out []interval
	var lo *semver.Version
	open := false
	for _, e := range r.Events {
		switch {
		case e.Kind == Introduced && !open:
			open, lo = true, e.Version
		case e.Kind != Introduced && open:
			out = append(out, interval{lo: lo, hi: e.Version, hiIncl: e.Kind == LastAffected})
			open = false
		}
	}
	if open {
		iv := interval{lo: lo}
		for _, l := range r.Limits {
			if iv.hi == nil || l.LessThan(iv.hi) {
				iv.hi = l
			}
		}
		out = append(out, iv)
	}
	return out
}

func (iv interval) String() string {
	var parts []string
	if iv.lo != nil {
		parts = append(parts, ">="+iv.lo.String())
	}
	if iv.hi != nil {
		op := "<"
		if iv.hiIncl {
			op = "<="
		}
		parts = append(parts, op+iv.hi.String())
	}
	if len(parts) == 0 {
		return "*"
	}
	return strings.Join(parts, " ")
}

// entry is what the index holds for one package of one advisory: every
// range and listed version of the advisory's entries for that name.
type entry struct {
	adv      *Advisory
	name     string
	ranges   []Range
	versions []string
}

// affects reports whether version (v its parse, ok false when it is not
// SemVer) is affected: listed exactly, or inside a range.
func (e *entry) affects(version string, v version, ok bool) bool {
	if slices.Contains(e.versions, version) {
		return true
	}
	if !ok {
		return false
	}
	for i := range e.ranges {
		if e.ranges[i].contains(v) {
			return true
		}
	}
	return false
}

// stretches is every affected stretch of e, sorted and merged, with each
// listed version a stretch of its own.
func (e *entry) stretches() []interval {
	var all []interval
	for i := range e.ranges {
		all = append(all, e.ranges[i].intervals()...)
	}
	for _, s := range e.versions {
		if v, err := semver.NewVersion(s); err == nil {
			all = append(all, interval{lo: v, hi: v, hiIncl: true})
		}
	}
	slices.SortStableFunc(all, func(a, b interval) int { return cmpLo(a.lo, b.lo) })
	var out []interval
	for _, iv := range all {
		if n := len(out); n > 0 && overlaps(out[n-1], iv) {
			last := &out[n-1]
			if last.hi != nil && (iv.hi == nil || iv.hi.GreaterThan(last.hi) ||
				iv.hi.Equal(last.hi) && iv.hiIncl) {
				last.hi, last.hiIncl = iv.hi, iv.hiIncl
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

func cmpLo(a, b *semver.Version) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return a.Compare(b)
}

// overlaps reports whether next (which starts at or after cur) starts
// inside cur.
func overlaps(cur, next interval) bool {
	if cur.hi == nil || next.lo == nil {
		return true // both start at the first version, or cur never ends
	}
	c := next.lo.Compare(cur.hi)
	return c < 0 || c == 0 && cur.hiIncl
}

// VulnerableRange is the npm semver range of the versions of name the
// advisory affects (">=1.0.0 <1.2.3 || >=2.0.0 <2.0.5"), the
// vulnerable_versions of an audit answer.
func (e *entry) vulnerableRange() string {
	var parts []string
	for _, iv := range e.stretches() {
		if iv.lo != nil && iv.hi != nil && iv.hiIncl && iv.lo.Equal(iv.hi) {
			parts = append(parts, iv.lo.String())
			continue
		}
		parts = append(parts, iv.String())
	}
	if len(parts) == 0 {
		return "*"
	}
	return strings.Join(parts, " || ")
}

// patchedRange is the complement of vulnerableRange, the patched_versions
// of the v1 audit answer; "<0.0.0" (nothing) when no version is patched,
// as npm's registry wrote it.
func (e *entry) patchedRange() string {
	var parts []string
	var from string // the lower bound of the gap being built
	first := true
	for _, iv := range e.stretches() {
		switch {
		case first && iv.lo != nil:
			parts = append(parts, "<"+iv.lo.String())
		case !first && iv.lo != nil:
			parts = append(parts, from+" <"+iv.lo.String())
		}
		first = false
		if iv.hi == nil {
			from = ""
			break
		}
		from = ">=" + iv.hi.String()
		if iv.hiIncl {
			from = ">" + iv.hi.String()
		}
	}
	if from != "" {
		parts = append(parts, from)
	}
	if len(parts) == 0 {
		return "<0.0.0"
	}
	return strings.Join(parts, " || ")
}
