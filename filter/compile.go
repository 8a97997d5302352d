package filter

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Compile checks a Spec and compiles it. Every bad entry is reported, each
// on its own line, naming its key and index and quoting it. A nil Spec, or
// one without rules, compiles to a policy that allows everything.
func Compile(s *Spec) (*Policy, error) {
	if s == nil {
		return &Policy{}, nil
	}
	c := &compiler{}
	l := &leaf{}
	c.names(l, s)
	l.block = c.rangeRules("block", s.Block)
	l.allow = c.rangeRules("allow", s.Allow)
	l.deny = c.denyRules(s.Deny)
	if s.MinReleaseAge < 0 {
		c.bad("min_release_age", -1, "", "must not be negative")
	}
	l.age = time.Duration(s.MinReleaseAge)
	l.ageExempt = c.globs("min_release_age_exempt", s.MinReleaseAgeExempt)
	l.scriptsAllow = c.globs("install_scripts_allow", s.InstallScriptsAllow)
	c.choices(l, s)
	l.compileTrust(s, c.bad, c.globs)
	l.compileAdvisories(s, c.bad)
	l.lic = c.licenses(s.Licenses)
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	if l.empty() {
		return &Policy{}, nil
	}
	l.fp = l.fingerprint()
	return &Policy{leaves: []*leaf{l}, fp: l.fp}, nil
}

// compiler gathers every error of one Spec, each naming its key, index
// and entry.
type compiler struct {
	errs []error
}

func (c *compiler) bad(key string, i int, entry string, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if i < 0 {
		c.errs = append(c.errs, fmt.Errorf("%s: %s", key, msg))
		return
	}
	c.errs = append(c.errs, fmt.Errorf("%s[%d]: %s: %s", key, i, strconv.QuoteToASCII(entry), msg))
}

// names compiles include (with its "!x" exceptions) and exclude.
func (c *compiler) names(l *leaf, s *Spec) {
	var negated globList
	for i, e := range s.Include {
		pat, neg := strings.CutPrefix(e, "!")
		if neg && strings.HasPrefix(pat, "!") {
			c.bad("include", i, e, "a double negation is not allowed")
			continue
		}
		g, err := compileGlob(pat)
		if err != nil {
			c.bad("include", i, e, "bad name pattern: %v", err)
			continue
		}
		if neg {
			negated.add(g, e)
		} else {
			l.include.add(g, e)
		}
	}
	for i, e := range s.Exclude {
		if strings.HasPrefix(e, "!") {
			c.bad("exclude", i, e, "exclude entries cannot be negated (to make an exception, narrow the pattern or use include)")
			continue
		}
		g, err := compileGlob(e)
		if err != nil {
			c.bad("exclude", i, e, "bad name pattern: %v", err)
			continue
		}
		l.exclude.add(g, e)
		l.negated = append(l.negated, false)
	}
	for i := range negated.gs {
		l.exclude.add(negated.gs[i], negated.text[i])
		l.negated = append(l.negated, true)
	}
}

// rangeRules compiles "name@range" entries (block, allow).
func (c *compiler) rangeRules(key string, entries []string) []rangeRule {
	var out []rangeRule
	for i, e := range entries {
		name, rng, ok := cutNameAt(e)
		if !ok {
			c.bad(key, i, e, "want name@range, for example \"lodash@<4.17.21\" (or \"lodash@*\" for every version)")
			continue
		}
		g, err := compileGlob(name)
		if err != nil {
			c.bad(key, i, e, "bad name pattern: %v", err)
			continue
		}
		if strings.TrimSpace(rng) == "" {
			c.bad(key, i, e, "empty range after '@' (write %s@* for every version)", name)
			continue
		}
		r, err := compileRange(rng)
		if err != nil {
			c.bad(key, i, e, "bad semver range: %v", err)
			continue
		}
		out = append(out, rangeRule{name: g, r: r, text: e})
	}
	return out
}

// denyRules compiles "name@version" entries with an exact name and
// version.
func (c *compiler) denyRules(entries []string) []denyRule {
	var out []denyRule
	for i, e := range entries {
		name, v, ok := cutNameAt(e)
		if !ok {
			c.bad("deny", i, e, "want name@version, for example \"event-stream@3.3.6\"")
			continue
		}
		g, err := compileGlob(name)
		if err != nil {
			c.bad("deny", i, e, "bad package name: %v", err)
			continue
		}
		if g.kind != globExact {
			c.bad("deny", i, e, "deny takes an exact package name, not a pattern (use block or exclude)")
			continue
		}
		pv, ok := parseVersion(v)
		if !ok {
			c.bad("deny", i, e, "%s is not an exact semver version (deny lists exact versions; use block for ranges)", strconv.QuoteToASCII(v))
			continue
		}
		out = append(out, denyRule{name: name, v: pv, text: e})
	}
	return out
}

// globs compiles a list of name patterns.
func (c *compiler) globs(key string, entries []string) globList {
	var out globList
	for i, e := range entries {
		g, err := compileGlob(e)
		if err != nil {
			c.bad(key, i, e, "bad name pattern: %v", err)
			continue
		}
		out.add(g, e)
	}
	return out
}

// choices reads the keys that take one of a few words.
func (c *compiler) choices(l *leaf, s *Spec) {
	switch s.Deprecated {
	case "", "pass":
	case "hide":
		l.hideDeprecated = true
	default:
		c.bad("deprecated", -1, "", "%s: want \"pass\" or \"hide\"", strconv.QuoteToASCII(s.Deprecated))
	}
	switch s.InstallScripts {
	case "", "allow":
	case "block":
		l.blockScripts = true
	case "no-new":
		l.newScripts = true
	default:
		c.bad("install_scripts", -1, "", "%s: want \"allow\", \"block\" or \"no-new\"", strconv.QuoteToASCII(s.InstallScripts))
	}
}

// licenses compiles the licenses section; nil when it decides nothing.
func (c *compiler) licenses(ls *LicenseSpec) *licRules {
	if ls == nil {
		return nil
	}
	r := &licRules{}
	terms := func(key string, entries []string) ([]licTerm, []string) {
		var ts []licTerm
		var text []string
		for i, e := range entries {
			t, err := parseLicenseTerm(e)
			if err != nil {
				c.bad(key, i, e, "%v", err)
				continue
			}
			ts = append(ts, t)
			text = append(text, e)
		}
		return ts, text
	}
	r.allow, r.allowText = terms("licenses.allow", ls.Allow)
	r.deny, r.denyText = terms("licenses.deny", ls.Deny)
	for i, a := range r.allow {
		for _, d := range r.deny {
			if strings.EqualFold(a.id, d.id) && strings.EqualFold(a.exc, d.exc) {
				c.bad("licenses.allow", i, r.allowText[i], "also in licenses.deny")
			}
		}
	}
	switch ls.Unknown {
	case "", "allow":
	case "block":
		r.unknownBlock = true
	default:
		c.bad("licenses.unknown", -1, "", "%s: want \"allow\" or \"block\"", strconv.QuoteToASCII(ls.Unknown))
	}
	if len(r.allow) > 0 || len(r.deny) > 0 || r.unknownBlock {
		return r
	}
	return nil
}
